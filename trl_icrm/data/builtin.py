# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""A small built-in steerable preference data set: concise vs detailed answers.

Every question has a concise and a detailed answer. Under the objective `"concise"` the concise answer is chosen;
under `"detailed"` the same pair has the opposite label. A conventional reward model trained on both objectives sees
contradictory labels; an ICRM model can tell them apart from a few demonstrations. Made offline from templates, so
examples and tests need no download.

Example:

```python
>>> from trl_icrm.data.builtin import concise_vs_detailed
>>> splits = concise_vs_detailed()
>>> row = splits["train"][0]
>>> sorted(row), row["group"]
(['chosen', 'group', 'prompt', 'rejected'], 'concise')
```
"""

from __future__ import annotations

import random

from datasets import Dataset, DatasetDict


_CAPITALS = [
    ("France", "Paris", "on the Seine"),
    ("Japan", "Tokyo", "on Honshu"),
    ("Italy", "Rome", "on the Tiber"),
    ("Egypt", "Cairo", "on the Nile"),
    ("Canada", "Ottawa", "in Ontario"),
    ("Kenya", "Nairobi", "in the highlands"),
    ("Peru", "Lima", "on the Pacific coast"),
    ("Spain", "Madrid", "in the centre of the country"),
    ("Norway", "Oslo", "at the head of a fjord"),
    ("Chile", "Santiago", "in a central valley"),
    ("Greece", "Athens", "in Attica"),
    ("Poland", "Warsaw", "on the Vistula"),
    ("Austria", "Vienna", "on the Danube"),
    ("Ireland", "Dublin", "on the Liffey"),
    ("Portugal", "Lisbon", "on the Tagus"),
    ("Cuba", "Havana", "on the north coast"),
    ("Sweden", "Stockholm", "on a group of islands"),
    ("Turkey", "Ankara", "in Anatolia"),
    ("Thailand", "Bangkok", "on the Chao Phraya"),
    ("Argentina", "Buenos Aires", "on the Rio de la Plata"),
]
_ANIMALS = [
    ("cow", "moo", "grazes in fields"),
    ("dog", "bark", "lives with people"),
    ("cat", "meow", "hunts mice"),
    ("duck", "quack", "swims on ponds"),
    ("sheep", "baa", "grows wool"),
    ("lion", "roar", "lives in prides"),
    ("owl", "hoot", "hunts at night"),
    ("horse", "neigh", "can run fast"),
    ("frog", "croak", "lives near water"),
    ("snake", "hiss", "has no legs"),
    ("pig", "oink", "roots in the mud"),
    ("bee", "buzz", "makes honey"),
]
_COLOURS = [
    ("grass", "green", "because of chlorophyll"),
    ("the sky on a clear day", "blue", "because air scatters blue light"),
    ("snow", "white", "because its crystals scatter all colours"),
    ("a ripe banana", "yellow", "as its skin ripens"),
    ("coal", "black", "because it absorbs most light"),
    ("a ripe tomato", "red", "because of lycopene"),
    ("an orange", "orange", "because of carotenoids"),
    ("a flamingo", "pink", "because of the shrimp it eats"),
]


def _questions() -> list[tuple[str, str, str]]:
    """(question, concise answer, detailed answer) triples."""
    rows = []
    for country, capital, where in _CAPITALS:
        rows.append(
            (
                f"What is the capital of {country}?",
                f"{capital}.",
                f"The capital of {country} is {capital}. It lies {where} and is the seat of the national government, "
                "which makes it the political centre of the country.",
            )
        )
    for animal, sound, habit in _ANIMALS:
        rows.append(
            (
                f"What sound does a {animal} make?",
                f"A {animal} says {sound}.",
                f"A {animal} makes a sound usually written as '{sound}'. The {animal} {habit}, and it uses this call to "
                "communicate with others of its kind, for example to warn them or to find them.",
            )
        )
    for thing, colour, why in _COLOURS:
        rows.append(
            (
                f"What colour is {thing}?",
                f"{colour.capitalize()}.",
                f"{thing[0].upper() + thing[1:]} is {colour}. It looks {colour} {why}, so the light that reaches "
                "our eyes from it is mostly of that colour.",
            )
        )
    for a, b in [(7, 5), (12, 9), (23, 19), (8, 6), (15, 27), (31, 14), (9, 9), (44, 38)]:
        rows.append(
            (
                f"What is {a} + {b}?",
                f"{a + b}.",
                f"To add {a} and {b}, start from {a} and count on {b} more. The ones and tens add up to {a + b}, "
                f"so {a} + {b} = {a + b}.",
            )
        )
    return rows


def concise_vs_detailed(test_fraction: float = 0.25, seed: int = 0) -> DatasetDict:
    """Pairs (prompt, chosen, rejected, group) for the conflicting objectives `"concise"` and `"detailed"`.

    Questions are split into disjoint train/test sets (`test_fraction` of them held out, by a seeded shuffle); each
    question gives one pair per objective, with opposite labels.
    """
    questions = _questions()
    random.Random(seed).shuffle(questions)
    n_test = max(1, round(test_fraction * len(questions)))
    splits = {"train": questions[n_test:], "test": questions[:n_test]}
    out = {}
    for split, rows in splits.items():
        records = []
        for question, concise, detailed in rows:
            records.append({"prompt": question + "\n", "chosen": concise, "rejected": detailed, "group": "concise"})
            records.append({"prompt": question + "\n", "chosen": detailed, "rejected": concise, "group": "detailed"})
        out[split] = Dataset.from_list(records)
    return DatasetDict(out)

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""A steerable preference data set made with a real model: one prompt set, eight response styles, eight objectives.

Every prompt is answered by a model (the embedded SmolLM2-135M-Instruct by default) under eight instructions, two
per *axis*:

| axis       | styles               | measured by                                             |
|------------|----------------------|---------------------------------------------------------|
| length     | concise / detailed   | number of words                                         |
| format     | bullets / prose      | number of list lines ("- ", "* ", "1. ")                |
| tone       | formal / casual      | casual markers (contractions, "!", slang) minus formal  |
| compliance | answer / refuse      | refusal phrases ("I'm sorry", "I can't", ...)           |

An *objective* is one style: under objective `"concise"` the response written as concise is chosen over the one
written as detailed (same prompt); under `"detailed"` the same pair has the opposite label, so the two objectives of
an axis conflict. A pair is kept only when the measured attribute agrees clearly with the instructions (the model
did follow them), so labels do not depend on how well a small model obeys. Prompts are split into train/test and
objectives into *seen* (training) and *unseen* (evaluation only).

The responses are generated once by [`generate_style_responses`] (`examples/build_steerable_dataset.py`) and stored
as JSON lines; [`build_steerable_splits`] turns them into pairs, which needs no model.

Example:

```python
>>> from trl_icrm.data.steerable import build_steerable_splits
>>> responses = [
...     {"prompt": "Explain tides.", "style": "concise", "response": "The Moon pulls the sea."},
...     {"prompt": "Explain tides.", "style": "detailed", "response": " ".join(["The Moon's gravity pulls water."] * 6)},
... ]
>>> splits = build_steerable_splits(responses, ["concise", "detailed"], test_fraction=0.0)
>>> [(row["group"], len(row["chosen"][0]["content"].split())) for row in splits["train"]]  # words of the chosen
[('concise', 5), ('detailed', 30)]

```
"""

from __future__ import annotations

import json
import os
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from datasets import Dataset, DatasetDict


STYLE_INSTRUCTIONS: dict[str, str] = {
    "concise": "Answer in one short sentence.",
    "detailed": "Answer in detail, with several sentences of explanation and an example.",
    "bullets": "Answer with a bulleted list of short points, each line starting with '- '.",
    "prose": "Answer in one paragraph of flowing prose. Do not use lists or bullet points.",
    "formal": "Answer in a formal, academic tone, without contractions.",
    "casual": "Answer in a super casual, chatty tone, like texting a friend. Use slang and exclamation marks!",
    "answer": "Answer the question helpfully.",
    "refuse": "Politely refuse to answer this question and do not give any information about it.",
}
"""The instruction appended to the prompt for each response style."""

AXES: dict[str, tuple[str, str]] = {
    "length": ("concise", "detailed"),
    "format": ("bullets", "prose"),
    "tone": ("formal", "casual"),
    "compliance": ("answer", "refuse"),
}
"""The two opposite styles of each axis."""

OBJECTIVES: tuple[str, ...] = tuple(style for pair in AXES.values() for style in pair)
"""An objective is a style: prefer the response written in that style over its opposite."""

DEFAULT_SEEN_OBJECTIVES: tuple[str, ...] = ("concise", "detailed", "formal", "casual", "answer", "refuse")
"""Objectives trained on by default; the format axis (bullets, prose) is left unseen."""

_TOPICS = [
    "the water cycle",
    "photosynthesis",
    "compound interest",
    "recycling plastic",
    "learning a new language",
    "baking bread",
    "sleep",
    "volcanoes",
    "the immune system",
    "saving money",
    "running a marathon",
    "growing tomatoes",
    "black holes",
    "climate change",
    "the stock market",
    "writing a resume",
    "public speaking",
    "meditation",
    "electric cars",
    "the internet",
    "honey bees",
    "coffee",
    "chess",
    "the Roman Empire",
    "rainbows",
    "earthquakes",
    "vaccines",
    "solar panels",
    "time management",
    "dinosaurs",
    "the human heart",
    "keeping a houseplant alive",
    "making friends in a new city",
    "the moon",
    "tea",
    "password security",
    "job interviews",
    "composting",
    "the ocean tides",
    "playing the guitar",
    "healthy breakfasts",
    "budget travel",
    "the printing press",
    "bird migration",
    "studying for exams",
    "cloud computing",
    "camping",
    "renewable energy",
    "origami",
    "the pyramids of Egypt",
]
_FORMS = [
    "Can you explain {t}?",
    "What should a beginner know about {t}?",
    "Tell me about {t}.",
    "Why does {t} matter?",
]


def default_prompts() -> list[str]:
    """The built-in prompts: 50 everyday topics in 4 question forms (200 prompts)."""
    return [form.format(t=topic) for topic in _TOPICS for form in _FORMS]


# Measured attributes (pure functions of a response's text)
_LIST_LINE = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+\S", re.MULTILINE)
_REFUSAL = re.compile(
    r"\b(?:I(?:'m| am) (?:sorry|afraid|unable|not able|not equipped)|I (?:can(?:no|')t|cannot|won't|will not)"
    r"|I (?:must|have to|need to) (?:politely )?decline|unable to (?:help|answer|provide|assist)"
    r"|I apologi[sz]e|I don't have the (?:capability|ability)|not (?:able|allowed|comfortable) to)",
    re.IGNORECASE,
)
_CASUAL = re.compile(
    r"\b(?:hey|yeah|yep|gonna|wanna|gotta|kinda|sorta|super|awesome|cool|lol|totally|dude|guys|y'all|stuff|"
    r"pretty much|like,|omg|btw|ya|chill|vibes?|fun)\b|!|\b\w+'(?:s|re|ll|ve|d|t|m)\b",
    re.IGNORECASE,
)
_FORMAL = re.compile(
    r"\b(?:furthermore|moreover|therefore|consequently|additionally|thus|hence|significant(?:ly)?|"
    r"essential|fundamental|various|individuals|utili[sz]e|facilitate|in conclusion|it is)\b",
    re.IGNORECASE,
)


def word_count(text: str) -> int:
    return len(text.split())


def list_line_count(text: str) -> int:
    return len(_LIST_LINE.findall(text))


def is_refusal(text: str) -> bool:
    return _REFUSAL.search(text) is not None


def casualness(text: str) -> int:
    """Casual markers minus formal markers."""
    return len(_CASUAL.findall(text)) - len(_FORMAL.findall(text))


def follows_axis(axis: str, first: str, second: str) -> bool:
    """Whether `first` (written in the axis's first style) and `second` (its opposite) clearly differ as asked."""
    if axis == "length":
        return word_count(second) >= max(1.5 * word_count(first), word_count(first) + 10)
    if axis == "format":
        return list_line_count(first) >= 2 and list_line_count(second) == 0
    if axis == "tone":
        return casualness(second) >= casualness(first) + 2
    if axis == "compliance":
        return not is_refusal(first) and is_refusal(second) and word_count(first) >= 5
    raise ValueError(f"Unknown axis {axis!r}; known: {sorted(AXES)}.")


def axis_of(objective: str) -> str:
    for axis, styles in AXES.items():
        if objective in styles:
            return axis
    raise ValueError(f"Unknown objective {objective!r}; known: {list(OBJECTIVES)}.")


# Generation (needs a model) and storage
def style_prompt(prompt: str, style: str) -> list[dict[str, str]]:
    """The chat prompt that asks for a response in `style`."""
    return [{"role": "user", "content": f"{prompt}\n\n{STYLE_INSTRUCTIONS[style]}"}]


def iter_style_responses(
    model,
    tokenizer,
    prompts: Sequence[str] | None = None,
    styles: Sequence[str] = OBJECTIVES,
    max_new_tokens: int = 64,
    batch_size: int = 32,
    progress: Callable[[Iterable], Iterable] | None = None,
    skip: Iterable[tuple[str, str]] = (),
) -> Iterator[dict[str, str]]:
    """Greedy responses of `model` to every prompt under every style, yielded batch by batch as rows
    `{prompt, style, response}` (so they can be written as they come); `(prompt, style)` pairs in `skip` (e.g. those
    an interrupted run already wrote) are not generated again."""
    from ..utils.generation import generate_greedy

    prompts = list(prompts) if prompts is not None else default_prompts()
    unknown = sorted(set(styles) - set(STYLE_INSTRUCTIONS))
    if unknown:
        raise ValueError(f"Unknown styles {unknown}; known: {sorted(STYLE_INSTRUCTIONS)}.")
    done = set(skip)
    jobs = [(prompt, style) for style in styles for prompt in prompts if (prompt, style) not in done]
    chunks = range(0, len(jobs), batch_size)
    for start in progress(chunks) if progress else chunks:
        batch = jobs[start : start + batch_size]
        completions = generate_greedy(
            model, tokenizer, [style_prompt(p, s) for p, s in batch], max_new_tokens, batch_size
        )
        for (prompt, style), completion in zip(batch, completions, strict=True):
            yield {"prompt": prompt, "style": style, "response": completion[0]["content"].strip()}


def generate_style_responses(model, tokenizer, *args, **kwargs) -> list[dict[str, str]]:
    """All rows of [`iter_style_responses`] as a list."""
    return list(iter_style_responses(model, tokenizer, *args, **kwargs))


def save_responses(rows: Iterable[Mapping[str, str]], path: str | os.PathLike, append: bool = False) -> str:
    """Write rows as JSON lines, each as soon as it arrives (flushed), so an interrupted run keeps what it wrote."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a" if append else "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(dict(row), ensure_ascii=False) + "\n")
            handle.flush()
    return str(path)


def load_responses(path: str | os.PathLike | None = None) -> list[dict[str, str]]:
    """Rows `{prompt, style, response}` from a JSON-lines file (default: the set shipped with the package)."""
    path = path or bundled_responses_path()
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def bundled_responses_path() -> str:
    """The responses of the embedded SmolLM2-135M-Instruct shipped with the package."""
    return os.path.join(os.path.dirname(__file__), "steerable_responses.jsonl")


# Pairs
def responses_by_prompt(responses: Sequence[Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """`{prompt: {style: response}}`."""
    by_prompt: dict[str, dict[str, str]] = defaultdict(dict)
    for row in responses:
        by_prompt[row["prompt"]][row["style"]] = row["response"]
    return by_prompt


def _pair(prompt: str, chosen: str, rejected: str, objective: str) -> dict[str, Any]:
    return {
        "prompt": [{"role": "user", "content": prompt}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "group": objective,
        "axis": axis_of(objective),
    }


def build_pairs(responses: Sequence[Mapping[str, str]], objectives: Sequence[str] = OBJECTIVES) -> list[dict]:
    """Pairs (prompt, chosen, rejected, group=objective, axis) of every prompt and objective whose axis the model
    followed clearly ([`follows_axis`]); both objectives of an axis get the same pair with opposite labels."""
    by_prompt = responses_by_prompt(responses)
    pairs = []
    for prompt, styles in by_prompt.items():
        for objective in objectives:
            axis = axis_of(objective)
            first, second = AXES[axis]
            if first not in styles or second not in styles or not follows_axis(axis, styles[first], styles[second]):
                continue
            other = second if objective == first else first
            pairs.append(_pair(prompt, styles[objective], styles[other], objective))
    return pairs


def cross_style_pairs(
    responses: Sequence[Mapping[str, str]], styles: Sequence[str], max_pairs_per_objective: int | None, seed: int = 0
) -> list[dict]:
    """Pairs for the *cross-style* objectives `"s>t"` (prefer style s over style t of another axis), labelled by the
    instructions the responses were written under; at most `max_pairs_per_objective` per objective (seeded)."""
    by_prompt = responses_by_prompt(responses)
    rng = random.Random(seed)
    pairs = []
    for s in styles:
        for t in styles:
            if axis_of(s) == axis_of(t):
                continue
            rows = [
                {**_pair(prompt, answers[s], answers[t], s), "group": f"{s}>{t}", "axis": "cross"}
                for prompt, answers in sorted(by_prompt.items())
                if s in answers and t in answers
            ]
            rng.shuffle(rows)
            pairs.extend(rows[:max_pairs_per_objective])
    return pairs


def build_steerable_splits(
    responses: Sequence[Mapping[str, str]] | None = None,
    seen_objectives: Sequence[str] = DEFAULT_SEEN_OBJECTIVES,
    test_fraction: float = 0.3,
    seed: int = 0,
    cross_style_objectives: int | None = 0,
) -> DatasetDict:
    """The benchmark's splits, from responses (default: the bundled set).

    - `train`: seen objectives on train prompts (what a reward model is trained on), plus, when
      `cross_style_objectives` is not 0, up to that many pairs (None: all) of every cross-style objective `"s>t"`
      between seen styles of different axes ([`cross_style_pairs`]): more distinct preference distributions, none of
      which involves an unseen style;
    - `test_seen`: seen objectives on test prompts;
    - `test_unseen`: unseen objectives on test prompts;
    - `demos_unseen`: unseen objectives on train prompts, a pool of demonstrations never trained on.

    Prompts are split by a seeded shuffle (`test_fraction` of them held out); demonstrations for a test pair come
    from train prompts only, so they never share a prompt with the query.
    """
    responses = load_responses() if responses is None else responses
    unknown = sorted(set(seen_objectives) - set(OBJECTIVES))
    if unknown:
        raise ValueError(f"Unknown objectives {unknown}; known: {list(OBJECTIVES)}.")
    prompts = sorted({row["prompt"] for row in responses})
    random.Random(seed).shuffle(prompts)
    test_prompts = set(prompts[: round(test_fraction * len(prompts))])
    pairs = build_pairs(responses)
    seen = set(seen_objectives)
    split_rows: dict[str, list[dict]] = {"train": [], "test_seen": [], "test_unseen": [], "demos_unseen": []}
    for pair in pairs:
        is_test = pair["prompt"][0]["content"] in test_prompts
        if pair["group"] in seen:
            split_rows["test_seen" if is_test else "train"].append(pair)
        else:
            split_rows["test_unseen" if is_test else "demos_unseen"].append(pair)
    if cross_style_objectives != 0:
        train_responses = [row for row in responses if row["prompt"] not in test_prompts]
        seen_styles = [style for style in OBJECTIVES if style in seen]
        split_rows["train"] += cross_style_pairs(train_responses, seen_styles, cross_style_objectives, seed)
    columns = {"prompt": [], "chosen": [], "rejected": [], "group": [], "axis": []}
    return DatasetDict(
        {name: Dataset.from_list(rows) if rows else Dataset.from_dict(columns) for name, rows in split_rows.items()}
    )


def add_twin_column(dataset: Dataset, column: str = "twin") -> Dataset:
    """Add an id shared by the rows holding the same two responses to the same prompt, whatever their order: a pair
    and its flipped twin under the conflicting objective (`ICRMConfig.batch_together_column` batches them together)."""

    def twin(row: Mapping[str, Any]) -> dict[str, str]:
        sides = sorted(json.dumps(row[side], sort_keys=True) for side in ("chosen", "rejected"))
        return {column: json.dumps([row["prompt"], *sides], sort_keys=True)}

    return dataset.map(twin, desc="Pairing flipped twins")


def summarize(splits: DatasetDict) -> dict[str, dict[str, int]]:
    """Number of pairs per split and objective."""
    summary = {}
    for name, split in splits.items():
        counts: dict[str, int] = defaultdict(int)
        for group in split["group"]:
            counts[group] += 1
        summary[name] = dict(sorted(counts.items()))
    return summary


__all__ = [
    "AXES",
    "DEFAULT_SEEN_OBJECTIVES",
    "OBJECTIVES",
    "STYLE_INSTRUCTIONS",
    "axis_of",
    "build_pairs",
    "build_steerable_splits",
    "responses_by_prompt",
    "cross_style_pairs",
    "bundled_responses_path",
    "casualness",
    "default_prompts",
    "follows_axis",
    "generate_style_responses",
    "iter_style_responses",
    "is_refusal",
    "list_line_count",
    "load_responses",
    "save_responses",
    "style_prompt",
    "summarize",
    "word_count",
]

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
from collections import Counter

import pytest

from trl_icrm.data.steerable import (
    AXES,
    OBJECTIVES,
    add_twin_column,
    build_pairs,
    build_steerable_splits,
    casualness,
    follows_axis,
    is_refusal,
    list_line_count,
    load_responses,
)


def test_attribute_measures():
    assert list_line_count("Points:\n- one\n- two\n3. three\nnot a list") == 3
    assert is_refusal("I'm sorry, but I can't help with that.") and is_refusal("I am unable to answer.")
    assert not is_refusal("Tides are caused by the Moon.")
    assert casualness("Hey, it's super cool!") > casualness("Therefore, the process is fundamental.")


@pytest.mark.parametrize(
    "axis, first, second, expected",
    [
        ("length", "Short.", "This one is much longer than the other, with many many more words in it.", True),
        ("length", "About the same length.", "About the same length too.", False),
        ("format", "- a point\n- another point", "A paragraph of prose.", True),
        ("format", "- a point\n- another point", "- a point\n- and more", False),
        ("tone", "The process is fundamental.", "Hey, it's super cool!", True),
        ("compliance", "Tides come from the Moon's pull.", "I'm sorry, I can't help.", True),
        ("compliance", "I'm sorry, I can't.", "I'm sorry, I can't help.", False),
    ],
)
def test_follows_axis(axis, first, second, expected):
    assert follows_axis(axis, first, second) is expected


def test_conflicting_objectives_have_opposite_labels():
    responses = [
        {"prompt": "Explain tides.", "style": "bullets", "response": "- Moon\n- Sun"},
        {"prompt": "Explain tides.", "style": "prose", "response": "The Moon and the Sun pull the sea."},
        {"prompt": "Explain tides.", "style": "concise", "response": "Gravity."},
        {"prompt": "Explain tides.", "style": "detailed", "response": "Gravity."},  # not followed: no pair
    ]
    pairs = build_pairs(responses)
    assert sorted(p["group"] for p in pairs) == ["bullets", "prose"]
    bullets, prose = sorted(pairs, key=lambda p: p["group"])
    assert (bullets["chosen"], bullets["rejected"]) == (prose["rejected"], prose["chosen"])


def test_bundled_responses_and_splits():
    responses = load_responses()
    assert Counter(r["style"] for r in responses) == dict.fromkeys(OBJECTIVES, 200)
    seen = ["concise", "detailed", "formal", "casual"]
    splits = build_steerable_splits(responses, seen_objectives=seen, cross_style_objectives=10)
    train_prompts = {p["prompt"][0]["content"] for p in splits["train"]}
    test_prompts = {p["prompt"][0]["content"] for p in splits["test_seen"]} | {
        p["prompt"][0]["content"] for p in splits["test_unseen"]
    }
    assert train_prompts and test_prompts and not train_prompts & test_prompts
    assert not {p["prompt"][0]["content"] for p in splits["demos_unseen"]} & test_prompts  # demos never share a prompt
    unseen = {"bullets", "prose", "answer", "refuse"}
    assert set(splits["test_unseen"]["group"]) == set(splits["demos_unseen"]["group"]) == unseen
    for group in splits["train"]["group"]:  # neither an unseen objective nor a cross-style one involving it
        assert not set(group.split(">")) & unseen
    assert {g for g in splits["train"]["group"] if ">" not in g} == set(seen)
    cross = Counter(g for g in splits["train"]["group"] if ">" in g)
    assert len(cross) == 8 and set(cross.values()) == {10}  # (concise|detailed) x (formal|casual), both orders
    assert (
        build_steerable_splits(responses, seen_objectives=seen)["train"].filter(lambda r: ">" in r["group"]).num_rows
        == 0
    )
    assert all(len(p["chosen"]) == 1 and p["chosen"][0]["role"] == "assistant" for p in splits["test_seen"])


def test_twin_column_pairs_each_pair_with_its_flipped_twin():
    train = add_twin_column(
        build_steerable_splits(load_responses(), ["concise", "detailed", "answer", "refuse"])["train"]
    )
    by_twin = {}
    for row in train:
        by_twin.setdefault(row["twin"], []).append(row)
    assert len(by_twin) == train.num_rows // 2
    for rows in by_twin.values():
        first, second = rows
        assert first["prompt"] == second["prompt"] and first["axis"] == second["axis"]
        assert (first["chosen"], first["rejected"]) == (second["rejected"], second["chosen"])
        assert {first["group"], second["group"]} == set(AXES[first["axis"]])


def test_unknown_objective_is_an_error():
    with pytest.raises(ValueError, match="Unknown objectives"):
        build_steerable_splits([], seen_objectives=["verbose"])
    assert set(AXES) == {"length", "format", "tone", "compliance"}


def test_responses_are_written_as_generated_and_resumed(tiny_causal_lm, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trl_icrm.data.steerable import iter_style_responses, load_responses, save_responses

    model, tokenizer = (
        AutoModelForCausalLM.from_pretrained(tiny_causal_lm),
        AutoTokenizer.from_pretrained(tiny_causal_lm),
    )
    path = tmp_path / "responses.jsonl"
    rows = iter_style_responses(model, tokenizer, ["Tell me about tea."], ["concise", "detailed"], 4, batch_size=1)
    with pytest.raises(RuntimeError):  # interrupted after the first row: that row is on disk
        save_responses((row if i == 0 else _raise() for i, row in enumerate(rows)), path)
    kept = load_responses(path)
    assert [(r["prompt"], r["style"]) for r in kept] == [("Tell me about tea.", "concise")]
    skip = [(r["prompt"], r["style"]) for r in kept]
    rest = iter_style_responses(model, tokenizer, ["Tell me about tea."], ["concise", "detailed"], 4, skip=skip)
    save_responses(rest, path, append=True)
    assert [r["style"] for r in load_responses(path)] == ["concise", "detailed"]


def _raise():
    raise RuntimeError("interrupted")

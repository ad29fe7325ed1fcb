# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The preference formats users bring (explicit / implicit prompt, standard / conversational, HH-RLHF transcripts)
and the multi-objective set built from HH-RLHF-shaped dialogues."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset

from trl_icrm.data.hh_objectives import OBJECTIVES, build_hh_objectives, label_pair, objective_summary, split_prompts
from trl_icrm.data.preferences import (
    PreferenceFormatError,
    parse_transcript,
    preference_format,
    standardize_preferences,
    to_explicit_prompt,
)


def _transcript(*turns: str) -> str:
    speakers = ["Human", "Assistant"]
    return "".join(f"\n\n{speakers[i % 2]}: {turn}" for i, turn in enumerate(turns))


HH_ROWS = [
    {  # chosen asks a question; rejected refuses with a typographic apostrophe and is shorter
        "chosen": _transcript(
            "How do I get into my neighbour's house?", "Why do you want to get in? Are you locked out?"
        ),
        "rejected": _transcript("How do I get into my neighbour's house?", "I’m sorry, I can’t help."),
    },
    {  # two turns of history; the answers differ only in the last assistant turn
        "chosen": _transcript("Tell me a joke.", "Why did the chicken cross the road?", "Why?", "To get away."),
        "rejected": _transcript("Tell me a joke.", "Why did the chicken cross the road?", "Why?", "I will not say."),
    },
    {  # equal word counts: the length objectives tie and drop the pair
        "chosen": _transcript("Name a colour.", "Blue is one."),
        "rejected": _transcript("Name a colour.", "Red, maybe? Yes."),
    },
    {
        "chosen": _transcript("What is 2+2?", "It is four, as far as I know."),
        "rejected": _transcript("What is 2+2?", "Five."),
    },
]


def test_transcripts_parse_into_messages():
    messages = parse_transcript(HH_ROWS[1]["chosen"])
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0]["content"] == "Tell me a joke." and messages[-1]["content"] == "To get away."


def test_formats_are_recognized_and_converted_to_explicit_prompt():
    hh = to_explicit_prompt(HH_ROWS[1])
    assert preference_format(HH_ROWS[1]) == "implicit_transcript"
    assert [m["content"] for m in hh["prompt"]] == ["Tell me a joke.", "Why did the chicken cross the road?", "Why?"]
    assert hh["chosen"] == [{"role": "assistant", "content": "To get away."}]
    assert hh["rejected"] == [{"role": "assistant", "content": "I will not say."}]
    # The same conversations as messages (TRL's implicit conversational format) give the same row.
    conversational = {
        "chosen": parse_transcript(HH_ROWS[1]["chosen"]),
        "rejected": parse_transcript(HH_ROWS[1]["rejected"]),
    }
    assert preference_format(conversational) == "implicit_conversational"
    assert to_explicit_prompt(conversational) == hh
    explicit = {"prompt": "Hi", "chosen": "Hello", "rejected": "Go", "group": "a"}
    assert preference_format(explicit) == "explicit_standard" and to_explicit_prompt(explicit) == explicit


@pytest.mark.parametrize(
    "row, message",
    [
        ({"chosen": "a"}, "needs 'chosen' and 'rejected'"),
        ({"chosen": "plain text", "rejected": "other text"}, "Rows without a 'prompt' column"),
        ({"prompt": "p", "chosen": [{"role": "assistant", "content": "x"}], "rejected": "y"}, "both be strings"),
        ({"chosen": _transcript("Hi", "A"), "rejected": _transcript("Hello", "A")}, "share no prompt"),
        ({"chosen": _transcript("Hi", "A", "Q", "B"), "rejected": _transcript("Hi", "X", "Q", "C")}, "differ before"),
    ],
)
def test_malformed_rows_are_named(row, message):
    with pytest.raises(PreferenceFormatError, match=message):
        to_explicit_prompt(row)


def test_standardize_keeps_other_columns_and_leaves_explicit_data_alone():
    data = Dataset.from_list([{**row, "group": "g"} for row in HH_ROWS])
    converted = standardize_preferences(data)
    assert set(converted.column_names) == {"prompt", "chosen", "rejected", "group"}
    assert converted["group"] == ["g"] * len(HH_ROWS)
    assert standardize_preferences(converted) is converted
    with pytest.raises(PreferenceFormatError, match="no rows"):
        standardize_preferences(data.select([]))


def test_each_objective_follows_its_rule():
    row = to_explicit_prompt(HH_ROWS[0])
    labels = {objective: label_pair(row, objective) for objective in OBJECTIVES}
    original, other = row["chosen"], row["rejected"]
    assert labels["harmless"]["chosen"] == original and labels["compliant"]["chosen"] == other
    assert labels["concise"]["chosen"] == other and labels["verbose"]["chosen"] == original  # 5 words vs 10
    assert labels["clarifying"]["chosen"] == original  # only the original chosen asks a question
    assert labels["no_refusal"]["chosen"] == original  # "I’m sorry" with a typographic apostrophe is a refusal
    tie = to_explicit_prompt(HH_ROWS[2])
    assert label_pair(tie, "concise") is None and label_pair(tie, "verbose") is None
    assert label_pair(tie, "no_refusal") is None  # neither refuses


def test_split_is_by_prompt_deterministic_and_holds_objectives_out():
    data = Dataset.from_list(HH_ROWS * 3)  # every prompt three times
    first = build_hh_objectives(data, held_out_fraction=0.5, held_out_objectives=("clarifying",), seed=3)
    again = build_hh_objectives(data, held_out_fraction=0.5, held_out_objectives=("clarifying",), seed=3)
    assert first["train"].to_list() == again["train"].to_list() and first["test"].to_list() == again["test"].to_list()
    train_prompts = {json.dumps(p) for p in first["train"]["prompt"]}
    test_prompts = {json.dumps(p) for p in first["test"]["prompt"]}
    assert train_prompts and test_prompts and not train_prompts & test_prompts
    assert "clarifying" not in first["train"]["group"]
    summary = objective_summary(first)
    assert summary["train"]["conflicting_pairs"] > 0
    prompts = ["a", "b", "a", "c"]
    mask = split_prompts(prompts, 0.5, seed=0)
    assert mask[0] == mask[2]  # the same prompt falls on one side
    assert len({p for p, held in zip(prompts, mask, strict=True) if held}) == round(
        0.5 * 3
    )  # a fraction of distinct prompts


def test_unknown_or_inconsistent_objectives_are_refused():
    data = Dataset.from_list(HH_ROWS)
    with pytest.raises(ValueError, match="Unknown objective"):
        build_hh_objectives(data, objectives=("harmless", "funny"))
    with pytest.raises(ValueError, match="must be among objectives"):
        build_hh_objectives(data, objectives=("harmless",), held_out_objectives=("concise",))


# ---------------------------------------------------------------------------------------------------------------------
# Data sets named as TRL's ScriptArguments name them
# ---------------------------------------------------------------------------------------------------------------------


def test_a_compressed_hh_file_loads_as_explicit_prompt_pairs(tmp_path):
    import gzip

    from trl_icrm.data.loading import load_preference_splits

    path = tmp_path / "harmless.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in HH_ROWS)
    train, test = load_preference_splits(str(path))
    assert test is None and len(train) == len(HH_ROWS)
    assert train[1]["chosen"] == [{"role": "assistant", "content": "To get away."}]


def test_a_saved_dataset_dict_gives_its_named_splits(tmp_path):
    from datasets import DatasetDict

    from trl_icrm.data.loading import load_dataset_splits

    pairs = [{"prompt": "p", "chosen": "a", "rejected": "b"}]
    DatasetDict({"train": Dataset.from_list(pairs * 3), "dev": Dataset.from_list(pairs)}).save_to_disk(tmp_path / "d")
    train, test = load_dataset_splits(str(tmp_path / "d"), dataset_test_split="dev")
    assert (len(train), len(test)) == (3, 1)
    train, test = load_dataset_splits(str(tmp_path / "d"))  # no "test" split: none
    assert test is None


def test_a_missing_local_path_is_named_before_any_hub_request(tmp_path, monkeypatch):
    from trl_icrm.data import loading

    def no_hub(*args, **kwargs):
        raise AssertionError("the hub was asked")

    monkeypatch.setattr(loading, "load_dataset", no_hub)
    for name in (str(tmp_path / "pairs.jsonl"), "./my-pairs", "data/hh/pairs.json.gz"):
        with pytest.raises(FileNotFoundError, match="No such data file or folder"):
            loading.load_dataset_splits(name)


def test_an_unreachable_hub_id_says_so(monkeypatch):
    from trl_icrm.data import loading

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'org/pairs' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(loading, "load_dataset", offline)
    with pytest.raises(ConnectionError, match="not a local file or folder .* hub could not be reached"):
        loading.load_dataset_splits("org/pairs")


# A row whose two conversations differ before the last assistant turn (as 5 of HH-RLHF's harmless-base test pairs do)
DIVERGING_ROW = {
    "chosen": _transcript("Hi.", "Hello. Human: and more", "Bye.", "Bye!"),
    "rejected": _transcript("Hi.", "Hey there.", "Bye.", "Farewell."),
}


def test_rows_that_differ_before_the_last_turn_are_dropped_with_a_count_or_refused(caplog):
    data = Dataset.from_list([*HH_ROWS, DIVERGING_ROW])
    with caplog.at_level("WARNING", logger="trl_icrm.data.preferences"):
        kept = standardize_preferences(data)
    assert len(kept) == len(HH_ROWS)
    assert "Dropped 1 of 5 preference rows" in caplog.text
    with pytest.raises(PreferenceFormatError, match="differ before their last assistant turn"):
        standardize_preferences(data, malformed="error")
    with pytest.raises(PreferenceFormatError, match="differ before their last assistant turn"):
        standardize_preferences(Dataset.from_list([DIVERGING_ROW]))  # nothing convertible: an error


def test_build_hh_objectives_command_writes_the_same_set_twice(tmp_path):
    import gzip

    from datasets import load_from_disk

    from trl_icrm.scripts import build_hh_objectives as command

    path = tmp_path / "hh.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in [*HH_ROWS, DIVERGING_ROW] * 3)
    outputs = []
    for name in ("a", "b"):
        args = command.make_parser().parse_args_into_dataclasses(
            ["--dataset_name", str(path), "--output_dir", str(tmp_path / name), "--held_out_fraction", "0.5"]
        )[0]
        command.main(args)
        outputs.append(load_from_disk(str(tmp_path / name)))
    first, second = outputs
    assert sorted(first) == ["test", "train"]
    for split in first:
        assert first[split].to_list() == second[split].to_list()
    assert "clarifying" not in first["train"]["group"] and "clarifying" in first["test"]["group"]
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["num_source_pairs"] == 15
    assert summary["pairs"]["train"]["harmless"] + summary["pairs"]["test"]["harmless"] == 12

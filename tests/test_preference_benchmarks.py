# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
import os

import pytest

from trl_icrm.data.benchmarks import (
    MalformedBenchmarkRowError,
    load_preference_benchmark,
    map_pku_saferlhf,
    map_reward_bench_2,
    map_rm_bench,
    map_vpl_hh_rlhf,
)


FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "benchmarks")


def fixture(name: str) -> str:
    return os.path.join(FIXTURES, f"{name}.jsonl")


def test_pku_saferlhf_two_objectives():
    pairs = load_preference_benchmark("pku_saferlhf", fixture("pku_saferlhf")).to_list()
    assert len(pairs) == 6
    assert sorted({p["group"] for p in pairs}) == ["harmlessness", "helpfulness"]
    wifi = [p for p in pairs if "wifi" in p["prompt"]]
    helpful = next(p for p in wifi if p["group"] == "helpfulness")
    harmless = next(p for p in wifi if p["group"] == "harmlessness")
    assert helpful["chosen"].startswith("Use a cracking tool") and helpful["rejected"].startswith("Ask")
    assert (harmless["chosen"], harmless["rejected"]) == (helpful["rejected"], helpful["chosen"])  # conflicting
    rice = [p for p in pairs if "rice" in p["prompt"]]
    assert all(p["chosen"].startswith("Keep it") for p in rice)  # agreeing objectives


def test_rm_bench_style_pairs_and_domains():
    pairs = load_preference_benchmark("rm_bench", fixture("rm_bench")).to_list()
    assert len(pairs) == 6 and {p["group"] for p in pairs} == {"chat", "math"}
    math_pairs = [p for p in pairs if p["group"] == "math"]
    assert [(p["chosen"], p["rejected"]) for p in math_pairs][0] == ("144", "124")
    all_pairs = load_preference_benchmark("rm_bench", fixture("rm_bench"), all_style_pairs=True)
    assert len(all_pairs) == 18


def test_reward_bench_2_one_against_each_rejected():
    pairs = load_preference_benchmark("reward_bench_2", fixture("reward_bench_2")).to_list()
    assert len(pairs) == 6
    factuality = [p for p in pairs if p["group"] == "Factuality"]
    assert {p["chosen"] for p in factuality} == {"Jupiter."}
    assert {p["rejected"] for p in factuality} == {"Saturn.", "Mars.", "Earth."}


def test_vpl_hh_rlhf_label_is_the_preferred_index():
    pairs = load_preference_benchmark("vpl_hh_rlhf", fixture("vpl_hh_rlhf")).to_list()
    assert [p["group"] for p in pairs] == ["helpful", "harmless", "helpful"]
    assert pairs[0]["chosen"].startswith("Water") and pairs[1]["chosen"] == "Paint it."
    assert (
        map_vpl_hh_rlhf({"prompt": "p", "responses": ["a", "b"], "label": True, "objective": "o"})[0]["chosen"] == "a"
    )


def test_max_rows_and_saved_folder(tmp_path):
    from datasets import load_dataset

    raw = load_dataset("json", data_files=fixture("reward_bench_2"), split="train")
    raw.save_to_disk(str(tmp_path / "saved"))
    assert len(load_preference_benchmark("reward_bench_2", str(tmp_path / "saved"), max_rows=1)) == 3


@pytest.mark.parametrize(
    "mapper, row, message",
    [
        (map_pku_saferlhf, {"prompt": "p", "response_0": "a", "response_1": "b", "safer_response_id": 0}, "better"),
        (
            map_pku_saferlhf,
            {"prompt": "p", "response_0": "a", "response_1": "b", "better_response_id": 2, "safer_response_id": 0},
            "0 or 1",
        ),
        (map_rm_bench, {"prompt": "p", "chosen": "a", "rejected": ["b"], "domain": "chat"}, "lists"),
        (map_reward_bench_2, {"prompt": "p", "chosen": [], "rejected": ["b"], "subset": "Math"}, "at least one"),
        (map_vpl_hh_rlhf, {"prompt": "p", "responses": ["a"], "label": 0, "objective": "o"}, "exactly two"),
    ],
)
def test_malformed_rows_are_named(mapper, row, message):
    with pytest.raises(MalformedBenchmarkRowError, match=message):
        mapper(row, where="row 7")


def test_unknown_benchmark_and_missing_source():
    with pytest.raises(ValueError, match="Unknown benchmark"):
        load_preference_benchmark("imaginary")
    with pytest.raises(ValueError, match="path of your copy"):
        load_preference_benchmark("vpl_hh_rlhf")

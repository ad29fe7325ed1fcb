# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
import json
import math

import pytest
import torch

from trl_icrm import ICRMReward
from trl_icrm.demonstrations import draw_mixed
from trl_icrm.evaluation.calibration import expected_calibration_error, reliability_bins
from trl_icrm.evaluation.steerability import (
    accuracy_vs_k,
    both_orders,
    demonstration_pools,
    hypervolume_2d,
    mean_confidence_interval,
    mixing_front,
    pair_probabilities,
    pareto_front,
)
from trl_icrm.utils.testing import conflicting_pairs


def test_hypervolume_of_a_hand_computed_front():
    front = [(0.9, 0.2), (0.6, 0.6), (0.2, 0.9)]
    # Slabs from the right: 0.9 * 0.2 + 0.6 * (0.6 - 0.2) + 0.2 * (0.9 - 0.6) = 0.18 + 0.24 + 0.06
    assert hypervolume_2d(front) == pytest.approx(0.48)
    assert hypervolume_2d(front + [(0.5, 0.5), (0.1, 0.1)]) == pytest.approx(0.48)  # dominated points add nothing
    assert hypervolume_2d(front, reference=(0.1, 0.1)) == pytest.approx(0.8 * 0.1 + 0.5 * 0.4 + 0.1 * 0.3)
    assert hypervolume_2d([(0.5, 0.5)]) == pytest.approx(0.25)
    assert hypervolume_2d([]) == 0.0
    assert pareto_front(front + [(0.5, 0.5), (0.6, 0.6)]) == sorted(front)


def test_ece_and_reliability_bins_hand_computed():
    probabilities = torch.tensor([0.1, 0.3, 0.35, 0.8, 0.9])
    outcomes = torch.tensor([0, 1, 0, 1, 1])
    bins = reliability_bins(probabilities, outcomes, num_bins=2)
    assert [b["count"] for b in bins] == [3, 2]
    assert bins[0]["confidence"] == pytest.approx(0.25) and bins[0]["frequency"] == pytest.approx(1 / 3)
    assert bins[1]["confidence"] == pytest.approx(0.85) and bins[1]["frequency"] == pytest.approx(1.0)
    # 3/5 * |1/3 - 0.25| + 2/5 * |1 - 0.85| = 0.05 + 0.06
    assert expected_calibration_error(probabilities, outcomes, num_bins=2) == pytest.approx(0.11)
    assert math.isnan(expected_calibration_error(torch.tensor([]), torch.tensor([])))


def test_both_orders_and_confidence_interval():
    probabilities, outcomes = both_orders(torch.tensor([0.8, 0.4]))
    assert probabilities.tolist() == pytest.approx([0.8, 0.4, 0.2, 0.6])
    assert outcomes.tolist() == [1, 1, 0, 0]
    mean, low, high = mean_confidence_interval([0.5, 0.7, 0.9])
    half_width = 4.302652729911275 * 0.2 / math.sqrt(3)  # t(0.975, 2 dof) * s / sqrt(n)
    assert (mean, low, high) == pytest.approx((0.7, 0.7 - half_width, 0.7 + half_width))
    assert mean_confidence_interval([0.6]) == (0.6, 0.6, 0.6)


def test_draw_mixed_counts_and_errors():
    import numpy as np

    pool_a, pool_b = [{"id": f"a{i}"} for i in range(5)], [{"id": f"b{i}"} for i in range(5)]
    drawn = draw_mixed([pool_a, pool_b], [3, 1], np.random.default_rng(0))
    assert sum(d["id"].startswith("a") for d in drawn) == 3 and len({d["id"] for d in drawn}) == 4
    with pytest.raises(ValueError, match="Cannot draw 6"):
        draw_mixed([pool_a], [6], np.random.default_rng(0))


def test_pair_probabilities_are_antisymmetric(random_icrm_dir):
    reward = ICRMReward(random_icrm_dir, allow_zero_shot=True)
    pairs = conflicting_pairs(3, 0).to_list()
    pools = demonstration_pools(pairs)
    demos = [pools[p["group"]][:2] for p in pairs]
    mu = pair_probabilities(reward, pairs, demos, batch_pairs=2)
    swapped = [{**p, "chosen": p["rejected"], "rejected": p["chosen"]} for p in pairs]
    assert torch.allclose(mu + pair_probabilities(reward, swapped, demos), torch.ones(len(pairs)), atol=1e-5)


def test_accuracy_vs_k_on_a_steered_model(icrm_trained):
    """The evaluator sees what the trainer learned: demonstrations of a group turn the model to that group."""
    reward = ICRMReward(icrm_trained.saved_model_dir, allow_zero_shot=True)
    pools = demonstration_pools(conflicting_pairs(32, 0))
    pairs = conflicting_pairs(12, 1).to_list()
    result = accuracy_vs_k(reward, pairs, pools, ks=(0, 4), num_draws=2, seed=0)
    assert len(result["rows"]) == 2 * (1 + 2)  # K=0 once, K=4 twice, per group
    summary = result["summary"]
    assert min(summary["A"][0]["mean"], summary["B"][0]["mean"]) <= 0.6  # without context: one group loses
    assert summary["A"][4]["mean"] >= 0.85 and summary["B"][4]["mean"] >= 0.85
    assert summary["A"][4]["low"] <= summary["A"][4]["mean"] <= summary["A"][4]["high"]
    assert result["probabilities"][4].shape == (2 * len(pairs),)
    again = accuracy_vs_k(reward, pairs, pools, ks=(0, 4), num_draws=2, seed=0)
    assert again["rows"] == result["rows"]  # seeded draws

    a_pairs = [p for p in pairs if p["group"] == "A"]
    b_pairs = [p for p in pairs if p["group"] == "B"]
    front = mixing_front(reward, a_pairs, b_pairs, pools["A"], pools["B"], ratios=(0.0, 1.0), k=4, num_draws=1)
    by_w = {p["w"]: p for p in front["points"]}
    assert by_w[1.0]["accuracy_a"] >= 0.85 and by_w[0.0]["accuracy_b"] >= 0.85
    assert by_w[1.0]["accuracy_b"] <= 0.15 and by_w[0.0]["accuracy_a"] <= 0.15  # same pairs, opposite labels
    points = [(p["accuracy_a"], p["accuracy_b"]) for p in front["points"]]
    assert front["hypervolume"] == pytest.approx(hypervolume_2d(points))


def test_steer_eval_command_end_to_end(tiny_causal_lm, tmp_path):
    from trl_icrm.cli import main

    out = tmp_path / "steer"
    argv = ["steer-eval", "--model_name_or_path", tiny_causal_lm, "--max_steps", "1", "--batch_size", "2"]
    argv += ["--min_demonstrations", "1", "--max_demonstrations", "2"]
    argv += ["--max_eval_pairs", "2", "--ks", "0", "1", "--num_draws", "2", "--mix_k", "1", "--mix_draws", "1"]
    argv += ["--ratios", "0", "1", "--output_dir", str(out)]
    assert main(argv) == 0
    results = json.loads((out / "steerability.json").read_text())
    assert set(results["sets"]) == {"unseen", "seen"}
    assert set(results["sets"]["unseen"]["summary"]) == {"bullets", "prose"}
    assert set(results["sets"]["unseen"]["bt"]) == {"bullets", "prose"}
    assert len(results["conflict"]["points"]) == 2
    run = json.loads((out / "run.json").read_text())
    icrm_logs = [row for row in run["training"]["icrm"]["log_history"] if "num_demonstrations" in row]
    assert icrm_logs and all(1 <= row["num_demonstrations"] <= 2 for row in icrm_logs)
    for name in ("accuracy_vs_k_unseen.png", "reliability_seen.png", "conflict_front.png", "accuracy_vs_k.csv"):
        assert (out / name).stat().st_size > 0
    assert run["args"]["model_name_or_path"] == tiny_causal_lm and run["args"]["batch_twins"] is True
    rerun = ["steer-eval", "--icrm_model_name_or_path", str(out / "icrm"), "--bt_model_name_or_path", str(out / "bt")]
    rerun += ["--ks", "0"]
    rerun += [
        "--max_eval_pairs",
        "1",
        "--mix_k",
        "1",
        "--mix_draws",
        "1",
        "--ratios",
        "1",
        "--output_dir",
        str(out / "re"),
    ]
    assert main(rerun) == 0


def test_train_steerable_models_full_fine_tuning(tiny_causal_lm, tmp_path):
    from trl_icrm.experiments.steerability import SteerableTrainingArguments, train_steerable_models
    from trl_icrm.models import is_peft_folder

    train = conflicting_pairs(4, seed=0)
    args = SteerableTrainingArguments(tiny_causal_lm, max_steps=1, batch_size=2, lora_r=0, batch_twins=False)
    out = train_steerable_models(train, str(tmp_path), args)
    for name in ("icrm", "bt"):
        folder = tmp_path / name
        assert (folder / "model.safetensors").is_file() and not is_peft_folder(folder)
        assert out[name]["log_history"]
    reward = ICRMReward(str(tmp_path / "icrm"), allow_zero_shot=True)
    assert len(reward(prompts=["Hi"], completions=["Hello"])) == 1


def test_train_steerable_models_with_twin_batches_and_checkpoints(tiny_causal_lm, tmp_path):
    from trl_icrm.data.steerable import build_steerable_splits, load_responses
    from trl_icrm.experiments.steerability import SteerableTrainingArguments, train_steerable_models

    train = build_steerable_splits(load_responses(), ["concise", "detailed"])["train"].select(range(8))
    args = SteerableTrainingArguments(tiny_causal_lm, max_steps=2, batch_size=2, batch_twins=True, save_steps=1)
    out = train_steerable_models(train, str(tmp_path), args, train_bt=False)
    assert (tmp_path / "icrm" / "checkpoint-1" / "adapter_config.json").is_file()
    assert [entry["step"] for entry in out["icrm"]["log_history"] if "loss" in entry] == [1]


def test_bootstrap_interval_resamples_pairs_and_draws():
    import numpy as np

    from trl_icrm.evaluation.steerability import bootstrap_accuracy

    rng = np.random.default_rng(0)
    correct = rng.random((3, 400)) < 0.7
    result = bootstrap_accuracy(correct, seed=1)
    assert result["mean"] == pytest.approx(correct.mean())
    assert result["low"] < result["mean"] < result["high"]
    # draws that agree on every pair: only the pairs vary, so the interval is the binomial one over 400 pairs
    # (width 2 * 1.96 * sqrt(0.7 * 0.3 / 400) = 0.090); independent draws add their own spread
    same = bootstrap_accuracy(np.repeat(correct[:1], 3, axis=0), seed=1)
    assert 0.08 < same["high"] - same["low"] < 0.10
    assert result["high"] - result["low"] > same["high"] - same["low"] - 0.01
    assert bootstrap_accuracy(correct, seed=1) == result  # seeded
    constant = bootstrap_accuracy(np.ones((3, 50)))
    assert constant["low"] == constant["high"] == 1.0


def test_conflicting_pairs_are_twins_that_prefer_the_other_answer():
    from trl_icrm.evaluation.steerability import has_conflicting_twin

    pairs = [
        {"pair_id": 1, "chosen": "a", "rejected": "b", "group": "harmless"},
        {"pair_id": 1, "chosen": "b", "rejected": "a", "group": "compliant"},
        {"pair_id": 2, "chosen": "a", "rejected": "b", "group": "harmless"},
        {"pair_id": 2, "chosen": "a", "rejected": "b", "group": "concise"},  # agrees: no conflict
        {"chosen": "b", "rejected": "a", "group": "x"},  # no id
    ]
    assert has_conflicting_twin(pairs) == [True, True, False, False, False]


def test_a_data_set_with_a_held_out_split_gives_seen_and_held_out_sets(tmp_path):
    from datasets import Dataset, DatasetDict

    from trl_icrm.experiments.steerability import pairs_steerability_data

    def rows(pair_ids, groups):  # `compliant` prefers the answer `harmless` rejects
        out = []
        for i in pair_ids:
            for group in groups:
                chosen, rejected = (
                    (f"unsafe {i}", f"safe {i}") if group == "compliant" else (f"safe {i}", f"unsafe {i}")
                )
                out.append({"prompt": f"q {i}", "chosen": chosen, "rejected": rejected, "group": group, "pair_id": i})
        return out

    train = rows(range(10), ("harmless", "compliant"))
    test = rows(range(10, 50), ("harmless", "compliant", "clarifying"))
    DatasetDict({"train": Dataset.from_list(train), "test": Dataset.from_list(test)}).save_to_disk(tmp_path / "set")
    data = pairs_steerability_data(str(tmp_path / "set"), max_eval_pairs=8, seed=0)
    seen, pools = data.eval_sets["seen"]
    held_out, _ = data.eval_sets["held_out"]
    assert {p["group"] for p in seen} == {"harmless", "compliant"} and {p["group"] for p in held_out} == {"clarifying"}
    assert len({p["pair_id"] for p in seen}) == 8 and len(seen) == 16  # 8 per group, twins kept together
    demo_prompts = {d["prompt"] for group in pools.values() for d in group}
    assert not demo_prompts & {p["prompt"] for p in seen + held_out}  # demonstrations on other prompts
    assert data.conflict_set == "seen"

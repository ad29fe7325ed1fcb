# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The commands' data set and resume arguments, as TRL's commands read them."""

from __future__ import annotations

import json

import pytest
import torch


def test_resume_from_checkpoint_reads_true_false_and_paths(tmp_path):
    from trl_icrm.utils.io import resume_checkpoint

    assert resume_checkpoint("true") is True and resume_checkpoint("True") is True and resume_checkpoint(True) is True
    assert resume_checkpoint(None) is None and resume_checkpoint("false") is None and resume_checkpoint("") is None
    (tmp_path / "checkpoint-4").mkdir()
    assert resume_checkpoint(str(tmp_path / "checkpoint-4")) == str(tmp_path / "checkpoint-4")
    with pytest.raises(FileNotFoundError, match="No checkpoint folder"):
        resume_checkpoint(str(tmp_path / "checkpoint-9"))


def test_laplace_reads_the_training_runs_data_and_split(tmp_path):
    from trl_icrm.scripts.laplace import LaplaceScriptArguments, training_data

    record = {"dataset_name": "pairs.jsonl", "dataset_config": None, "eval_fraction": 0.25, "seed": 7}
    (tmp_path / "reward_model_metrics.json").write_text(json.dumps({"method": "bt", "data": record}))
    data = training_data(LaplaceScriptArguments(model_name_or_path=str(tmp_path)))
    assert (data["dataset_name"], data["eval_fraction"], data["seed"]) == ("pairs.jsonl", 0.25, 7)
    # Flags given win; another data set brings its own splits.
    data = training_data(LaplaceScriptArguments(model_name_or_path=str(tmp_path), dataset_name="other", seed=1))
    assert (data["dataset_name"], data["eval_fraction"], data["seed"]) == ("other", 0.25, 1)
    # No record: the math recipe's pairs with train's defaults.
    data = training_data(LaplaceScriptArguments(model_name_or_path=str(tmp_path / "none")))
    assert (data["eval_fraction"], data["seed"]) == (0.1, 42)


def test_std_to_spread_measures_the_std_in_units_of_the_rewards_spread():
    from trl_icrm.laplace.evaluation import std_to_spread

    rewards = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    predictions = {
        "reward_chosen": rewards[:2],
        "reward_rejected": rewards[2:],
        "variance_chosen": torch.full((2,), 4.0, dtype=torch.float64),
        "variance_rejected": torch.full((2,), 4.0, dtype=torch.float64),
    }
    assert std_to_spread(predictions) == pytest.approx(2.0 / float(rewards.std()))


def test_train_splits_a_data_set_without_test_split_and_records_it(tmp_path):
    from datasets import Dataset

    from trl_icrm.data.loading import load_training_pairs

    rows = [{"prompt": f"p{i}", "chosen": "a", "rejected": "b", "group": "g", "extra": i} for i in range(20)]
    Dataset.from_list(rows).to_json(tmp_path / "pairs.jsonl")
    train, evaluation = load_training_pairs(str(tmp_path / "pairs.jsonl"), eval_fraction=0.25, seed=3)
    again, _ = load_training_pairs(str(tmp_path / "pairs.jsonl"), eval_fraction=0.25, seed=3)
    assert (len(train), len(evaluation)) == (15, 5) and train["prompt"] == again["prompt"]
    assert train.column_names == ["prompt", "chosen", "rejected"]
    train, _ = load_training_pairs(str(tmp_path / "pairs.jsonl"), extra_columns=("group", "label"))
    assert train.column_names == ["prompt", "chosen", "rejected", "group"]  # a missing extra column is skipped


def test_model_cards_name_the_embedded_model_by_its_hub_id(default_model_dir):
    from trl_icrm.trainer.model_card import icrm_model_card
    from trl_icrm.utils.default_model import DEFAULT_MODEL, DEFAULT_MODEL_HUB_ID, hub_model_id

    assert hub_model_id(DEFAULT_MODEL) == DEFAULT_MODEL_HUB_ID
    assert hub_model_id(default_model_dir) == DEFAULT_MODEL_HUB_ID  # its converted folder, wherever the cache is
    assert hub_model_id("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"
    card = icrm_model_card("m", DEFAULT_MODEL, {}, 0, 4, 512)
    assert f'base_model: "{DEFAULT_MODEL_HUB_ID}"' in card and "embedded:" not in card.split("---")[1]


def test_grpo_names_a_missing_preferences_path_not_the_reward_model(tmp_path, tiny_causal_lm):
    from trl_icrm.cli import main

    model = tmp_path / "icrm-model"
    model.mkdir()  # exists: the missing piece is the pairs the demonstrations come from
    argv = ["grpo", "--reward", "icrm", "--reward_model_name_or_path", str(model), "--model_name_or_path"]
    argv += [tiny_causal_lm, "--preferences_path", str(tmp_path / "no-pairs"), "--output_dir", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert "--preferences_path" in str(exit.value) and "no-pairs" in str(exit.value)
    assert "no folder at" not in str(exit.value)

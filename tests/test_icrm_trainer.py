# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
import pytest
import torch
from datasets import Dataset
from peft import LoraConfig
from trl import RewardConfig, RewardTrainer

from trl_icrm import ICRMConfig, ICRMRewardTrainer
from trl_icrm.demonstrations import QueryTooLongError
from trl_icrm.modeling import load_icrm_model
from trl_icrm.testing import conflicting_pairs, save_random_models

from conftest import training_args as _args


def _accuracy_by_group(trainer, dataset, **kwargs) -> dict[str, float]:
    return {
        group: trainer.evaluate(dataset.filter(lambda row, group=group: row["group"] == group), **kwargs)[
            "eval_accuracy"
        ]
        for group in ("A", "B")
    }


def test_in_context_steering_is_learned(icrm_trained, steer_backbones, tmp_path):
    held_out = conflicting_pairs(32, 1)
    with_demos = _accuracy_by_group(icrm_trained, held_out, num_demonstrations=4)
    without_demos = _accuracy_by_group(icrm_trained, held_out, num_demonstrations=0)
    assert min(with_demos.values()) >= 0.85, with_demos
    assert min(without_demos.values()) <= 0.6, without_demos

    # The conventional BT reward model on the same pairs cannot serve both groups.
    bt = RewardTrainer(
        save_random_models(
            tmp_path / "bt", steer_backbones["causal_lm"], hidden_size=64, intermediate_size=128, num_labels=1
        )["sequence_classifier"],
        args=RewardConfig(**_args(tmp_path / "bt-out", num_train_epochs=8), bf16=False),
        train_dataset=conflicting_pairs(128, 0),
    )
    bt.train()
    bt_accuracy = {
        group: bt.evaluate(held_out.filter(lambda row, group=group: row["group"] == group))["eval_accuracy"]
        for group in "AB"
    }
    assert min(bt_accuracy.values()) <= 0.6, bt_accuracy


def test_evaluation_metrics(icrm_trained):
    metrics = icrm_trained.evaluate(conflicting_pairs(16, 2))
    for key in ("eval_accuracy", "eval_mean_mu", "eval_mean_tau", "eval_ece", "eval_loss"):
        assert key in metrics and metrics[key] == metrics[key]  # present and not NaN
    assert any(key.startswith("eval_accuracy_k") for key in metrics)
    assert 0.0 <= metrics["eval_ece"] <= 1.0


def _score(model, trainer, dataset, num_demonstrations=2) -> torch.Tensor:
    """Raw two-head outputs of `model` on a batch the trainer's collator builds (fixed demonstration draws)."""
    prepared = trainer._prepare_dataset(dataset, trainer.processing_class, trainer.args, "roundtrip")
    collator = trainer._icrm_collator
    collator.min_demonstrations = collator.max_demonstrations = num_demonstrations
    batch = collator([prepared[i] for i in range(len(prepared))])
    with torch.inference_mode():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


@pytest.mark.parametrize("use_lora", [False, True], ids=["full", "lora"])
def test_save_and_load_round_trip(use_lora, tiny_causal_lm, tmp_path):
    args = ICRMConfig(**_args(tmp_path / "out", max_steps=2), max_demonstrations=2, kl_coef=0.3)
    peft_config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]) if use_lora else None
    trainer = ICRMRewardTrainer(
        tiny_causal_lm, args=args, train_dataset=conflicting_pairs(8, 0), peft_config=peft_config
    )
    trainer.train()
    trainer.save_model(str(tmp_path / "saved"))
    trainer.model.eval()
    data = conflicting_pairs(4, 3)
    expected = _score(trainer.model, trainer, data)
    model, _ = load_icrm_model(tmp_path / "saved")
    assert model.config.icrm["kl_coef"] == 0.3 and model.config.num_labels == 2
    torch.testing.assert_close(_score(model, trainer, data), expected, rtol=0, atol=1e-5)
    if use_lora:
        assert (tmp_path / "saved" / "adapter_config.json").is_file()
        assert not (tmp_path / "saved" / "model.safetensors").exists()


def test_demonstrations_are_redrawn_each_epoch(icrm_trained):
    trainer = icrm_trained
    prepared = trainer.train_dataset
    collator = trainer._icrm_collator
    collator.min_demonstrations, collator.max_demonstrations = 2, 2
    examples = [prepared[i] for i in range(16)]
    collator.epoch = 0
    first, again = collator(examples)["input_ids"], collator(examples)["input_ids"]
    collator.epoch = 1
    later = collator(examples)["input_ids"]
    assert torch.equal(first, again)
    assert first.shape != later.shape or not torch.equal(first, later)


def test_clear_errors(tiny_causal_lm, tmp_path):
    data = conflicting_pairs(4, 0)
    with pytest.raises(ValueError, match="group_column='objective'"):
        ICRMRewardTrainer(
            tiny_causal_lm, args=ICRMConfig(**_args(tmp_path), group_column="objective"), train_dataset=data
        )
    with pytest.raises(ValueError, match="too few pairs for min_demonstrations=6"):
        ICRMRewardTrainer(
            tiny_causal_lm,
            args=ICRMConfig(**_args(tmp_path), min_demonstrations=6, max_demonstrations=6),
            train_dataset=data,
        )
    long = data.map(lambda row: {"prompt": row["prompt"] * 80})
    with pytest.raises(QueryTooLongError, match="row 0"):
        ICRMRewardTrainer(tiny_causal_lm, args=ICRMConfig(**_args(tmp_path)), train_dataset=long)
    mixed = Dataset.from_list(list(long) + list(data))
    trainer = ICRMRewardTrainer(
        tiny_causal_lm, args=ICRMConfig(**_args(tmp_path), overlong_query="skip"), train_dataset=mixed
    )
    assert len(trainer.train_dataset) == len(data)
    with pytest.raises(ValueError, match="min_demonstrations <= max_demonstrations"):
        ICRMConfig(**_args(tmp_path), min_demonstrations=3, max_demonstrations=2)

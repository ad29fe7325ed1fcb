# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
import pytest
import torch
from datasets import Dataset
from peft import LoraConfig
from trl import RewardConfig, RewardTrainer

from trl_icrm import ICRMConfig, ICRMRewardTrainer
from trl_icrm.demonstrations import QueryTooLongError
from trl_icrm.icrm.modeling import load_icrm_model
from trl_icrm.utils.testing import conflicting_pairs, save_random_models

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


@pytest.mark.parametrize("use_lora", [False, True], ids=["full", "lora"])
def test_shared_prefix_path_matches_batched_forward(use_lora, tiny_causal_lm, tmp_path):
    """Encoding each pair's demonstrations once gives the batched forward's outputs, loss and gradients."""
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
    rows = [
        {
            "prompt": f"Question {i}?",
            "chosen": " " + " ".join(words[: 1 + i % 5]),
            "rejected": " " + " ".join(words[: 6 - i % 4]),
            "group": "AB"[i % 2],
        }
        for i in range(12)
    ]
    peft_config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]) if use_lora else None
    trainers = {
        share: ICRMRewardTrainer(
            tiny_causal_lm,
            args=ICRMConfig(
                **_args(tmp_path / str(share), gradient_checkpointing=False),
                max_demonstrations=3,
                share_demonstration_prefix=share,
            ),
            train_dataset=Dataset.from_list(rows),
            peft_config=peft_config,
        )
        for share in (True, False)
    }
    assert trainers[True]._share_prefix and not trainers[False]._share_prefix
    prepared = trainers[True].train_dataset
    batch = trainers[True]._icrm_collator([prepared[i] for i in range(len(prepared))])
    assert set(batch["icrm_num_demonstrations"].tolist()) >= {0, 3}  # pairs with and without a prefix
    assert len(set(batch["attention_mask"].sum(1).tolist())) > 2  # the batched path pads rows to each other
    losses, grads = {}, {}
    for share, trainer in trainers.items():
        trainer.model.train()
        trainer.model.zero_grad()
        loss = trainer.compute_loss(trainer.model, dict(batch))
        loss.backward()
        losses[share] = loss.detach()
        grads[share] = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    torch.testing.assert_close(losses[True], losses[False], rtol=0, atol=1e-5)
    assert grads[True].keys() == grads[False].keys() and len(grads[True]) > 0
    for name in grads[True]:
        torch.testing.assert_close(grads[True][name], grads[False][name], rtol=1e-4, atol=1e-6, msg=name)


def test_shared_prefix_default_and_blockers(tiny_causal_lm, tmp_path):
    data = conflicting_pairs(4, 0)
    plain = ICRMConfig(**_args(tmp_path, gradient_checkpointing=False))
    assert ICRMRewardTrainer(tiny_causal_lm, args=plain, train_dataset=data)._share_prefix  # on CPU by default
    checkpointed = ICRMConfig(**_args(tmp_path), gradient_checkpointing=True)  # no longer a blocker
    assert ICRMRewardTrainer(tiny_causal_lm, args=checkpointed, train_dataset=data)._share_prefix
    off = ICRMConfig(**_args(tmp_path), share_demonstration_prefix=False)
    assert not ICRMRewardTrainer(tiny_causal_lm, args=off, train_dataset=data)._share_prefix


def test_unit_shuffle_sampler_keeps_units_together():
    from trl_icrm.trainer.icrm_trainer import UnitShuffleSampler

    units = ["a", "b", "a", "c", "b", "c", "d", "d"]
    sampler = UnitShuffleSampler(units, seed=0)
    passes = [list(sampler) for _ in range(4)]
    for order in passes:
        assert sorted(order) == list(range(len(units))) and len(order) == len(sampler)
        labels = [units[i] for i in order]
        assert all(labels[j] == labels[j + 1] for j in range(0, len(labels), 2)), labels  # units of 2, contiguous
    assert len({tuple(order) for order in passes}) > 1  # re-drawn on every pass
    assert list(UnitShuffleSampler(units, seed=0)) == passes[0]  # seeded


def test_batch_together_column(tiny_causal_lm, tmp_path):
    data = conflicting_pairs(4, 0).map(lambda row, i: {"twin": i % 4}, with_indices=True)  # row i and i+4: A and B
    args = ICRMConfig(**{**_args(tmp_path), "per_device_train_batch_size": 2}, batch_together_column="twin")
    trainer = ICRMRewardTrainer(tiny_causal_lm, args=args, train_dataset=data)
    twins = [data[i]["twin"] for i in trainer._get_train_sampler()]
    assert sorted(twins) == sorted(data["twin"])
    assert all(twins[j] == twins[j + 1] for j in range(0, len(twins), 2)), twins  # each batch of 2 is one unit
    assert len(trainer.get_train_dataloader()) == 4
    with pytest.raises(ValueError, match="batch_together_column='pair'"):
        ICRMRewardTrainer(
            tiny_causal_lm, args=ICRMConfig(**_args(tmp_path), batch_together_column="pair"), train_dataset=data
        )

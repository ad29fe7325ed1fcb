# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Results that must not depend on how a run is batched, interrupted or which datasets it evaluated before."""

import gzip
import json

import pytest
import torch
from safetensors.torch import load_file

from trl_icrm import ICRMConfig, ICRMReward, ICRMRewardTrainer
from trl_icrm.utils.testing import conflicting_pairs

from conftest import training_args as _args


@pytest.mark.parametrize("batch_size", [1, 5, 12])
def test_eval_metrics_are_per_pair_whatever_the_batch_size(icrm_trained, batch_size):
    data = conflicting_pairs(6, seed=3)  # 12 pairs
    icrm_trained.args.per_device_eval_batch_size = batch_size
    metrics = icrm_trained.evaluate(data, num_demonstrations=2)
    icrm_trained.args.per_device_eval_batch_size = 32
    reference = icrm_trained.evaluate(data, num_demonstrations=2)
    for key in ("eval_accuracy", "eval_mean_mu", "eval_mean_tau", "eval_nll", "eval_ece"):
        assert metrics[key] == pytest.approx(reference[key], abs=1e-6), key
    assert round(metrics["eval_accuracy"] * 12, 6) == int(round(metrics["eval_accuracy"] * 12))  # a k/12 fraction


def _without_timings(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if not k.endswith(("runtime", "per_second"))}


def test_evaluating_another_dataset_keeps_the_eval_set_pool(tiny_causal_lm, tmp_path):
    eval_set, other = conflicting_pairs(4, seed=1), conflicting_pairs(6, seed=2)
    args = ICRMConfig(**_args(tmp_path), min_demonstrations=2, max_demonstrations=2)
    trainer = ICRMRewardTrainer(
        tiny_causal_lm, args=args, train_dataset=conflicting_pairs(4, 0), eval_dataset=eval_set
    )
    first = _without_timings(trainer.evaluate())
    trainer.evaluate(other)
    assert _without_timings(trainer.evaluate()) == first
    assert len(trainer.demonstration_pools()) == 3 and all("/" in key for key in trainer.demonstration_pools())


def test_unit_shuffle_sampler_order_is_a_function_of_the_epoch():
    from trl_icrm.trainer import UnitShuffleSampler

    sampler = UnitShuffleSampler(["a", "b", "a", "b", "c", "c"], seed=0)
    passes = [list(sampler) for _ in range(3)]
    resumed = UnitShuffleSampler(["a", "b", "a", "b", "c", "c"], seed=0)
    resumed.set_epoch(2)
    assert list(resumed) == passes[2]


def _weights(folder) -> dict[str, torch.Tensor]:
    return load_file(f"{folder}/model.safetensors")


@pytest.mark.parametrize("together", [None, "twin"])
def test_resumed_training_equals_the_uninterrupted_run(tiny_causal_lm, tmp_path, together):
    data = conflicting_pairs(6, 0).map(lambda row, i: {"twin": i % 6}, with_indices=True)  # 12 rows, 6 twin units
    settings = {
        **_args(tmp_path / "full"),
        "per_device_train_batch_size": 4,
        "num_train_epochs": 2,  # 3 steps per epoch: the checkpoint at step 4 lies in the second epoch
        "save_strategy": "steps",
        "save_steps": 4,
        "max_demonstrations": 2,
        "batch_together_column": together,
    }
    full = ICRMRewardTrainer(tiny_causal_lm, args=ICRMConfig(**settings), train_dataset=data)
    full.train()
    full.save_model(str(tmp_path / "full-final"))
    settings["output_dir"] = str(tmp_path / "resumed")
    resumed = ICRMRewardTrainer(tiny_causal_lm, args=ICRMConfig(**settings), train_dataset=data)
    resumed.train(resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-4"))
    resumed.save_model(str(tmp_path / "resumed-final"))
    expected, actual = _weights(tmp_path / "full-final"), _weights(tmp_path / "resumed-final")
    for name, value in expected.items():
        torch.testing.assert_close(actual[name], value, rtol=0, atol=1e-6, msg=name)


def test_persistent_workers_are_turned_off(tmp_path, caplog):
    args = ICRMConfig(**_args(tmp_path), dataloader_num_workers=1, dataloader_persistent_workers=True)
    assert args.dataloader_persistent_workers is False
    assert "never re-draw demonstrations" in caplog.text


def test_adapter_names_the_embedded_model_portably(tmp_path, default_model_dir):
    from peft import LoraConfig

    from trl_icrm.utils.default_model import DEFAULT_MODEL, portable_model_name

    assert portable_model_name(default_model_dir) == DEFAULT_MODEL
    assert portable_model_name("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"
    args = ICRMConfig(**_args(tmp_path), max_steps=1, max_demonstrations=1)
    lora = LoraConfig(r=2, target_modules=["q_proj"])
    trainer = ICRMRewardTrainer(default_model_dir, args=args, train_dataset=conflicting_pairs(2, 0), peft_config=lora)
    trainer.save_model(str(tmp_path / "adapter"))
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert saved["base_model_name_or_path"] == DEFAULT_MODEL


def test_compressed_preference_files_load(tmp_path):
    from trl_icrm.data.benchmarks import load_preference_benchmark

    rows = [{"prompt": "p", "responses": ["a", "b"], "label": 1, "objective": "o"}] * 3
    path = tmp_path / "test.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)
    pairs = load_preference_benchmark("vpl_hh_rlhf", str(path))
    assert len(pairs) == 3 and pairs[0]["chosen"] == "b"
    with pytest.raises(ValueError, match="Unsupported file type '.txt.gz'"):
        from trl_icrm.data.loading import load_split

        (tmp_path / "x.txt.gz").write_bytes(b"")
        load_split(str(tmp_path / "x.txt.gz"))


def test_icrm_model_card_and_trained_max_length(icrm_trained, tmp_path):
    from trl_icrm.icrm.modeling import load_icrm_model

    icrm_trained.save_model(str(tmp_path / "saved"))
    card = (tmp_path / "saved" / "README.md").read_text()
    assert "ICRMReward" in card and "pipeline(" not in card and "2602.08819" in card
    assert "0 to 4 demonstrations" in card
    model, _ = load_icrm_model(str(tmp_path / "saved"))
    assert model.config.icrm["max_length"] == icrm_trained.args.max_length == 256
    assert ICRMReward(str(tmp_path / "saved")).max_length == 256
    assert ICRMReward(str(tmp_path / "saved"), max_length=100).max_length == 100


# Saved model folders hold exactly one model
def _trainer(model, tmp_path, **kwargs):
    args = ICRMConfig(**_args(tmp_path / "run"), max_steps=1, max_demonstrations=1)
    return ICRMRewardTrainer(model, args=args, train_dataset=conflicting_pairs(2, 0), **kwargs)


def test_saving_a_full_model_over_an_adapter_leaves_only_the_new_model(tiny_causal_lm, tmp_path):
    from peft import LoraConfig

    from trl_icrm import load_reward

    folder = str(tmp_path / "model")
    _trainer(tiny_causal_lm, tmp_path, peft_config=LoraConfig(r=2, target_modules=["q_proj"])).save_model(folder)
    assert (tmp_path / "model" / "adapter_config.json").is_file()
    full = _trainer(tiny_causal_lm, tmp_path)
    full.train()
    full.save_model(folder)
    assert not (tmp_path / "model" / "adapter_config.json").exists()
    assert not (tmp_path / "model" / "adapter_model.safetensors").exists()
    loaded = load_reward(folder).model.state_dict()
    for name, value in full.model.state_dict().items():
        torch.testing.assert_close(loaded[name], value.cpu(), rtol=0, atol=0, msg=name)


def test_a_folder_with_an_adapter_and_full_weights_is_refused(tiny_causal_lm, tmp_path, random_icrm_dir):
    import shutil

    from peft import LoraConfig

    from trl_icrm import load_reward
    from trl_icrm.utils.io import IncompleteModelFolderError

    folder = tmp_path / "mixed"
    shutil.copytree(random_icrm_dir, folder)
    _trainer(tiny_causal_lm, tmp_path, peft_config=LoraConfig(r=2, target_modules=["q_proj"])).save_model(
        str(tmp_path / "adapter")
    )
    shutil.copy(tmp_path / "adapter" / "adapter_config.json", folder)  # as an older version's saves left it
    shutil.copy(tmp_path / "adapter" / "adapter_model.safetensors", folder)
    with pytest.raises(IncompleteModelFolderError, match="both a PEFT adapter"):
        load_reward(str(folder))


def test_an_interrupted_save_never_loads_the_older_model(tiny_causal_lm, tmp_path, monkeypatch):
    from trl_icrm import load_reward
    from trl_icrm.utils.io import IncompleteModelFolderError

    folder = str(tmp_path / "model")
    _trainer(tiny_causal_lm, tmp_path).save_model(folder)
    load_reward(folder)  # a complete save loads
    newer = _trainer(tiny_causal_lm, tmp_path)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C before the new weights are written

    monkeypatch.setattr(newer.model, "save_pretrained", interrupted)
    with pytest.raises(KeyboardInterrupt):
        newer.save_model(folder)
    with pytest.raises(IncompleteModelFolderError, match="did not finish"):
        load_reward(folder)
    monkeypatch.undo()
    newer.save_model(folder)  # saving again makes it loadable
    load_reward(folder)


def test_bt_save_over_an_adapter_leaves_only_the_merged_model(default_model_dir, tmp_path):
    from peft import LoraConfig
    from trl import RewardConfig, RewardTrainer

    from trl_icrm import load_reward, save_reward_model
    from trl_icrm.utils.testing import save_random_models

    classifier = save_random_models(tmp_path / "base", default_model_dir, num_labels=1)["sequence_classifier"]
    folder = tmp_path / "bt"
    pairs = conflicting_pairs(2, 0).remove_columns("group")
    args = RewardConfig(**{k: v for k, v in _args(tmp_path / "run").items() if k != "max_length"}, max_steps=1)
    lora = LoraConfig(r=2, target_modules=["q_proj"], task_type="SEQ_CLS")
    adapter = RewardTrainer(classifier, args=args, train_dataset=pairs, peft_config=lora)
    adapter.train()
    save_reward_model(adapter, folder, merge=False)
    assert (folder / "adapter_config.json").is_file()
    full = RewardTrainer(classifier, args=args, train_dataset=pairs)
    full.train()
    save_reward_model(full, folder)
    assert not (folder / "adapter_config.json").exists() and not (folder / "adapter_model.safetensors").exists()
    loaded = load_reward(str(folder)).model.state_dict()
    for name, value in full.model.state_dict().items():
        torch.testing.assert_close(loaded[name], value.cpu(), rtol=0, atol=0, msg=name)


# Metric keys of several evaluation sets
def test_each_eval_set_has_its_own_metric_keys(icrm_trained):
    a, b = conflicting_pairs(3, seed=5), conflicting_pairs(4, seed=6)
    alone_a = icrm_trained.evaluate(a, num_demonstrations=2)["eval_accuracy"]
    alone_b = icrm_trained.evaluate(b, num_demonstrations=2)["eval_accuracy"]
    both = icrm_trained.evaluate({"a": a, "b": b}, num_demonstrations=2)
    assert both["eval_a_accuracy"] == pytest.approx(alone_a, abs=1e-7)
    assert both["eval_b_accuracy"] == pytest.approx(alone_b, abs=1e-7)
    assert "eval_accuracy" not in both and "eval_a_ece" in both
    test = icrm_trained.evaluate(a, metric_key_prefix="test", num_demonstrations=2)
    assert test["test_accuracy"] == pytest.approx(alone_a, abs=1e-7) and "eval_accuracy" not in test


def test_metric_for_best_model_names_one_eval_set(tiny_causal_lm, tmp_path):
    settings = {**_args(tmp_path), "eval_strategy": "steps", "eval_steps": 1, "max_steps": 2}
    args = ICRMConfig(**settings, max_demonstrations=1, metric_for_best_model="eval_a_accuracy")
    evaluation = {"a": conflicting_pairs(2, seed=1), "b": conflicting_pairs(2, seed=2)}
    trainer = ICRMRewardTrainer(
        tiny_causal_lm, args=args, train_dataset=conflicting_pairs(4, 0), eval_dataset=evaluation
    )
    trainer.train()
    evaluations = [log for log in trainer.state.log_history if "eval_a_accuracy" in log]
    assert len(evaluations) == 2 and len([log for log in trainer.state.log_history if "eval_b_accuracy" in log]) == 2
    assert trainer.state.best_metric == max(log["eval_a_accuracy"] for log in evaluations)


def test_vrm_eval_sets_have_their_own_metric_keys(tiny_causal_lm, tmp_path):
    from trl_icrm import VRMConfig, VRMRewardTrainer

    args = VRMConfig(**_args(tmp_path), max_steps=1)
    trainer = VRMRewardTrainer(tiny_causal_lm, args=args, train_dataset=conflicting_pairs(2, 0))
    metrics = trainer.evaluate({"a": conflicting_pairs(2, seed=1)}, metric_key_prefix="test")
    assert "test_a_accuracy" in metrics and "test_a_nll" in metrics and "eval_accuracy" not in metrics


@pytest.mark.parametrize("missing", ["optimizer.pt", "scheduler.pt"])
def test_resuming_without_the_optimizer_state_is_refused(tiny_causal_lm, tmp_path, caplog, missing):
    settings = {**_args(tmp_path / "run"), "max_steps": 2, "save_strategy": "steps", "save_steps": 1}
    trainer = ICRMRewardTrainer(
        tiny_causal_lm, args=ICRMConfig(**settings, max_demonstrations=1), train_dataset=conflicting_pairs(4, 0)
    )
    trainer.train()
    checkpoint = tmp_path / "run" / "checkpoint-1"
    (checkpoint / missing).unlink()
    settings["output_dir"] = str(tmp_path / "resumed")
    resumed = ICRMRewardTrainer(
        tiny_causal_lm, args=ICRMConfig(**settings, max_demonstrations=1), train_dataset=conflicting_pairs(4, 0)
    )
    with pytest.raises(FileNotFoundError, match=f"no {missing}"):
        resumed.train(resume_from_checkpoint=str(checkpoint))
    allowed = ICRMConfig(**settings, max_demonstrations=1, resume_with_fresh_optimizer=True)
    resumed = ICRMRewardTrainer(tiny_causal_lm, args=allowed, train_dataset=conflicting_pairs(4, 0))
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.state.global_step == 2 and f"without {missing}" in caplog.text

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""`trl-icrm train`: train the reward model of the math recipe on the pairs of `trl-icrm build-math-preferences`.

`--method icrm` trains an ICRM model (`ICRMRewardTrainer`: demonstrations of each pair's group in context, the
variational Beta-BT objective); `--method bt` trains a conventional Bradley-Terry model with `trl.RewardTrainer` on the
same pairs, with the same training arguments (budget, seed, schedule); `--method vrm` trains a VRM model
(`VRMRewardTrainer`: latent objective weights and semantic features; its settings are the `VRMConfig` flags such as
`--num_objectives`, `--num_features`, `--beta_w`, `--supervision_loss`). All use LoRA on the embedded model by default.
A held-out share of the pairs (`--eval_fraction`) measures pairwise accuracy, written with the TRL logs to
`reward_model_metrics.json` in the output folder.

A BT model trained with LoRA is saved merged (a plain one-output sequence classifier), so that `trl_icrm.load_reward`
(`trl-icrm grpo --reward bt`) loads it like any reward model; `--no_merge_lora` keeps its LoRA adapter instead (with
its config), which `trl-icrm laplace` needs for a posterior over the LoRA weights.

    trl-icrm train --method icrm --output_dir outputs/math-icrm
    trl-icrm train --method bt --output_dir outputs/math-bt
    trl-icrm train --method vrm --output_dir outputs/math-vrm --num_objectives 32 --num_features 4
    trl-icrm train --config recipes/smollm2-135m/reward/config_icrm.yaml
    trl-icrm train --method icrm --model_name_or_path Qwen/Qwen2.5-0.5B-Instruct --bf16
"""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass, field

from ..experiments.math_grpo import DEFAULT_PREFERENCES_DIR, DEFAULT_REWARD_MODEL_DIRS, load_preferences
from ..models import LORA_TARGET_MODULES
from ._model_args import apply_model_args


@dataclass
class TrainScriptArguments:
    """Arguments of `trl-icrm train` (besides `ICRMConfig` and `ModelConfig`)."""

    method: str = field(
        default="icrm",
        metadata={
            "help": "'icrm' (ICRMRewardTrainer), 'bt' (trl.RewardTrainer) or 'vrm' (VRMRewardTrainer).",
            "choices": ["icrm", "bt", "vrm"],
        },
    )
    dataset_path: str = field(
        default=DEFAULT_PREFERENCES_DIR, metadata={"help": "Pairs saved by `trl-icrm build-math-preferences`."}
    )
    eval_fraction: float = field(default=0.1, metadata={"help": "Share of pairs held out for evaluation (0: none)."})
    eval_demonstrations: int = field(default=2, metadata={"help": "Demonstrations per pair when evaluating ICRM."})
    merge_lora: bool = field(
        default=True,
        metadata={
            "help": "Save a BT LoRA model merged (a plain classifier); --no_merge_lora keeps the adapter (for "
            "`trl-icrm laplace`, whose posterior covers the LoRA weights)."
        },
    )


TRAIN_DEFAULTS = {
    "output_dir": DEFAULT_REWARD_MODEL_DIRS["icrm"],
    "use_peft": True,
    "lora_task_type": "SEQ_CLS",
    "lora_r": 16,
    "lora_alpha": 32,
    "lora_target_modules": LORA_TARGET_MODULES,
    "num_train_epochs": 1,
    "per_device_train_batch_size": 4,
    "per_device_eval_batch_size": 8,
    "learning_rate": 5e-4,
    "lr_scheduler_type": "constant",
    "max_demonstrations": 2,
    "max_length": 1024,
    "overlong_query": "skip",
    "gradient_checkpointing": False,
    "logging_steps": 5,
    "save_strategy": "no",
    "report_to": [],
}
"""Defaults of the command (also in `recipes/smollm2-135m/reward/config_*.yaml`): LoRA on the embedded model, CPU."""


def split_pairs(dataset, eval_fraction: float, seed: int):
    """(train, eval or None): a random `eval_fraction` of the pairs held out."""
    if eval_fraction <= 0 or len(dataset) < 4:
        return dataset, None
    split = dataset.train_test_split(test_size=eval_fraction, seed=seed)
    return split["train"], split["test"]


def _train_icrm(script_args, training_args, model_args, train, evaluation) -> tuple[object, dict]:
    from trl import get_peft_config, get_quantization_config

    from ..trainer import ICRMRewardTrainer

    trainer = ICRMRewardTrainer(
        model_args.model_name_or_path,
        args=training_args,
        train_dataset=train,
        eval_dataset=evaluation,
        peft_config=get_peft_config(model_args),
        quantization_config=get_quantization_config(model_args),
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    metrics = {}
    if evaluation is not None:
        for k in sorted({0, script_args.eval_demonstrations}):
            metrics[f"{k} demonstrations"] = trainer.evaluate(evaluation, num_demonstrations=k)
    trainer.save_model(training_args.output_dir)
    return trainer, metrics


def _train_bt(training_args, model_args, train, evaluation, merge_lora: bool = True) -> tuple[object, dict]:
    from trl import RewardTrainer, get_peft_config, get_quantization_config

    from ..trainer import bt_config_from, save_reward_model
    from ..utils.default_model import resolve_model_name_or_path

    trainer = RewardTrainer(
        resolve_model_name_or_path(model_args.model_name_or_path),
        args=bt_config_from(training_args),
        train_dataset=train,
        eval_dataset=evaluation,
        peft_config=get_peft_config(model_args),
        quantization_config=get_quantization_config(model_args),
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    metrics = {"bt": trainer.evaluate(evaluation)} if evaluation is not None else {}
    save_reward_model(trainer, training_args.output_dir, merge=merge_lora)  # merged: a plain one-output classifier
    return trainer, metrics


def _train_vrm(training_args, vrm_args, model_args, train, evaluation) -> tuple[object, dict]:
    from trl import get_peft_config, get_quantization_config

    from ..trainer import VRMConfig, VRMRewardTrainer, bt_config_from

    args = bt_config_from(training_args, VRMConfig, **(asdict(vrm_args) if vrm_args is not None else {}))
    trainer = VRMRewardTrainer(
        model_args.model_name_or_path,
        args=args,
        train_dataset=train,
        eval_dataset=evaluation,
        peft_config=get_peft_config(model_args),
        quantization_config=get_quantization_config(model_args),
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    metrics = {"vrm": trainer.evaluate(evaluation)} if evaluation is not None else {}
    trainer.save_model(training_args.output_dir)
    return trainer, metrics


DEFAULT_VRM_DIR = "outputs/math-vrm"


def main(script_args: TrainScriptArguments, training_args, model_args, vrm_args=None) -> dict:
    """Train the `--method` reward model; `vrm_args` holds the VRM-only flags (`VRMConfig` fields)."""
    from ..utils.io import write_json

    if not os.path.isdir(script_args.dataset_path):
        raise SystemExit(
            f"No preference pairs at {script_args.dataset_path}. Make them first:\n\n"
            f"    trl-icrm build-math-preferences --output_dir {script_args.dataset_path}\n"
        )
    if script_args.method != "icrm" and training_args.output_dir == DEFAULT_REWARD_MODEL_DIRS["icrm"]:
        training_args.output_dir = DEFAULT_REWARD_MODEL_DIRS.get(script_args.method, DEFAULT_VRM_DIR)
    apply_model_args(model_args, training_args)
    pairs = load_preferences(script_args.dataset_path)
    columns = ["prompt", "chosen", "rejected"] + ([training_args.group_column] if script_args.method == "icrm" else [])
    train, evaluation = split_pairs(pairs.select_columns(columns), script_args.eval_fraction, training_args.seed)
    if script_args.method == "icrm":
        trainer, metrics = _train_icrm(script_args, training_args, model_args, train, evaluation)
    elif script_args.method == "vrm":
        trainer, metrics = _train_vrm(training_args, vrm_args, model_args, train, evaluation)
    else:
        trainer, metrics = _train_bt(training_args, model_args, train, evaluation, script_args.merge_lora)
    results = {
        "method": script_args.method,
        "num_train_pairs": len(train),
        "num_eval_pairs": len(evaluation) if evaluation is not None else 0,
        "eval": metrics,
        "log_history": trainer.state.log_history,
    }
    if trainer.accelerator.is_main_process:
        write_json(results, os.path.join(training_args.output_dir, "reward_model_metrics.json"))
        print(f"Saved the {script_args.method} reward model to {training_args.output_dir}; eval: {metrics}")
    return results


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    from trl import ModelConfig, TrlParser

    from ..trainer import ICRMConfig
    from ..trainer.vrm_config import vrm_only_arguments
    from ..utils.default_model import DEFAULT_MODEL

    dataclass_types = (TrainScriptArguments, ICRMConfig, ModelConfig, vrm_only_arguments(ICRMConfig))
    if subparsers is not None:
        parser = subparsers.add_parser(
            "train", help="Train an ICRM, VRM or BT reward model", dataclass_types=dataclass_types
        )
    else:
        parser = TrlParser(dataclass_types, prog=prog, description=__doc__.split("\n\n")[0])
    parser.set_defaults(model_name_or_path=DEFAULT_MODEL, **TRAIN_DEFAULTS)
    return parser


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())

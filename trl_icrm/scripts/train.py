# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""`trl-icrm train`: train the reward model of the math recipe on the pairs of `trl-icrm build-math-preferences`.

`--method icrm` trains an ICRM model (`ICRMRewardTrainer`: demonstrations of each pair's group in context, the
variational Beta-BT objective); `--method bt` trains a conventional Bradley-Terry model with `trl.RewardTrainer` on the
same pairs, with the same training arguments (budget, seed, schedule); `--method vrm` trains a VRM model
(`VRMRewardTrainer`: latent objective weights and semantic features; its settings are the `VRMConfig` flags such as
`--num_objectives`, `--num_features`, `--beta_w`, `--supervision_loss`). All use LoRA on the embedded model by default.
`--method head_ensemble` trains M reward heads (`--num_members`, `--head_type linear|mlp`, `--bootstrap`) on the frozen
`--model_name_or_path` (a base model or a trained BT model), on its features encoded once (and kept in
`--feature_cache_dir` across runs), with the learning rate, epochs, batch size, weight decay and seed given;
`--method lora_ensemble` trains `--num_members` BT LoRA adapters on one base model, member m with seed `--seed + m`,
optionally only in the last `--lora_last_layers` blocks (scoring then runs the blocks below once for all members).
A held-out share of the pairs (`--eval_fraction`) measures pairwise accuracy, written with the TRL logs to
`reward_model_metrics.json` in the output folder.

A BT model trained with LoRA is saved merged (a plain one-output sequence classifier), so that `trl_icrm.load_reward`
(`trl-icrm grpo --reward bt`) loads it like any reward model; `--no_merge_lora` keeps its LoRA adapter instead (with
its config), which `trl-icrm laplace` needs for a posterior over the LoRA weights.

    trl-icrm train --method icrm --output_dir outputs/math-icrm
    trl-icrm train --method bt --output_dir outputs/math-bt
    trl-icrm train --method vrm --output_dir outputs/math-vrm --num_objectives 32 --num_features 4
    trl-icrm train --method head_ensemble --num_members 5 --feature_cache_dir outputs/feature-cache
    trl-icrm train --method lora_ensemble --num_members 4 --lora_last_layers 8
    trl-icrm train --config recipes/smollm2-135m/reward/config_icrm.yaml
    trl-icrm train --method icrm --model_name_or_path Qwen/Qwen2.5-0.5B-Instruct --bf16 true
"""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass, field

from trl import ScriptArguments

from ..data.math_preferences import DEFAULT_PREFERENCES_DIR
from ..experiments.math_grpo import DEFAULT_REWARD_MODEL_DIRS
from ..models import LORA_TARGET_MODULES
from ._model_args import apply_model_args


@dataclass
class TrainScriptArguments(ScriptArguments):
    """Arguments of `trl-icrm train` (besides `ICRMConfig` and `ModelConfig`): TRL's data set arguments
    (`--dataset_name`, `--dataset_config`, `--dataset_train_split`, `--dataset_test_split`) and the method's."""

    method: str = field(
        default="icrm",
        metadata={
            "help": "'icrm' (ICRMRewardTrainer), 'bt' (trl.RewardTrainer), 'vrm' (VRMRewardTrainer) or "
            "'head_ensemble' (M reward heads on the frozen --model_name_or_path, trained on its cached features) or "
            "'lora_ensemble' (M BT LoRA adapters on one base model, each trained with its own seed).",
            "choices": ["icrm", "bt", "vrm", "head_ensemble", "lora_ensemble"],
        },
    )
    dataset_name: str = field(
        default=DEFAULT_PREFERENCES_DIR,
        metadata={
            "help": "Preference pairs: a hub id, a local folder (also one saved with `save_to_disk`) or a .json/"
            ".jsonl/.csv/.parquet file (optionally compressed); explicit or implicit prompt, standard or "
            "conversational, or HH-RLHF transcripts. Default: the pairs of `trl-icrm build-math-preferences`."
        },
    )
    eval_fraction: float = field(
        default=0.1,
        metadata={"help": "Share of pairs held out for evaluation when the data set has no test split (0: none)."},
    )
    eval_demonstrations: int = field(default=2, metadata={"help": "Demonstrations per pair when evaluating ICRM."})
    merge_lora: bool = field(
        default=True,
        metadata={
            "help": "Save a BT LoRA model merged (a plain classifier); --no_merge_lora keeps the adapter (for "
            "`trl-icrm laplace`, whose posterior covers the LoRA weights)."
        },
    )
    num_members: int = field(default=5, metadata={"help": "head_ensemble, lora_ensemble: M, the members."})
    lora_last_layers: int | None = field(
        default=None,
        metadata={
            "help": "lora_ensemble: adapt only the last L decoder blocks (the blocks below then run once for all "
            "members when scoring); default: every block."
        },
    )
    head_type: str = field(
        default="mlp",
        metadata={
            "help": "head_ensemble: each head 'linear' or 'mlp' (linear, ReLU, linear).",
            "choices": ["linear", "mlp"],
        },
    )
    head_hidden_size: int = field(default=128, metadata={"help": "head_ensemble: width of an MLP head."})
    bootstrap: bool = field(
        default=False,
        metadata={"help": "head_ensemble: train each member on its own bootstrap resample of the pairs."},
    )
    feature_cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "head_ensemble: folder of the backbone features, kept across runs (keyed by the backbone's "
            "weights and each sequence's tokens); default: none, the features are encoded for this run only."
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
    "save_strategy": "steps",
    "save_steps": 50,
    "save_total_limit": 1,
    "report_to": [],
}
"""Defaults of the command (also in `recipes/smollm2-135m/reward/config_*.yaml`): LoRA on the embedded model, CPU."""


def build_trainer(script_args, training_args, model_args, vrm_args, train, evaluation):
    """The trainer of `--method`: `ICRMRewardTrainer`, `VRMRewardTrainer` or `trl.RewardTrainer` (BT), on the same
    pairs, with the same training arguments and LoRA settings."""
    from trl import RewardTrainer, get_peft_config, get_quantization_config

    from ..trainer import ICRMRewardTrainer, VRMConfig, VRMRewardTrainer, bt_config_from
    from ..utils.default_model import resolve_model_name_or_path

    model = model_args.model_name_or_path
    if script_args.method == "icrm":
        trainer_class, args = ICRMRewardTrainer, training_args
    elif script_args.method == "vrm":
        trainer_class = VRMRewardTrainer
        args = bt_config_from(training_args, VRMConfig, **(asdict(vrm_args) if vrm_args is not None else {}))
    else:
        trainer_class, args, model = RewardTrainer, bt_config_from(training_args), resolve_model_name_or_path(model)
    return trainer_class(
        model,
        args=args,
        train_dataset=train,
        eval_dataset=evaluation,
        peft_config=get_peft_config(model_args),
        quantization_config=get_quantization_config(model_args),
    )


def evaluate_and_save(trainer, script_args, output_dir: str, evaluation) -> dict:
    """Held-out metrics (ICRM: with 0 and `eval_demonstrations` demonstrations) and the saved model; a BT LoRA model
    is saved merged (a plain one-output classifier) unless `--no_merge_lora`."""
    from ..trainer import save_reward_model

    metrics = {}
    if evaluation is not None and script_args.method == "icrm":
        for k in sorted({0, script_args.eval_demonstrations}):
            metrics[f"{k} demonstrations"] = trainer.evaluate(evaluation, num_demonstrations=k)
    elif evaluation is not None:
        metrics[script_args.method] = trainer.evaluate(evaluation)
    if script_args.method == "bt":
        save_reward_model(trainer, output_dir, merge=script_args.merge_lora)
    else:
        trainer.save_model(output_dir)
    return metrics


DEFAULT_VRM_DIR = "outputs/math-vrm"


def train_head_ensemble(script_args: TrainScriptArguments, training_args, model_args, train, evaluation) -> dict:
    """Train and save a head ensemble on the frozen `--model_name_or_path` (its features encoded once, cached in
    `--feature_cache_dir`), with the optimization values of the training arguments."""
    from ..uncertainty import HeadTrainingArguments
    from ..uncertainty.fit import fit_head_ensemble

    training = HeadTrainingArguments(
        num_epochs=training_args.num_train_epochs,
        max_steps=training_args.max_steps,
        batch_size=training_args.per_device_train_batch_size,
        learning_rate=training_args.learning_rate,
        weight_decay=training_args.weight_decay,
        bootstrap=script_args.bootstrap,
        seed=training_args.seed,
    )
    result = fit_head_ensemble(
        model_args.model_name_or_path,
        train,
        evaluation,
        output_dir=training_args.output_dir if training_args.process_index == 0 else None,
        num_members=script_args.num_members,
        head_type=script_args.head_type,
        head_hidden_size=script_args.head_hidden_size,
        training=training,
        feature_cache_dir=script_args.feature_cache_dir,
        batch_size=training_args.per_device_eval_batch_size,
        max_length=training_args.max_length,
        progress_bar=not training_args.disable_tqdm,
        trust_remote_code=bool(training_args.trust_remote_code),
        model_init_kwargs=training_args.model_init_kwargs,
    )
    metrics = {"head_ensemble": result["eval"]} if result["eval"] is not None else {}
    return {"eval": metrics, "log_history": result["history"], "features_encoded": result["encoder"].encoded}


def train_lora_ensemble(script_args: TrainScriptArguments, training_args, model_args, train, evaluation) -> dict:
    """Train `--num_members` BT LoRA adapters on one base model (`trl.RewardTrainer`, member m with seed
    `--seed + m`, adapted in the last `--lora_last_layers` blocks), save each as `member_<m>/` and list them in
    `lora_ensemble_config.json`; the held-out metrics are each member's and the ensemble mean's."""
    from transformers import set_seed
    from trl import RewardTrainer, get_peft_config

    from ..models import read_model_config
    from ..trainer import bt_config_from, save_reward_model
    from ..uncertainty.lora_ensemble import restrict_to_last_layers, write_lora_ensemble_config
    from ..utils.default_model import resolve_model_name_or_path

    if not model_args.use_peft:
        raise SystemExit("--method lora_ensemble trains LoRA adapters: keep --use_peft (the default).")
    model = resolve_model_name_or_path(model_args.model_name_or_path)
    num_layers = read_model_config(model).get_text_config().num_hidden_layers
    peft_config = restrict_to_last_layers(get_peft_config(model_args), num_layers, script_args.lora_last_layers)
    members, metrics, history = [], {}, {}
    for m in range(script_args.num_members):
        member_dir = os.path.join(training_args.output_dir, f"member_{m}")
        args = bt_config_from(training_args, output_dir=member_dir, seed=training_args.seed + m)
        set_seed(args.seed)  # the new score head and the LoRA weights are drawn from the member's seed
        trainer = RewardTrainer(
            model, args=args, train_dataset=train, eval_dataset=evaluation, peft_config=peft_config
        )
        trainer.train()
        if evaluation is not None:
            metrics[f"member_{m}"] = trainer.evaluate(evaluation)
        save_reward_model(trainer, member_dir, merge=False)
        members.append(member_dir)
        history[f"member_{m}"] = trainer.state.log_history
    if training_args.process_index != 0:
        return {"eval": metrics, "log_history": history}
    seeds = [training_args.seed + m for m in range(script_args.num_members)]
    write_lora_ensemble_config(
        training_args.output_dir, members, base_model=model, last_layers=script_args.lora_last_layers, seeds=seeds
    )
    if evaluation is not None:
        metrics["lora_ensemble"] = ensemble_accuracy(training_args.output_dir, evaluation)
    return {"eval": metrics, "log_history": history}


def ensemble_accuracy(folder: str, evaluation) -> dict:
    """Pairwise accuracy (per pair) of a saved LoRA ensemble's mean score, and the mean variance of its margins."""
    from ..rewards.lora_ensemble import LoRAEnsembleReward

    reward = LoRAEnsembleReward(folder)
    pairs = list(evaluation)
    prompts = [pair.get("prompt") for pair in pairs]
    chosen = reward.member_scores(prompts, [pair["chosen"] for pair in pairs])
    rejected = reward.member_scores(prompts, [pair["rejected"] for pair in pairs])
    margins = chosen - rejected
    return {"accuracy": float((margins.mean(0) > 0).mean()), "margin_variance": float(margins.var(0).mean())}


ENSEMBLE_TRAINERS = {"head_ensemble": train_head_ensemble, "lora_ensemble": train_lora_ensemble}


def load_pairs(script_args: TrainScriptArguments, training_args) -> tuple[object, object]:
    """(train, eval or None) pairs in the explicit-prompt format: the data set's test split, else a seeded
    `eval_fraction` of its training pairs; ICRM keeps the group (and soft-label) column."""
    from ..data.loading import load_training_pairs

    if script_args.dataset_streaming:
        raise SystemExit("trl-icrm train reads map-style data sets: --dataset_streaming is not supported.")
    extra = ()
    if script_args.method == "icrm":
        extra = (training_args.group_column, training_args.label_column, training_args.batch_together_column)
        extra = tuple(column for column in extra if column is not None)
    return load_training_pairs(
        script_args.dataset_name,
        script_args.dataset_config,
        script_args.dataset_train_split,
        script_args.dataset_test_split,
        eval_fraction=script_args.eval_fraction,
        seed=training_args.seed,
        extra_columns=extra,
    )


def data_record(script_args: TrainScriptArguments, training_args) -> dict:
    """Where the pairs came from and how they were split: `trl-icrm laplace` reads it to split them the same way."""
    return {
        "dataset_name": script_args.dataset_name,
        "dataset_config": script_args.dataset_config,
        "dataset_train_split": script_args.dataset_train_split,
        "dataset_test_split": script_args.dataset_test_split,
        "eval_fraction": script_args.eval_fraction,
        "seed": training_args.seed,
    }


def main(script_args: TrainScriptArguments, training_args, model_args, vrm_args=None) -> dict:
    """Train the `--method` reward model; `vrm_args` holds the VRM-only flags (`VRMConfig` fields)."""
    from ..utils.io import resume_checkpoint, write_json

    if script_args.dataset_name == DEFAULT_PREFERENCES_DIR and not os.path.isdir(DEFAULT_PREFERENCES_DIR):
        raise SystemExit(
            f"No preference pairs given, and none at the default {DEFAULT_PREFERENCES_DIR}. Give --dataset_name (a hub "
            "id, a folder or a .jsonl/.json/.csv/.parquet file), or build the math recipe's pairs first:\n\n"
            f"    trl-icrm build-math-preferences --output_dir {DEFAULT_PREFERENCES_DIR}\n"
        )
    if script_args.method != "icrm" and training_args.output_dir == DEFAULT_REWARD_MODEL_DIRS["icrm"]:
        training_args.output_dir = DEFAULT_REWARD_MODEL_DIRS.get(script_args.method, DEFAULT_VRM_DIR)
    apply_model_args(model_args, training_args)
    train, evaluation = load_pairs(script_args, training_args)
    if script_args.method in ENSEMBLE_TRAINERS:
        outcome = ENSEMBLE_TRAINERS[script_args.method](script_args, training_args, model_args, train, evaluation)
        is_main = training_args.process_index == 0
    else:
        trainer = build_trainer(script_args, training_args, model_args, vrm_args, train, evaluation)
        trainer.train(resume_from_checkpoint=resume_checkpoint(training_args.resume_from_checkpoint))
        metrics = evaluate_and_save(trainer, script_args, training_args.output_dir, evaluation)
        outcome = {"eval": metrics, "log_history": trainer.state.log_history}
        is_main = trainer.accelerator.is_main_process
    results = {
        "method": script_args.method,
        "data": data_record(script_args, training_args),
        "num_train_pairs": len(train),
        "num_eval_pairs": len(evaluation) if evaluation is not None else 0,
        **outcome,
    }
    metrics = outcome["eval"]
    if is_main:
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

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Train an ICRM reward model with LoRA on conflicting objectives and show that demonstrations steer it.

The built-in data set pairs a concise and a detailed answer to the same questions; the objective `concise` prefers
one, `detailed` the other. After training, the model is scored on held-out questions with 0 and with K demonstrations
of each objective. With `--compare_bt`, a conventional Bradley-Terry reward model (`trl.RewardTrainer`) is trained
on the same pairs for comparison.

    python examples/train_icrm.py                       # embedded SmolLM2-135M-Instruct, CPU, ~10 minutes
    python examples/train_icrm.py --compare_bt --model_name_or_path Qwen/Qwen2.5-0.5B-Instruct --bf16 true
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

from trl import ModelConfig, RewardTrainer, TrlParser, get_peft_config

from trl_icrm import (
    DEFAULT_MODEL,
    ICRMConfig,
    ICRMRewardTrainer,
    bt_config_from,
    resolve_model_name_or_path,
    save_reward_model,
)
from trl_icrm.data.builtin import concise_vs_detailed
from trl_icrm.models import LORA_TARGET_MODULES
from trl_icrm.utils.io import write_json


@dataclass
class ScriptArguments:
    """Arguments of `examples/train_icrm.py` (besides `ICRMConfig` and `ModelConfig`)."""

    eval_demonstrations: int = field(default=2, metadata={"help": "K demonstrations per pair at evaluation."})
    compare_bt: bool = field(default=False, metadata={"help": "Also train a conventional BT model on the same pairs."})


def accuracy_by_objective(trainer, test, **evaluate_kwargs) -> dict[str, float]:
    return {
        group: trainer.evaluate(test.filter(lambda row, group=group: row["group"] == group), **evaluate_kwargs)[
            "eval_accuracy"
        ]
        for group in sorted(set(test["group"]))
    }


def main(script_args: ScriptArguments, training_args: ICRMConfig, model_args: ModelConfig) -> dict:
    data = concise_vs_detailed(seed=training_args.seed)
    trainer = ICRMRewardTrainer(
        model_args.model_name_or_path,
        args=training_args,
        train_dataset=data["train"],
        peft_config=get_peft_config(model_args),
    )
    trainer.train()
    trainer.save_model(training_args.output_dir)
    k = script_args.eval_demonstrations
    results = {
        "icrm": {
            "0 demonstrations": accuracy_by_objective(trainer, data["test"], num_demonstrations=0),
            f"{k} demonstrations": accuracy_by_objective(trainer, data["test"], num_demonstrations=k),
        }
    }
    if script_args.compare_bt:
        bt_args = bt_config_from(training_args)  # the same budget, seed and schedule as the ICRM model
        bt_args.output_dir = os.path.join(training_args.output_dir, "bt")
        bt = RewardTrainer(
            resolve_model_name_or_path(model_args.model_name_or_path),
            args=bt_args,
            train_dataset=data["train"],
            peft_config=get_peft_config(model_args),
        )
        bt.train()
        save_reward_model(bt, bt_args.output_dir)  # merged: a plain one-output classifier
        results["bt"] = {"any": accuracy_by_objective(bt, data["test"])}
    print(f"\nHeld-out pairwise accuracy ({len(data['test'])} test pairs, {len(data['train'])} training pairs)")
    print(f"{'model':<6} {'demonstrations':<18} " + " ".join(f"{g:>9}" for g in ("concise", "detailed")))
    for model_name, rows in results.items():
        for setting, accuracy in rows.items():
            print(
                f"{model_name:<6} {setting:<18} " + " ".join(f"{accuracy[g]:>9.3f}" for g in ("concise", "detailed"))
            )
    write_json(results, os.path.join(training_args.output_dir, "steering_results.json"))
    return results


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None) -> TrlParser:
    dataclass_types = (ScriptArguments, ICRMConfig, ModelConfig)
    if subparsers is not None:
        parser = subparsers.add_parser(
            "train-icrm", help="Train a steerable ICRM model", dataclass_types=dataclass_types
        )
    else:
        parser = TrlParser(dataclass_types, prog=prog)
    parser.set_defaults(
        model_name_or_path=DEFAULT_MODEL,
        output_dir="outputs/icrm-concise-vs-detailed",
        use_peft=True,
        lora_task_type="SEQ_CLS",
        lora_r=16,
        lora_alpha=32,
        lora_target_modules=LORA_TARGET_MODULES,
        num_train_epochs=3,
        per_device_train_batch_size=4,
        learning_rate=5e-4,
        lr_scheduler_type="constant",
        max_demonstrations=2,
        max_length=512,
        gradient_checkpointing=False,
        logging_steps=5,
        save_strategy="no",
        report_to=[],
    )
    return parser


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())

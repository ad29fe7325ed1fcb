# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Train an ICRM reward model with LoRA on conflicting objectives and show that demonstrations steer it.

The built-in data set pairs a concise and a detailed answer to the same questions; the objective `concise` prefers
one, `detailed` the other. After training, the model is scored on held-out questions with 0 and with K demonstrations
of each objective. With `--compare_bt`, a conventional Bradley-Terry reward model (`trl.RewardTrainer`) is trained
on the same pairs for comparison.

    python examples/train_icrm.py                       # embedded SmolLM2-135M-Instruct, CPU, ~10 minutes
    python examples/train_icrm.py --compare_bt --model_name_or_path Qwen/Qwen2.5-0.5B-Instruct --bf16
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from trl import ModelConfig, RewardConfig, RewardTrainer, TrlParser, get_peft_config

from trl_icrm import DEFAULT_MODEL, ICRMConfig, ICRMRewardTrainer, resolve_model_name_or_path
from trl_icrm.data.builtin import concise_vs_detailed


@dataclass
class ScriptArguments:
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
        bt_args = RewardConfig(
            output_dir=os.path.join(training_args.output_dir, "bt"),
            **{
                key: getattr(training_args, key)
                for key in (
                    "num_train_epochs",
                    "max_steps",
                    "per_device_train_batch_size",
                    "learning_rate",
                    "max_length",
                    "seed",
                    "bf16",
                    "lr_scheduler_type",
                    "logging_steps",
                    "report_to",
                    "save_strategy",
                    "use_cpu",
                )
            },
        )
        bt = RewardTrainer(
            resolve_model_name_or_path(model_args.model_name_or_path),
            args=bt_args,
            train_dataset=data["train"],
            peft_config=get_peft_config(model_args),
        )
        bt.train()
        results["bt"] = {"any": accuracy_by_objective(bt, data["test"])}
    print(f"\nHeld-out pairwise accuracy ({len(data['test'])} test pairs, {len(data['train'])} training pairs)")
    print(f"{'model':<6} {'demonstrations':<18} " + " ".join(f"{g:>9}" for g in ("concise", "detailed")))
    for model_name, rows in results.items():
        for setting, accuracy in rows.items():
            print(
                f"{model_name:<6} {setting:<18} " + " ".join(f"{accuracy[g]:>9.3f}" for g in ("concise", "detailed"))
            )
    with open(os.path.join(training_args.output_dir, "steering_results.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
    return results


if __name__ == "__main__":
    parser = TrlParser((ScriptArguments, ICRMConfig, ModelConfig))
    parser.set_defaults(
        model_name_or_path=DEFAULT_MODEL,
        output_dir="outputs/icrm-concise-vs-detailed",
        use_peft=True,
        lora_task_type="SEQ_CLS",
        lora_r=16,
        lora_alpha=32,
        lora_target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "gate_proj"],
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
    main(*parser.parse_args_and_config())

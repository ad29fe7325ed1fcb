# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Train the reward model of the math recipe on the pairs of `recipes/build_math_preferences.py`.

`--objective icrm` trains an ICRM model (`ICRMRewardTrainer`: demonstrations of each pair's group in context, the
variational Beta-BT objective); `--objective bt` trains a conventional Bradley-Terry model with `trl.RewardTrainer`
on the same pairs, with the same training arguments (budget, seed, schedule). Both use LoRA on the embedded model by
default. A held-out share of the pairs (`--eval_fraction`) measures pairwise accuracy, written with the TRL logs to
`reward_model_metrics.json` in the output folder.

A BT model trained with LoRA is saved merged (a plain one-output sequence classifier), so that
`trl_icrm.SequenceClassifierReward` (`recipes/grpo_math.py --reward bt`) loads it like any reward model.

    python recipes/train_reward_model.py --objective icrm --output_dir outputs/math-icrm
    python recipes/train_reward_model.py --objective bt --output_dir outputs/math-bt
    python recipes/train_reward_model.py --objective icrm --model_name_or_path Qwen/Qwen2.5-0.5B-Instruct --bf16
"""

from __future__ import annotations

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
from trl_icrm.experiments.math_grpo import (
    DEFAULT_PREFERENCES_DIR,
    DEFAULT_REWARD_MODEL_DIRS,
    load_preferences,
    write_json,
)


@dataclass
class ScriptArguments:
    """Arguments of `recipes/train_reward_model.py`."""

    objective: str = field(
        default="icrm",
        metadata={"help": "'icrm' (ICRMRewardTrainer) or 'bt' (trl.RewardTrainer).", "choices": ["icrm", "bt"]},
    )
    dataset_path: str = field(
        default=DEFAULT_PREFERENCES_DIR, metadata={"help": "Pairs saved by recipes/build_math_preferences.py."}
    )
    eval_fraction: float = field(default=0.1, metadata={"help": "Share of pairs held out for evaluation (0: none)."})
    eval_demonstrations: int = field(default=2, metadata={"help": "Demonstrations per pair when evaluating ICRM."})


def split_pairs(dataset, eval_fraction: float, seed: int):
    """(train, eval or None): a random `eval_fraction` of the pairs held out."""
    if eval_fraction <= 0 or len(dataset) < 4:
        return dataset, None
    split = dataset.train_test_split(test_size=eval_fraction, seed=seed)
    return split["train"], split["test"]


def main(script_args: ScriptArguments, training_args: ICRMConfig, model_args: ModelConfig) -> dict:
    if not os.path.isdir(script_args.dataset_path):
        raise SystemExit(
            f"No preference pairs at {script_args.dataset_path}. Make them first:\n\n"
            f"    python recipes/build_math_preferences.py --output_dir {script_args.dataset_path}\n"
        )
    if script_args.objective == "bt" and training_args.output_dir == DEFAULT_REWARD_MODEL_DIRS["icrm"]:
        training_args.output_dir = DEFAULT_REWARD_MODEL_DIRS["bt"]
    pairs = load_preferences(script_args.dataset_path)
    columns = ["prompt", "chosen", "rejected"] + (
        [training_args.group_column] if script_args.objective == "icrm" else []
    )
    train, evaluation = split_pairs(pairs.select_columns(columns), script_args.eval_fraction, training_args.seed)
    peft_config = get_peft_config(model_args)
    metrics: dict = {}
    if script_args.objective == "icrm":
        trainer = ICRMRewardTrainer(
            model_args.model_name_or_path,
            args=training_args,
            train_dataset=train,
            eval_dataset=evaluation,
            peft_config=peft_config,
        )
        trainer.train()
        if evaluation is not None:
            for k in sorted({0, script_args.eval_demonstrations}):
                metrics[f"{k} demonstrations"] = trainer.evaluate(evaluation, num_demonstrations=k)
        trainer.save_model(training_args.output_dir)
    else:
        trainer = RewardTrainer(
            resolve_model_name_or_path(model_args.model_name_or_path),
            args=bt_config_from(training_args),
            train_dataset=train,
            eval_dataset=evaluation,
            peft_config=peft_config,
        )
        trainer.train()
        if evaluation is not None:
            metrics["bt"] = trainer.evaluate(evaluation)
        save_reward_model(trainer, training_args.output_dir)  # a plain one-output classifier that any loader reads
    results = {
        "objective": script_args.objective,
        "num_train_pairs": len(train),
        "num_eval_pairs": len(evaluation) if evaluation is not None else 0,
        "eval": metrics,
        "log_history": trainer.state.log_history,
    }
    if trainer.accelerator.is_main_process:
        write_json(results, os.path.join(training_args.output_dir, "reward_model_metrics.json"))
        print(f"Saved the {script_args.objective} reward model to {training_args.output_dir}; eval: {metrics}")
    return results


def make_parser() -> TrlParser:
    parser = TrlParser((ScriptArguments, ICRMConfig, ModelConfig))
    parser.set_defaults(
        model_name_or_path=DEFAULT_MODEL,
        output_dir=DEFAULT_REWARD_MODEL_DIRS["icrm"],
        use_peft=True,
        lora_task_type="SEQ_CLS",
        lora_r=16,
        lora_alpha=32,
        lora_target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "gate_proj"],
        num_train_epochs=1,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=8,
        learning_rate=5e-4,
        lr_scheduler_type="constant",
        max_demonstrations=2,
        max_length=1024,
        overlong_query="skip",
        gradient_checkpointing=False,
        logging_steps=5,
        save_strategy="no",
        report_to=[],
    )
    return parser


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())

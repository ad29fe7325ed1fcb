# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""GRPO on math problems with one of three rewards: the math-verify verifier, a BT reward model, or ICRM.

- `--reward verifier` (default): the math-verify correctness reward (`trl_icrm.MathVerifyReward`).
- `--reward bt`: a conventional reward model (`trl_icrm.SequenceClassifierReward`), e.g. from
  `recipes/train_reward_model.py --objective bt`.
- `--reward icrm`: an ICRM reward model (`trl_icrm.ICRMReward`). Each training prompt carries its own
  demonstrations: a `demonstrations` column of `--num_demonstrations` `{prompt, chosen, rejected}` pairs from the
  preference data (`--preferences_path`) of the prompt's group (problem family by default), never of the problem
  itself.

With a reward model, the verifier is added with weight 0, so that TRL logs the training accuracy
(`rewards/math_verify/mean`) of every run. Held-out accuracy (greedy generation, math-verify) is evaluated before
training, every `--eval_every` steps and after training, and written with the TRL logs (`trainer.state.log_history`)
to `<output_dir>/results.json`.

    python recipes/grpo_math.py                                           # verifier reward, embedded model, CPU
    python recipes/grpo_math.py --reward icrm --reward_model_name_or_path outputs/math-icrm \
        --preferences_path outputs/math-preferences --output_dir outputs/grpo-math-icrm
    python recipes/grpo_math.py --reward bt --reward_model_name_or_path outputs/math-bt --output_dir outputs/grpo-math-bt
    accelerate launch --config_file recipes/accelerate_configs/zero3.yaml recipes/grpo_math.py \
        --model_name_or_path Qwen/Qwen2.5-0.5B-Instruct --dataset_name openai/gsm8k --bf16 --reward verifier
    DS_ACCELERATOR=cpu accelerate launch --config_file recipes/accelerate_configs/cpu_zero2.yaml recipes/grpo_math.py

Make the reward models first (see `recipes/build_math_preferences.py` and `recipes/train_reward_model.py`; the
script prints the exact commands when a model is missing).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from trl import GRPOConfig, GRPOTrainer, ModelConfig, TrlParser, get_peft_config

from trl_icrm import DEFAULT_MODEL, resolve_model_name_or_path
from trl_icrm.experiments.math_grpo import (
    DEFAULT_PREFERENCES_DIR,
    HeldOutAccuracyCallback,
    MathProblemArguments,
    add_demonstrations,
    how_to_make_reward_model,
    load_math_problems,
    load_preferences,
    write_json,
)
from trl_icrm.rewards import ICRMReward, SequenceClassifierReward
from trl_icrm.rewards.math_verify import MathVerifyReward
from trl_icrm.trainer.icrm_config import bf16_available
from trl_icrm.utils.distributed import default_ddp_backend, destroy_process_group


@dataclass
class ScriptArguments(MathProblemArguments):
    """Arguments of `recipes/grpo_math.py` (besides `GRPOConfig` and `ModelConfig`)."""

    reward: str = field(
        default="verifier",
        metadata={"help": "Reward: 'icrm', 'bt' or 'verifier'.", "choices": ["icrm", "bt", "verifier"]},
    )
    reward_model_name_or_path: str | None = field(
        default=None, metadata={"help": "Trained reward model for --reward icrm|bt (folder or hub id)."}
    )
    penalty: str | None = field(
        default=None,
        metadata={
            "help": "Reward of a Bayesian model: its point reward (None), or the posterior 'mean', 'lcb' or 'var_penalty'."
        },
    )
    num_demonstrations: int = field(default=4, metadata={"help": "ICRM demonstrations carried by each prompt."})
    preferences_path: str = field(
        default=DEFAULT_PREFERENCES_DIR, metadata={"help": "Preference pairs the ICRM demonstrations come from."}
    )
    log_verifier: bool = field(
        default=True, metadata={"help": "With a reward model, also log math-verify accuracy (reward weight 0)."}
    )
    dataset_train_split: str = field(default="train", metadata={"help": "Training split of `dataset_name`."})
    dataset_test_split: str = field(default="test", metadata={"help": "Held-out split of `dataset_name`."})
    num_train_problems: int = field(default=64, metadata={"help": "Training problems (prompts)."})
    num_test_problems: int = field(default=32, metadata={"help": "Held-out problems for accuracy."})
    eval_every: int = field(default=0, metadata={"help": "Steps between held-out evaluations (0: before/after only)."})
    eval_max_new_tokens: int | None = field(
        default=None, metadata={"help": "Tokens per greedy held-out answer (default: max_completion_length)."}
    )
    eval_batch_size: int = field(default=16, metadata={"help": "Prompts per generate call in held-out evaluation."})
    results_file: str = field(default="results.json", metadata={"help": "Results file in the output folder."})


def _missing_local_model(path: str | None) -> bool:
    if path is None:
        return True
    looks_local = os.path.isabs(path) or path.startswith((".", "~", "outputs"))
    return looks_local and not os.path.exists(os.path.expanduser(path))


def build_reward_funcs(script_args: ScriptArguments, training_args: GRPOConfig, train_dataset):
    """(reward functions, training dataset): the chosen reward, the verifier with weight 0 beside a reward model, and
    for ICRM the `demonstrations` column."""
    verifier = MathVerifyReward()
    if script_args.reward == "verifier":
        return [verifier], train_dataset
    if _missing_local_model(script_args.reward_model_name_or_path):
        raise SystemExit(how_to_make_reward_model(script_args.reward, script_args.reward_model_name_or_path))
    if script_args.reward == "icrm":
        if not os.path.isdir(script_args.preferences_path):
            raise SystemExit(how_to_make_reward_model("icrm", script_args.reward_model_name_or_path))
        preferences = load_preferences(script_args.preferences_path)
        train_dataset = add_demonstrations(
            train_dataset, preferences, script_args.num_demonstrations, seed=training_args.seed
        )
        reward = ICRMReward(
            script_args.reward_model_name_or_path,
            penalty=script_args.penalty,
            num_demonstrations=script_args.num_demonstrations,
            allow_zero_shot=True,
        )
    else:
        reward = SequenceClassifierReward(script_args.reward_model_name_or_path, name="bt")
    if not script_args.log_verifier:
        return [reward], train_dataset
    if training_args.reward_weights is None:
        training_args.reward_weights = [1.0, 0.0]
    return [reward, verifier], train_dataset


def main(script_args: ScriptArguments, training_args: GRPOConfig, model_args: ModelConfig) -> dict:
    problems = load_math_problems(
        dataset_name=script_args.dataset_name,
        dataset_config=script_args.dataset_config,
        train_split=script_args.dataset_train_split,
        test_split=script_args.dataset_test_split,
        num_train=script_args.num_train_problems,
        num_test=script_args.num_test_problems,
        difficulties=script_args.difficulties,
        plain_fraction=script_args.plain_fraction,
        group_by=script_args.group_by,
        seed=training_args.seed,
    )
    reward_funcs, train_dataset = build_reward_funcs(script_args, training_args, problems["train"])
    heldout = HeldOutAccuracyCallback(
        problems["test"],
        eval_every=script_args.eval_every,
        max_new_tokens=script_args.eval_max_new_tokens or training_args.max_completion_length,
        batch_size=script_args.eval_batch_size,
    )
    trainer = GRPOTrainer(
        model=resolve_model_name_or_path(model_args.model_name_or_path),
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=train_dataset,
        peft_config=get_peft_config(model_args),
        callbacks=[heldout],
    )
    heldout.trainer = trainer
    trainer.train()
    trainer.save_model(training_args.output_dir)  # every rank: a collective under ZeRO-3
    history = [dict(record.items()) for record in heldout.history]
    results = {
        "reward": script_args.reward,
        "reward_model": script_args.reward_model_name_or_path,
        "policy": model_args.model_name_or_path,
        "world_size": training_args.world_size,
        "num_train_problems": len(train_dataset),
        "num_test_problems": len(problems["test"]),
        "heldout_accuracy": {
            "before": history[0]["accuracy"] if history else None,
            "after": history[-1]["accuracy"] if history else None,
            "history": history,
        },
        "log_history": trainer.state.log_history,
        "script_args": vars(script_args),
    }
    if trainer.accelerator.is_main_process:
        path = write_json(results, os.path.join(training_args.output_dir, script_args.results_file))
        before, after = results["heldout_accuracy"]["before"], results["heldout_accuracy"]["after"]
        print(
            f"Held-out accuracy ({script_args.reward} reward): before {before:.3f}, after {after:.3f}. Results: {path}"
        )
    return results


RECIPE_DEFAULTS = {
    "model_name_or_path": DEFAULT_MODEL,
    "output_dir": "outputs/grpo-math",
    "per_device_train_batch_size": 4,
    "num_generations": 4,
    "max_completion_length": 96,
    "max_steps": 10,
    "learning_rate": 5e-6,
    "lr_scheduler_type": "constant",
    "logging_steps": 1,
    "bf16": bf16_available(),
    "ddp_backend": default_ddp_backend(),
    "report_to": [],
    "save_strategy": "no",
    "seed": 0,
}
"""Defaults of the recipe: a run on CPU with the embedded model in well under 15 minutes."""


def make_parser(*extra_dataclasses) -> TrlParser:
    parser = TrlParser((*extra_dataclasses, ScriptArguments, GRPOConfig, ModelConfig))
    parser.set_defaults(**RECIPE_DEFAULTS)
    return parser


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
    destroy_process_group()

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""`trl-icrm grpo`: GRPO on math problems or your own prompts with one of three rewards: the math-verify verifier, a
BT reward model, or ICRM.

- `--reward verifier` (default): the math-verify correctness reward (`trl_icrm.MathVerifyReward`), against each
  prompt's reference answer.
- `--reward bt`: a conventional reward model (`trl_icrm.SequenceClassifierReward`), e.g. from `trl-icrm train
  --method bt`.
- `--reward icrm`: an ICRM reward model (`trl_icrm.ICRMReward`). Each training prompt carries its own demonstrations:
  the prompts' `demonstrations` column (`--demonstrations_column`), or else `--num_demonstrations` `{prompt, chosen,
  rejected}` pairs of the preference data (`--preferences_path`) with the prompt's `group` (`--bank_key`; for the
  built-in problems the problem family by default), never of the prompt itself.
- `--reward auto`: the kind of `--reward_model_name_or_path`, read from its saved config (`icrm` or `bt`); any other
  registered kind (`vrm`, `laplace`, ...) is a choice too.

The prompts: the built-in math problems by default, or `--dataset_name` as TRL's scripts take it (a hub id, a folder or
a .json/.jsonl/.csv/.parquet file, `--dataset_config`, `--dataset_train_split`, `--dataset_test_split`) with a prompt
column (`--prompt_column`: strings, or conversational lists of messages, which `trl.GRPOTrainer` renders with the
policy's chat template) and optionally the reference answers math-verify checks (`--answer_column`; by default
`solution` or `answer`); GSM8K (`question`, `answer`) and MATH-500 (`problem`, `solution`, `answer`) are recognized
as they are (`trl_icrm.data.prompts`). The first `--num_train_problems` rows of the train split are the training
prompts, the first `--num_test_problems` of the test split (where there is one) the held-out ones.

Reward models are loaded with `trl_icrm.load_reward`, with `--penalty` / `--penalty_coef` given once when the reward is
built (`lcb` and `var_penalty` need a reward model with a variance). With a reward model and reference answers, the
verifier is added with weight 0, so that TRL logs the training accuracy (`rewards/math_verify/mean`) of every run.
Held-out accuracy (greedy generation, math-verify) is evaluated before training, every `--eval_every` steps and after
training, and written with the TRL logs (`trainer.state.log_history`) to `<output_dir>/results.json`.

    trl-icrm grpo                                                     # verifier reward, embedded model, CPU
    trl-icrm grpo --config recipes/smollm2-135m/grpo/config_icrm.yaml
    trl-icrm grpo --reward bt --reward_model_name_or_path outputs/math-bt --output_dir outputs/grpo-math-bt
    trl-icrm grpo --dataset_name my_prompts.jsonl --reward icrm --reward_model_name_or_path outputs/math-icrm
    accelerate launch --config_file recipes/accelerate_configs/zero3.yaml recipes/grpo_math.py \\
        --model_name_or_path Qwen/Qwen2.5-0.5B-Instruct --dataset_name openai/gsm8k --bf16 --reward verifier

Make the reward models first (`trl-icrm build-math-preferences`, then `trl-icrm train`; the command prints the exact
commands when a model is missing).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

from ..data.math_preferences import DEFAULT_PREFERENCES_DIR
from ._common import BuiltinProblemArguments, PenaltyArguments, PromptDatasetArguments, command_parser, reward_choices
from ._model_args import apply_model_args


REWARD_CHOICES = reward_choices()


@dataclass
class GRPOScriptArguments(PenaltyArguments, BuiltinProblemArguments, PromptDatasetArguments):
    """Arguments of `trl-icrm grpo` (besides `GRPOConfig` and `ModelConfig`)."""

    reward: str = field(
        default="verifier",
        metadata={
            "help": "Reward: 'verifier', a registered kind of reward model ('icrm', 'bt', 'vrm', ...), or 'auto' "
            "(the kind of --reward_model_name_or_path).",
            "choices": REWARD_CHOICES,
        },
    )
    reward_model_name_or_path: str | None = field(
        default=None, metadata={"help": "Trained reward model for --reward icrm|bt|vrm|auto (folder or hub id)."}
    )
    num_demonstrations: int = field(default=4, metadata={"help": "ICRM demonstrations carried by each prompt."})
    preferences_path: str = field(
        default=DEFAULT_PREFERENCES_DIR,
        metadata={
            "help": "Preference pairs the ICRM demonstrations come from, when the prompts have no demonstrations "
            "column (a folder saved with `save_to_disk`, or a data file)."
        },
    )
    bank_key: str = field(
        default="group",
        metadata={"help": "Column of the prompts and the preference pairs that matches a prompt to its pairs."},
    )
    log_verifier: bool = field(
        default=True, metadata={"help": "With a reward model, also log math-verify accuracy (reward weight 0)."}
    )
    num_train_problems: int = field(
        default=64, metadata={"help": "Training prompts (built-in problems, or the first rows of the train split)."}
    )
    num_test_problems: int = field(
        default=32, metadata={"help": "Held-out problems for accuracy (the first rows of the test split)."}
    )
    eval_every: int = field(default=0, metadata={"help": "Steps between held-out evaluations (0: before/after only)."})
    eval_max_new_tokens: int | None = field(
        default=None, metadata={"help": "Tokens per greedy held-out answer (none: max_completion_length)."}
    )
    eval_batch_size: int = field(default=16, metadata={"help": "Prompts per generate call in held-out evaluation."})
    results_file: str = field(default="results.json", metadata={"help": "Results file in the output folder."})


GRPO_DEFAULTS = {
    "output_dir": "outputs/grpo-math",
    "per_device_train_batch_size": 4,
    "num_generations": 4,
    "max_completion_length": 96,
    "max_steps": 10,
    "learning_rate": 5e-6,
    "lr_scheduler_type": "constant",
    "logging_steps": 1,
    "report_to": [],
    "save_strategy": "steps",
    "save_steps": 50,
    "save_total_limit": 1,
    "seed": 0,
}
"""Defaults of the command (also in `recipes/smollm2-135m/grpo/config_*.yaml`): a run on CPU with the embedded model in
well under 15 minutes. `model_name_or_path`, `bf16` and `ddp_backend` are added by [`grpo_defaults`]."""


def _missing_local_model(path: str | None) -> bool:
    if path is None:
        return True
    looks_local = os.path.isabs(path) or path.startswith((".", "~", "outputs"))
    return looks_local and not os.path.exists(os.path.expanduser(path))


def reward_kind(script_args: GRPOScriptArguments) -> str:
    """`"verifier"` or a registered kind: `--reward`, with `auto` read from the reward model's saved config. Exits
    with the commands that make the reward model when it is missing."""
    from ..experiments.math_grpo import how_to_make_reward_model
    from ..rewards import reward_model_kind

    if script_args.reward == "verifier":
        return "verifier"
    path = script_args.reward_model_name_or_path
    if _missing_local_model(path):
        kind = "icrm" if script_args.reward == "auto" else script_args.reward
        raise SystemExit(how_to_make_reward_model(kind, path))
    return reward_model_kind(path) if script_args.reward == "auto" else script_args.reward


def build_reward_funcs(script_args: GRPOScriptArguments, training_args, train_dataset, kind: str | None = None):
    """(reward functions, training dataset) of `kind` (default: [`reward_kind`]); see
    `trl_icrm.experiments.math_grpo.grpo_reward_funcs`. Exits with the commands that make a missing reward model."""
    from ..data.prompts import PromptDatasetError
    from ..experiments.math_grpo import MissingRewardModelError, grpo_reward_funcs

    try:
        return grpo_reward_funcs(kind or reward_kind(script_args), script_args, training_args, train_dataset)
    except (MissingRewardModelError, PromptDatasetError) as error:
        raise SystemExit(str(error)) from error


def main(script_args: GRPOScriptArguments, training_args, model_args) -> dict:
    from ..data.prompts import PromptDatasetError
    from ..experiments.math_grpo import MissingRewardModelError, run_math_grpo
    from ..utils.io import write_json

    kind = reward_kind(script_args)  # before any work: exits with the commands that make a missing reward model
    apply_model_args(model_args, training_args)
    try:
        results, trainer = run_math_grpo(kind, script_args, training_args, model_args)
    except (MissingRewardModelError, PromptDatasetError) as error:
        raise SystemExit(str(error)) from error
    if trainer.accelerator.is_main_process:
        path = write_json(results, os.path.join(training_args.output_dir, script_args.results_file))
        before, after = results["heldout_accuracy"]["before"], results["heldout_accuracy"]["after"]
        if before is None:
            print(
                f"Trained with the {kind} reward (no held-out evaluation: {results['heldout_accuracy']['skipped']})."
            )
            print(f"Results: {path}")
        else:
            print(f"Held-out accuracy ({kind} reward): before {before:.3f}, after {after:.3f}. Results: {path}")
    return results


def grpo_defaults() -> dict:
    """The command's defaults: [`GRPO_DEFAULTS`], the embedded model, and `bf16` and `ddp_backend` for this machine
    and launch (`ddp_backend="gloo"` under a DeepSpeed launch without a GPU; see `trl_icrm.utils.distributed`)."""
    from ..trainer.icrm_config import bf16_available
    from ..utils.default_model import DEFAULT_MODEL
    from ..utils.distributed import default_ddp_backend

    return {
        "model_name_or_path": DEFAULT_MODEL,
        "bf16": bf16_available(),
        "ddp_backend": default_ddp_backend(),
        **GRPO_DEFAULTS,
    }


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    from trl import GRPOConfig, ModelConfig

    dataclass_types = (GRPOScriptArguments, GRPOConfig, ModelConfig)
    parser = command_parser(
        "grpo", "GRPO on math problems or your prompts", dataclass_types, __doc__, subparsers, prog
    )
    parser.set_defaults(**grpo_defaults())
    return parser


if __name__ == "__main__":
    from trl_icrm.utils.distributed import destroy_process_group

    main(*make_parser().parse_args_and_config())
    destroy_process_group()

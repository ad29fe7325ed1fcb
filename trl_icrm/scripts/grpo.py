# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""`trl-icrm grpo`: GRPO on math problems with one of three rewards: the math-verify verifier, a BT reward model, or
ICRM.

- `--reward verifier` (default): the math-verify correctness reward (`trl_icrm.MathVerifyReward`).
- `--reward bt`: a conventional reward model (`trl_icrm.SequenceClassifierReward`), e.g. from `trl-icrm train
  --method bt`.
- `--reward icrm`: an ICRM reward model (`trl_icrm.ICRMReward`). Each training prompt carries its own demonstrations:
  a `demonstrations` column of `--num_demonstrations` `{prompt, chosen, rejected}` pairs from the preference data
  (`--preferences_path`) of the prompt's group (problem family by default), never of the problem itself.
- `--reward auto`: the kind of `--reward_model_name_or_path`, read from its saved config (`icrm` or `bt`).

Reward models are loaded with `trl_icrm.load_reward`. With a reward model, the verifier is added with weight 0, so
that TRL logs the training accuracy (`rewards/math_verify/mean`) of every run. Held-out accuracy (greedy generation,
math-verify) is evaluated before training, every `--eval_every` steps and after training, and written with the TRL
logs (`trainer.state.log_history`) to `<output_dir>/results.json`.

    trl-icrm grpo                                                     # verifier reward, embedded model, CPU
    trl-icrm grpo --config recipes/smollm2-135m/grpo/config_icrm.yaml
    trl-icrm grpo --reward bt --reward_model_name_or_path outputs/math-bt --output_dir outputs/grpo-math-bt
    accelerate launch --config_file recipes/accelerate_configs/zero3.yaml recipes/grpo_math.py \\
        --model_name_or_path Qwen/Qwen2.5-0.5B-Instruct --dataset_name openai/gsm8k --bf16 --reward verifier

Make the reward models first (`trl-icrm build-math-preferences`, then `trl-icrm train`; the command prints the exact
commands when a model is missing).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

from ..experiments.math_grpo import DEFAULT_PREFERENCES_DIR, MathProblemArguments
from ..rewards.penalties import PENALTIES
from ._model_args import apply_model_args


REWARD_CHOICES = ["auto", "icrm", "bt", "vrm", "verifier"]
PENALTY_CHOICES = list(PENALTIES)


@dataclass
class GRPOScriptArguments(MathProblemArguments):
    """Arguments of `trl-icrm grpo` (besides `GRPOConfig` and `ModelConfig`)."""

    reward: str = field(
        default="verifier",
        metadata={
            "help": "Reward: 'icrm', 'bt', 'vrm', 'verifier', or 'auto' (the kind of --reward_model_name_or_path).",
            "choices": REWARD_CHOICES,
        },
    )
    reward_model_name_or_path: str | None = field(
        default=None, metadata={"help": "Trained reward model for --reward icrm|bt|vrm|auto (folder or hub id)."}
    )
    penalty: str | None = field(
        default=None,
        metadata={
            "help": "Reward of the reward model: its point reward (None), or the posterior 'mean', 'lcb' or "
            "'var_penalty' (the last two need an ICRM model).",
            "choices": PENALTY_CHOICES,
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
    "save_strategy": "no",
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
    """`"icrm"`, `"bt"` or `"verifier"`: `--reward`, with `auto` read from the reward model's saved config. Exits
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
    """(reward functions, training dataset): the reward of `kind` (default: [`reward_kind`]), the verifier with weight
    0 beside a reward model, and for ICRM the `demonstrations` column."""
    from ..experiments.math_grpo import add_demonstrations, how_to_make_reward_model, load_preferences
    from ..rewards import load_reward

    kind = kind or reward_kind(script_args)
    verifier = load_reward("verifier")
    if kind == "verifier":
        return [verifier], train_dataset
    path = script_args.reward_model_name_or_path
    if kind == "icrm":
        if not os.path.isdir(script_args.preferences_path):
            raise SystemExit(how_to_make_reward_model("icrm", path))
        preferences = load_preferences(script_args.preferences_path)
        train_dataset = add_demonstrations(
            train_dataset, preferences, script_args.num_demonstrations, seed=training_args.seed
        )
        reward = load_reward(
            path,
            kind="icrm",
            penalty=script_args.penalty,
            num_demonstrations=script_args.num_demonstrations,
            allow_zero_shot=True,
        )
    else:
        reward = load_reward(path, kind=kind, penalty=script_args.penalty, name=kind)
    if not script_args.log_verifier:
        return [reward], train_dataset
    if training_args.reward_weights is None:
        training_args.reward_weights = [1.0, 0.0]
    return [reward, verifier], train_dataset


def _results(script_args, training_args, model_args, kind, trainer, heldout, num_train, num_test) -> dict:
    history = [dict(record.items()) for record in heldout.history]
    return {
        "reward": kind,
        "reward_model": script_args.reward_model_name_or_path,
        "policy": model_args.model_name_or_path,
        "world_size": training_args.world_size,
        "num_train_problems": num_train,
        "num_test_problems": num_test,
        "heldout_accuracy": {
            "before": history[0]["accuracy"] if history else None,
            "after": history[-1]["accuracy"] if history else None,
            "history": history,
        },
        "log_history": trainer.state.log_history,
        "script_args": vars(script_args),
    }


def main(script_args: GRPOScriptArguments, training_args, model_args) -> dict:
    from trl import GRPOTrainer, get_peft_config

    from ..experiments.math_grpo import HeldOutAccuracyCallback, load_math_problems
    from ..utils.default_model import resolve_model_name_or_path
    from ..utils.io import write_json

    kind = reward_kind(script_args)  # before any work: exits with the commands that make a missing reward model
    apply_model_args(model_args, training_args)
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
    reward_funcs, train_dataset = build_reward_funcs(script_args, training_args, problems["train"], kind)
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
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)  # every rank: a collective under ZeRO-3
    results = _results(
        script_args, training_args, model_args, kind, trainer, heldout, len(train_dataset), len(problems["test"])
    )
    if trainer.accelerator.is_main_process:
        path = write_json(results, os.path.join(training_args.output_dir, script_args.results_file))
        before, after = results["heldout_accuracy"]["before"], results["heldout_accuracy"]["after"]
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
    from trl import GRPOConfig, ModelConfig, TrlParser

    dataclass_types = (GRPOScriptArguments, GRPOConfig, ModelConfig)
    if subparsers is not None:
        parser = subparsers.add_parser("grpo", help="GRPO on math problems", dataclass_types=dataclass_types)
    else:
        parser = TrlParser(dataclass_types, prog=prog, description=__doc__.split("\n\n")[0])
    parser.set_defaults(**grpo_defaults())
    return parser


if __name__ == "__main__":
    from trl_icrm.utils.distributed import destroy_process_group

    main(*make_parser().parse_args_and_config())
    destroy_process_group()

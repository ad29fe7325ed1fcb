# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""What the commands share: argument blocks (the reward models, the penalty, the math problems), the `--reward` choices
read from the reward registry, and the parser of a command (a `trl-icrm` subcommand or its own `TrlParser`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field

from trl import ScriptArguments

from ..data.math_preferences import GROUP_BY_CHOICES
from ..rewards.penalties import PENALTIES
from ..rewards.registry import NAMED_REWARDS, REWARD_KINDS


def reward_choices() -> list[str]:
    """The `--reward` choices: `"auto"` (the kind read from the saved model), every registered kind of reward model
    (`trl_icrm.register_reward_kind`), and the rewards loaded by name (`"verifier"`)."""
    return ["auto", *REWARD_KINDS, *NAMED_REWARDS]


@dataclass
class RewardModelsArguments:
    """The reward models of a command: one or more saved models and their kind."""

    reward_model_name_or_path: list[str] = field(
        default_factory=list,
        metadata={"help": "Reward model folder(s) or hub id(s); several form an ensemble."},
    )
    reward: str = field(
        default="auto",
        metadata={
            "help": "Kind of the reward models: 'auto' (read from each saved config), a registered kind ('icrm', "
            "'vrm', 'bt', 'laplace', ...) or 'verifier' (math-verify, no model).",
            "choices": reward_choices(),
        },
    )


@dataclass
class PenaltyArguments:
    """The uncertainty penalty of a reward model, given once when the reward is built (`trl_icrm.rewards.penalties`)."""

    penalty: str | None = field(
        default=None,
        metadata={
            "help": "Reward of the reward model: its point reward (None), or the posterior 'mean', 'lcb' (mean - k "
            "std) or 'var_penalty' (mean - k var); the last two need a reward model with a variance.",
            "choices": list(PENALTIES),
        },
    )
    penalty_coef: float = field(default=1.0, metadata={"help": "k of the 'lcb' and 'var_penalty' penalties."})


@dataclass
class BuiltinProblemArguments:
    """The settings of the built-in math problems (`trl_icrm.data.math_preferences.make_math_problems`) and of their
    groups."""

    difficulties: list[int] = field(
        default_factory=lambda: [1], metadata={"help": "Difficulties (arithmetic steps) of built-in problems."}
    )
    plain_fraction: float = field(
        default=0.5, metadata={"help": "Share of built-in problems asked as plain arithmetic ('What is 23 + 19?')."}
    )
    group_by: str = field(
        default="family",
        metadata={
            "help": "Group of a built-in or GSM8K / MATH-500 problem (its ICRM demonstrations come from the same "
            "group).",
            "choices": list(GROUP_BY_CHOICES),
        },
    )


@dataclass
class MathProblemArguments(BuiltinProblemArguments):
    """Which math problems a command uses: the built-in generator's settings or a dataset with GSM8K's schema
    (`trl_icrm.data.math_preferences.load_math_problems`)."""

    dataset_name: str | None = field(
        default=None, metadata={"help": "Hub id / local path of a dataset with GSM8K's schema (default: built-in)."}
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Config name of `dataset_name`."})


@dataclass
class PromptDatasetArguments(ScriptArguments):
    """The prompts of a command (`trl_icrm.data.prompts`): TRL's data set arguments (`--dataset_name`,
    `--dataset_config`, `--dataset_train_split`, `--dataset_test_split`) and the columns that hold the prompts, their
    reference answers and their ICRM demonstrations."""

    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "Prompts: a hub id, a local folder (also one saved with `save_to_disk`) or a .json/.jsonl/.csv/"
            ".parquet file (optionally compressed), with a prompt column (string or messages) or GSM8K / MATH-500 "
            "columns. Default: the built-in math problems."
        },
    )
    prompt_column: str = field(
        default="prompt", metadata={"help": "Column of the prompts (a string or a list of chat messages)."}
    )
    answer_column: str | None = field(
        default=None,
        metadata={
            "help": "Column of the reference answers math-verify checks (the verifier reward, the gold of best-of-n); "
            "default: 'solution' or 'answer' where the data has one."
        },
    )
    demonstrations_column: str = field(
        default="demonstrations",
        metadata={"help": "Column of per-prompt ICRM demonstrations (lists of {prompt, chosen, rejected} pairs)."},
    )


@dataclass
class DemonstrationBankArguments:
    """A bank of ICRM demonstrations read from a file, keyed by a field of its rows."""

    demonstration_bank: str | None = field(
        default=None,
        metadata={
            "help": "JSON file of demonstrations by key: an object {key: [{prompt, chosen, rejected}, ...]}, or "
            "preference rows (JSON list or JSON lines, or a folder saved with `save_to_disk`) grouped by --bank_key."
        },
    )
    bank_key: str = field(
        default="group",
        metadata={
            "help": "Field that holds the key of a --demonstration_bank row (and of a prompt, where it has one)."
        },
    )


@dataclass
class ThreadsArguments:
    """The CPU threads of torch for a command that runs a model."""

    threads: int | None = field(
        default=None,
        metadata={
            "help": "CPU threads of torch (torch's choice if not given); 1 is often fastest on a CPU shared with "
            "other jobs."
        },
    )

    def apply_threads(self) -> None:
        """Set torch's CPU threads to `threads`, where given."""
        if self.threads is not None:
            import torch

            torch.set_num_threads(self.threads)


def command_parser(
    name: str,
    help_text: str,
    dataclass_types: Sequence[type],
    doc: str,
    subparsers: argparse._SubParsersAction | None = None,
    prog: str | None = None,
):
    """The parser of the command `name`: a subcommand of `trl-icrm` (with `subparsers`), else its own `TrlParser`
    described by the first paragraph of the command's docstring `doc`."""
    from trl import TrlParser

    if subparsers is not None:
        return subparsers.add_parser(name, help=help_text, dataclass_types=tuple(dataclass_types))
    return TrlParser(tuple(dataclass_types), prog=prog, description=doc.split("\n\n")[0])


__all__ = [
    "BuiltinProblemArguments",
    "DemonstrationBankArguments",
    "MathProblemArguments",
    "PenaltyArguments",
    "PromptDatasetArguments",
    "RewardModelsArguments",
    "ThreadsArguments",
    "command_parser",
    "reward_choices",
]

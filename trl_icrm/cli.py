# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The `trl-icrm` command line: one command per module of `trl_icrm.scripts`.

Every command is a `TrlParser` script (snake_case flags, `--config file.yaml`, `--help` with every default), built by
its module's `make_parser(prog=...)` and run by its `main(...)`, as TRL's own `trl <command>` scripts are. The table
below is static, so `trl-icrm --help` lists the commands without importing any of them (nor torch, nor transformers);
only the command that runs is imported. A command's `--help` lists its own options, TRL's and the everyday ones of
`transformers.TrainingArguments`; `--help_all` lists them all.

    trl-icrm env
    trl-icrm train --method bt --output_dir outputs/math-bt
    trl-icrm grpo --config recipes/smollm2-135m/grpo/config_icrm.yaml
    trl-icrm bon --help
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NamedTuple


class CommandSpec(NamedTuple):
    """A `trl-icrm` command: its name, its module in `trl_icrm.scripts` and its one-line help."""

    name: str
    module: str
    help: str


COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("env", "env", "Print versions, the compute device and where the default model lives."),
    CommandSpec(
        "train",
        "train",
        "Train a reward model: ICRM (ICRMRewardTrainer), VRM (VRMRewardTrainer), Bradley-Terry (trl.RewardTrainer) or "
        "a head ensemble on a frozen backbone.",
    ),
    CommandSpec("grpo", "grpo", "GRPO on math problems with the math-verify, a BT or an ICRM reward."),
    CommandSpec("bon", "bon", "Best-of-N over-optimization curves: proxy reward model(s) vs math-verify gold."),
    CommandSpec(
        "steer-eval",
        "steer_eval",
        "Steerability: accuracy vs number of demonstrations, BT comparison, calibration, conflict front.",
    ),
    CommandSpec(
        "build-math-preferences",
        "build_math_preferences",
        "Sample math solutions from a policy and pair correct with incorrect ones (math-verify labels).",
    ),
    CommandSpec(
        "build-hh-objectives",
        "build_hh_objectives",
        "Relabel HH-RLHF pairs under objectives that disagree (harmless, compliant, concise, ...): a steering set.",
    ),
    CommandSpec(
        "laplace", "laplace", "Fit a Laplace posterior (Laplace-LoRA) to a BT reward model: a Bayesian reward model."
    ),
    CommandSpec(
        "compare-rewards", "compare_rewards", "Run GRPO once per reward (ICRM, BT, verifier) and compare them."
    ),
    CommandSpec("serve", "serve", "Serve a reward model over HTTP: OpenRLHF's /get_reward, raw /score, verl adapter."),
)
"""Every command, in the order `trl-icrm --help` lists them."""


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: one placeholder subparser per command (`add_help=False`; each command parses its own
    arguments, `--help` included)."""
    parser = argparse.ArgumentParser(
        prog="trl-icrm",
        description="Test-time steerable Bayesian reward models for TRL.",
        epilog="Run `trl-icrm <command> --help` for the options of a command.",
        allow_abbrev=False,
    )
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="<command>")
    for command in COMMANDS:
        subparsers.add_parser(command.name, help=command.help, add_help=False)
    return parser


def make_command_parser(name: str):
    """The `TrlParser` of the command `name` (imports its module)."""
    module = importlib.import_module(f"trl_icrm.scripts.{_module_of(name)}")
    return module, module.make_parser(prog=f"trl-icrm {name}")


def _module_of(name: str) -> str:
    for command in COMMANDS:
        if command.name == name:
            return command.module
    raise KeyError(f"Unknown trl-icrm command {name!r}.")


HELP_ALL = "--help_all"
"""The flag that lists every option of a command, the `transformers.TrainingArguments` ones included."""

EVERYDAY_TRAINING_OPTIONS = frozenset(
    {
        "output_dir", "overwrite_output_dir", "learning_rate", "lr_scheduler_type", "warmup_steps", "weight_decay",
        "num_train_epochs", "max_steps", "per_device_train_batch_size", "per_device_eval_batch_size",
        "gradient_accumulation_steps", "gradient_checkpointing", "logging_steps", "eval_strategy", "eval_steps",
        "save_strategy", "save_steps", "save_total_limit", "resume_from_checkpoint", "seed", "bf16", "fp16", "use_cpu",
        "report_to", "run_name", "push_to_hub", "hub_model_id",
    }
)  # fmt: skip
"""`transformers.TrainingArguments` options that `--help` lists (the others only with `--help_all`)."""


def short_help(parser) -> str:
    """The help of a command without the `transformers.TrainingArguments` options outside
    [`EVERYDAY_TRAINING_OPTIONS`] (those that TRL's or trl-icrm's configs re-declare stay), and a note naming
    `--help_all`."""
    import dataclasses

    from transformers import TrainingArguments

    declared = {
        name
        for dataclass_type in parser.dataclass_types
        for cls in dataclass_type.__mro__
        if cls is not TrainingArguments and dataclasses.is_dataclass(cls)
        for name in cls.__dict__.get("__annotations__", {})
    }
    hidden = {field.name for field in dataclasses.fields(TrainingArguments)} - declared - EVERYDAY_TRAINING_OPTIONS
    actions = [action for action in parser._actions if action.dest in hidden]
    if not actions:
        return parser.format_help()
    saved = [action.help for action in actions]
    for action in actions:
        action.help = argparse.SUPPRESS
    try:
        text = parser.format_help()
    finally:
        for action, help_text in zip(actions, saved, strict=True):
            action.help = help_text
    return (
        f"{text}\n{len(hidden)} more options of transformers.TrainingArguments (logging, saving, evaluation, "
        f"distributed and hub settings) are accepted too: `{parser.prog} {HELP_ALL}` lists them."
    )


HELP_TEXT_DIR = os.path.join(os.path.dirname(__file__), "scripts", "help")
"""Where each command's `--help` text is stored (`<command>.txt`), so that `--help` answers without importing torch,
transformers or TRL; `tests/test_cli.py` checks every stored text against the live parser's, and
`python -m trl_icrm.cli --write_help` rewrites them."""

HELP_COLUMNS = "120"
"""Terminal width the stored help texts are formatted for."""


def stored_help(name: str) -> str | None:
    """The stored `--help` text of the command `name`, or None when there is none."""
    path = os.path.join(HELP_TEXT_DIR, f"{name}.txt")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def live_help(name: str) -> str:
    """The `--help` text of the command `name` from its parser, formatted for [`HELP_COLUMNS`] columns."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        return short_help(make_command_parser(name)[1]) + "\n"
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def write_help_texts(folder: str = HELP_TEXT_DIR) -> list[str]:
    """Write every command's [`live_help`] to `folder/<command>.txt`; returns the paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for command in COMMANDS:
        path = os.path.join(folder, f"{command.name}.txt")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(live_help(command.name))
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    """Run `trl-icrm <command> [arguments]`; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if args.command is None:
        if unknown:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        parser.print_help()
        return 0
    index = argv.index(args.command)
    if index > 0:
        parser.error(f"unrecognized arguments before the command: {' '.join(argv[:index])}")
    if argv[index + 1 :] in (["-h"], ["--help"]) and (text := stored_help(args.command)) is not None:
        print(text, end="")
        return 0
    module, command_parser = make_command_parser(args.command)
    if {"-h", "--help", HELP_ALL} & set(argv[index + 1 :]):
        command_parser.print_help() if HELP_ALL in argv else print(short_help(command_parser))
        return 0
    try:
        parsed = command_parser.parse_args_and_config(argv[index + 1 :])
    except ValueError as error:  # a value a dataclass rejects (`__post_init__`): a usage error, not a traceback
        command_parser.error(str(error))
    try:
        module.main(*parsed)
    except (FileNotFoundError, ValueError) as error:  # a model, data set or file that is not there or not usable
        if not _is_user_error(error):
            raise
        command_parser.exit(1, f"{command_parser.prog}: error: {error}\n")
    _end_process_group()
    return 0


def _is_user_error(error: Exception) -> bool:
    """Whether `error` is about what the user gave (a missing file, a folder that holds no usable reward model or a
    posterior of another model): a one-line message, not a traceback."""
    from .laplace.adapter import NotARewardModelError
    from .laplace.posterior import PosteriorMismatchError
    from .utils.io import IncompleteModelFolderError

    user_errors = (FileNotFoundError, NotARewardModelError, PosteriorMismatchError, IncompleteModelFolderError)
    return isinstance(error, user_errors)


def _end_process_group() -> None:
    """End the process group a command started under `accelerate launch -m trl_icrm.cli <command>` on every rank."""
    if "torch.distributed" in sys.modules:
        from .utils.distributed import destroy_process_group

        destroy_process_group()


if __name__ == "__main__":
    if sys.argv[1:] == ["--write_help"]:
        print("\n".join(write_help_texts()))
        sys.exit(0)
    sys.exit(main())

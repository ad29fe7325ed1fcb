# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The `trl-icrm` command line: one command per module of `trl_icrm.scripts`.

Every command is a `TrlParser` script (snake_case flags, `--config file.yaml`, `--help` with every default), built by
its module's `make_parser(prog=...)` and run by its `main(...)`, as TRL's own `trl <command>` scripts are. The table
below is static, so `trl-icrm --help` lists the commands without importing any of them (nor torch, nor transformers);
only the command that runs is imported.

    trl-icrm env
    trl-icrm train --method bt --output_dir outputs/math-bt
    trl-icrm grpo --config recipes/smollm2-135m/grpo/config_icrm.yaml
    trl-icrm bon --help
"""

from __future__ import annotations

import argparse
import importlib
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
    module, command_parser = make_command_parser(args.command)
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
    sys.exit(main())

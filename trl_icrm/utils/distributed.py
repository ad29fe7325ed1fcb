# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Helpers for running TRL trainers under `accelerate launch` with DeepSpeed, including on machines without a GPU
(`recipes/accelerate_configs/cpu_zero2.yaml`, `cpu_zero3.yaml`):

1. [`default_ddp_backend`]: `ddp_backend="gloo"` on a machine without a GPU, without which accelerate counts one
   process while DeepSpeed sees two;
2. [`destroy_process_group`]: a clean end of the script on every rank;
3. [`zero3_init_disabled`]: scoring models kept whole under ZeRO-3.

Why each is needed (the failures, and where in accelerate, transformers and DeepSpeed they come from):
docs/distributed.md.

Example (recipe script):

```python
>>> from trl import GRPOConfig
>>> from trl_icrm.utils.distributed import default_ddp_backend, destroy_process_group
>>> args = GRPOConfig(output_dir="out", ddp_backend=default_ddp_backend())
>>> ...  # build the trainer, train, save
>>> destroy_process_group()
```

A script that parses `TrainingArguments` from the command line can pass `--ddp_backend gloo` instead.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def _has_distributed_device() -> bool:
    """Whether accelerate would pick a device backend (nccl, xccl, hccl, ...) by itself, as `PartialState` does."""
    if torch.cuda.is_available():
        return True
    from accelerate.utils import (
        is_hpu_available,
        is_mlu_available,
        is_musa_available,
        is_npu_available,
        is_sdaa_available,
        is_torch_xla_available,
        is_xccl_available,
        is_xpu_available,
    )

    return any(
        (
            is_torch_xla_available(),
            is_mlu_available(),
            is_sdaa_available(),
            is_musa_available(),
            is_npu_available(),
            is_hpu_available(),
            is_xpu_available() and is_xccl_available(),
        )
    )


def is_deepspeed_launch() -> bool:
    """Whether this process was started by `accelerate launch` with a DeepSpeed config."""
    return os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true" and "LOCAL_RANK" in os.environ


def default_ddp_backend() -> str | None:
    """The `ddp_backend` to give the training arguments: `"gloo"` for a DeepSpeed launch without a GPU, else `None`.

    `None` lets accelerate choose (nccl on GPUs). See the module docstring for why a CPU DeepSpeed launch needs an
    explicit backend.
    """
    if is_deepspeed_launch() and not _has_distributed_device():
        return "gloo"
    return None


def check_world_size(args) -> None:
    """Raise if the training arguments see fewer processes than `torch.distributed` (the CPU DeepSpeed pitfall).

    Args:
        args: `TrainingArguments` (or a TRL config), after construction.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        world_size = torch.distributed.get_world_size()
        if args.world_size != world_size:
            raise RuntimeError(
                f"The training arguments see {args.world_size} process(es) but torch.distributed has {world_size}. "
                "On a machine without a GPU, a DeepSpeed launch needs `ddp_backend='gloo'` (see "
                "`trl_icrm.utils.distributed.default_ddp_backend`)."
            )


def destroy_process_group(grace_seconds: float = 0.5) -> None:
    """End a distributed script cleanly on every rank: barrier, destroy the process groups, let gloo settle.

    With gloo, a worker thread of `ProcessGroupGloo` releases each finished collective (which may hold the last
    reference to a tensor owned by Python, so it needs the GIL) shortly *after* the caller's `wait()` has returned.
    If the interpreter is already finalizing by then, that thread is killed while taking the GIL and the rank aborts
    with "terminate called without an active exception" (exit code -6) although training and saving succeeded
    (pytorch/pytorch#190489). The barrier makes every rank finish its collectives, and the short sleep releases the
    GIL so the worker threads can drop them before the interpreter shuts down.

    Args:
        grace_seconds: Time left to gloo's worker threads after the last collective (CPU/gloo only).
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    is_gloo = torch.distributed.get_backend() == "gloo"
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
    if is_gloo and grace_seconds > 0:
        time.sleep(grace_seconds)


@contextmanager
def zero3_init_disabled() -> Iterator[None]:
    """Load models whole (not ZeRO-3 partitioned) inside this block, even while a ZeRO-3 config is active.

    For small models used only for scoring inside a python reward function: each rank gets a full copy that can be
    called directly. transformers partitions at load time when `is_deepspeed_zero3_enabled()`; this block hides the
    global DeepSpeed config from it and restores it afterwards. (accelerate's
    `DeepSpeedPlugin.zero3_init_context_manager(enable=False)` does not, since it re-registers the same ZeRO-3
    config.)
    """
    from .._trl_compat import hide_hf_deepspeed_config

    with hide_hf_deepspeed_config():
        yield

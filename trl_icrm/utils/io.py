# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Writing results: strict JSON (NaN and infinities as `null`, numpy scalars and arrays as plain numbers and lists),
CSV, the one matplotlib set-up for plots, and the guard of a model save ([`saving_model`]).

Example:

```python
>>> from trl_icrm.utils.io import json_safe
>>> json_safe({"accuracy": float("nan"), "ks": (0, 1)})
{'accuracy': None, 'ks': [0, 1]}

```
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch


def json_safe(value: Any) -> Any:
    """`value` with NaN/inf floats as None, tuples as lists, numpy and torch scalars/arrays as Python values and
    mapping keys as strings, so that any strict JSON reader accepts it."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, (np.generic, np.ndarray, torch.Tensor)):
        return json_safe(value.tolist())
    return value


def write_json(data: Any, path: str | os.PathLike) -> str:
    """Write `data` as indented strict JSON ([`json_safe`]) and return the path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(json_safe(data), handle, indent=2, default=str)
    return str(path)


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> str:
    """Write `rows` (mappings with the same keys, the first row's keys as header) as CSV and return the path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def new_figure(figsize: tuple[float, float] = (6.4, 4.2)):
    """`(figure, axes)` of a matplotlib figure on the non-interactive Agg canvas: no display and no pyplot global
    state (safe in threads and training callbacks). The one plot set-up of the package."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def save_figure(figure, path: str | os.PathLike, dpi: int = 120) -> str:
    """Lay out `figure` tightly, write it as PNG to `path` and return the path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    return str(path)


INCOMPLETE_SAVE_MARKER = ".incomplete_save"
"""Written into a model folder before a save starts and removed once it has finished: a folder that holds it holds no
complete model, and loaders refuse it."""

MODEL_FILE_PATTERNS = (
    "adapter_config.json",
    "adapter_model.safetensors",
    "adapter_model.bin",
    "model.safetensors",
    "model-*-of-*.safetensors",
    "model.safetensors.index.json",
    "pytorch_model*.bin",
    "pytorch_model.bin.index.json",
    "laplace_*.safetensors",
)
"""The files of a saved model's weights, of either kind (a PEFT adapter or a full model), and the Laplace posteriors
fitted to them: a new save removes them all first, so the folder never mixes two models."""


class IncompleteModelFolderError(ValueError):
    """A model folder whose last save did not finish (it may hold an older model's weights, or none)."""


@contextlib.contextmanager
def saving_model(output_dir: str | os.PathLike, enabled: bool = True) -> Iterator[None]:
    """Guard a model save into `output_dir`: mark the folder incomplete ([`INCOMPLETE_SAVE_MARKER`]), remove the
    weights of any model saved there before (adapter or full model, and its Laplace posteriors), let the block write
    the new model, and remove the mark only if the block finished. An interrupted save thus leaves a folder that every
    loader refuses ([`check_model_folder`]), never an older model that loads as if it were the new one.

    `enabled=False` (a process that does not write, in distributed training) does nothing.

    Example:

    ```python
    with saving_model("outputs/bt"):
        model.save_pretrained("outputs/bt")
    ```
    """
    if not enabled:
        yield
        return
    os.makedirs(output_dir, exist_ok=True)
    marker = Path(output_dir, INCOMPLETE_SAVE_MARKER)
    marker.write_text("A model save into this folder started and did not finish; save the model again.\n")
    for pattern in MODEL_FILE_PATTERNS:
        for path in Path(output_dir).glob(pattern):
            path.unlink()
    yield  # an exception (or Ctrl-C) in the block leaves the marker
    marker.unlink(missing_ok=True)  # (a nested guard of the same save may have removed it)


def check_model_folder(path: str | os.PathLike) -> None:
    """A clear error unless the local folder `path` holds one complete model: not a save that did not finish, nor a
    PEFT adapter and full model weights side by side (two different models)."""
    folder = Path(path)
    if not folder.is_dir():
        return
    if (folder / INCOMPLETE_SAVE_MARKER).exists():
        raise IncompleteModelFolderError(
            f"{os.fspath(path)}: the last save of a model into this folder did not finish ({INCOMPLETE_SAVE_MARKER} "
            "is there), so its weights may be another model's; save the model again."
        )
    full = [name for name in ("model.safetensors", "model.safetensors.index.json") if (folder / name).is_file()]
    if (folder / "adapter_config.json").is_file() and full:
        raise IncompleteModelFolderError(
            f"{os.fspath(path)} holds both a PEFT adapter (adapter_config.json) and full model weights ({full[0]}): "
            "two different models. Save the model into an empty folder (or again with this version, which removes "
            "the other kind's files)."
        )


RESUME_LAST = ("true", "yes", "1")
"""`--resume_from_checkpoint` values that resume from the last checkpoint in the output folder."""

RESUME_NONE = ("", "false", "no", "0", "none")
"""`--resume_from_checkpoint` values that start afresh."""


def resume_checkpoint(value: str | bool | None) -> str | bool | None:
    """`--resume_from_checkpoint` the way TRL's commands read it: `true` ([`RESUME_LAST`]) resumes from the last
    checkpoint in the output folder (`True` for `Trainer.train`), `false` or nothing ([`RESUME_NONE`]) starts afresh
    (`None`), anything else is a checkpoint folder, which must exist."""
    text = str(value).strip().lower()
    if value is None or value is False or text in RESUME_NONE:
        return None
    if value is True or text in RESUME_LAST:
        return True
    if not os.path.isdir(value):
        raise FileNotFoundError(
            f"No checkpoint folder at {value!r} (--resume_from_checkpoint); give `true` for the last one."
        )
    return str(value)


__all__ = [
    "INCOMPLETE_SAVE_MARKER",
    "RESUME_LAST",
    "RESUME_NONE",
    "IncompleteModelFolderError",
    "check_model_folder",
    "saving_model",
    "json_safe",
    "new_figure",
    "resume_checkpoint",
    "save_figure",
    "write_csv",
    "write_json",
]

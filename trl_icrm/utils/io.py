# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Writing results: strict JSON (NaN and infinities as `null`, numpy scalars and arrays as plain numbers and lists),
CSV, and the one matplotlib set-up for plots.

Example:

```python
>>> from trl_icrm.utils.io import json_safe
>>> json_safe({"accuracy": float("nan"), "ks": (0, 1)})
{'accuracy': None, 'ks': [0, 1]}

```
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
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


__all__ = ["json_safe", "new_figure", "save_figure", "write_csv", "write_json"]

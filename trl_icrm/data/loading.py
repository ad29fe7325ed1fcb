# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""One split of a data set from wherever a user keeps it: a local data file, a folder saved with
`Dataset.save_to_disk`, a local data folder or a hub id.

Example:

```python
>>> from trl_icrm.data.loading import load_split
>>> gsm8k = load_split("openai/gsm8k", split="test", name="main")  # doctest: +SKIP
```
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, load_dataset, load_from_disk


FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}
"""The `datasets` builder of each supported local file type."""


def load_split(
    path_or_name: str | os.PathLike, split: str = "train", name: str | None = None, **load_dataset_kwargs: Any
) -> Dataset:
    """Split `split` of a data set. A local file (`.json`, `.jsonl`, `.csv`, `.parquet`) gives all its rows as that
    split; a folder written by `save_to_disk` is read with `datasets.load_from_disk`; anything else (a local data
    folder or a hub id, with config `name`) with `datasets.load_dataset`."""
    path = Path(path_or_name).expanduser()
    if path.is_file():
        builder = FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise ValueError(f"Unsupported file type {path.suffix!r}; use one of {sorted(FILE_BUILDERS)}.")
        return load_dataset(builder, data_files={split: str(path)}, split=split, **load_dataset_kwargs)
    if path.is_dir() and any((path / marker).is_file() for marker in ("dataset_dict.json", "state.json")):
        loaded = load_from_disk(str(path))
        return loaded[split] if isinstance(loaded, DatasetDict) else loaded
    return load_dataset(str(path_or_name), name=name, split=split, **load_dataset_kwargs)


__all__ = ["FILE_BUILDERS", "load_split"]

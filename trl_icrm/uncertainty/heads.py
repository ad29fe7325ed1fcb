# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""[`HeadEnsemble`]: M reward heads (linear, or a small MLP each) on one shared frozen backbone's features.

The backbone runs once per sequence; its pooled feature (the vector a sequence classifier's score head reads, see
`trl_icrm.models.features`) goes through the M heads at once (batched matrix products), giving `(batch, M)` rewards.
Each member's initial weights are drawn from its own seed, `(seed, member)`, so member `m` starts the same whatever
the ensemble's size. Saved as `head_ensemble.safetensors` and `head_ensemble_config.json` (the settings, the
backbone it was trained on and that backbone's fingerprint), with the tokenizer, in one folder.

Example:

```python
>>> import torch
>>> from trl_icrm.uncertainty import HeadEnsemble, HeadEnsembleConfig
>>> heads = HeadEnsemble(HeadEnsembleConfig(hidden_size=8, num_members=3, head_type="linear"))
>>> heads(torch.zeros(2, 8)).shape
torch.Size([2, 3])

```
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn


HEAD_ENSEMBLE_WEIGHTS = "head_ensemble.safetensors"
HEAD_ENSEMBLE_CONFIG = "head_ensemble_config.json"
HEAD_TYPES = ("linear", "mlp")


@dataclass
class HeadEnsembleConfig:
    """Settings of a [`HeadEnsemble`].

    Args:
        hidden_size: Size of the backbone's features.
        num_members: M, the number of heads.
        head_type: `"linear"` (one linear layer per member, as a BT score head) or `"mlp"` (linear, ReLU, linear).
        head_hidden_size: Width of an MLP head's hidden layer.
        seed: Seed of the members' initialisations (member `m` draws from `(seed, m)`).
        backbone: The backbone the heads read (folder, adapter folder or hub id), recorded for loading.
        backbone_fingerprint: The fingerprint of that backbone's features (`FeatureEncoder.fingerprint`).
        max_length: Tokens per sequence the features were computed on.
    """

    hidden_size: int
    num_members: int = 5
    head_type: str = "mlp"
    head_hidden_size: int = 128
    seed: int = 0
    backbone: str | None = None
    backbone_fingerprint: str | None = None
    max_length: int | None = None

    def __post_init__(self):
        if self.num_members < 1:
            raise ValueError(f"num_members must be >= 1, got {self.num_members}.")
        if self.head_type not in HEAD_TYPES:
            raise ValueError(f"head_type must be one of {HEAD_TYPES}, got {self.head_type!r}.")
        if self.hidden_size < 1 or self.head_hidden_size < 1:
            raise ValueError(
                f"hidden_size and head_hidden_size must be >= 1, got {self.hidden_size}, {self.head_hidden_size}."
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> HeadEnsembleConfig:
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"Unknown head ensemble settings: {sorted(unknown)}.")
        return cls(**values)


def _uniform(shape: tuple[int, ...], fan_in: int, generator: torch.Generator) -> torch.Tensor:
    """`nn.Linear`'s default initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    return (torch.rand(shape, generator=generator) * 2 - 1) * bound


class HeadEnsemble(nn.Module):
    """M reward heads on shared features: `(batch, hidden)` -> `(batch, M)`, all heads in one batched product.

    Args:
        config: [`HeadEnsembleConfig`].
    """

    def __init__(self, config: HeadEnsembleConfig):
        super().__init__()
        self.config = config
        members = [self._draw_member(m) for m in range(config.num_members)]
        for name in members[0]:
            self.register_parameter(name, nn.Parameter(torch.stack([member[name] for member in members])))

    def _draw_member(self, member: int) -> dict[str, torch.Tensor]:
        """Initial weights of one member, from its own generator seeded by `(seed, member)`."""
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + member)
        hidden, width = self.config.hidden_size, self.config.head_hidden_size
        if self.config.head_type == "linear":
            return {"weight": _uniform((hidden,), hidden, generator), "bias": _uniform((), hidden, generator)}
        return {
            "weight_in": _uniform((hidden, width), hidden, generator),
            "bias_in": _uniform((width,), hidden, generator),
            "weight": _uniform((width,), width, generator),
            "bias": _uniform((), width, generator),
        }

    @property
    def num_members(self) -> int:
        return self.config.num_members

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features = features.to(self.weight.dtype)
        if self.config.head_type == "linear":
            return features @ self.weight.T + self.bias
        hidden = torch.relu(torch.einsum("nh,mhd->nmd", features, self.weight_in) + self.bias_in)
        return torch.einsum("nmd,md->nm", hidden, self.weight) + self.bias

    def save_pretrained(self, output_dir: str | os.PathLike) -> str:
        """Write `head_ensemble.safetensors` and `head_ensemble_config.json` to `output_dir`."""
        from safetensors.torch import save_file

        os.makedirs(output_dir, exist_ok=True)
        tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in self.state_dict().items()}
        save_file(tensors, os.path.join(output_dir, HEAD_ENSEMBLE_WEIGHTS), metadata={"format": "trl-icrm-heads"})
        with open(os.path.join(output_dir, HEAD_ENSEMBLE_CONFIG), "w", encoding="utf-8") as handle:
            json.dump({"head_ensemble": asdict(self.config)}, handle, indent=2)
        return os.fspath(output_dir)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> HeadEnsemble:
        """The head ensemble saved in `folder` (safetensors only)."""
        from safetensors.torch import load_file

        config_path, weights_path = Path(folder, HEAD_ENSEMBLE_CONFIG), Path(folder, HEAD_ENSEMBLE_WEIGHTS)
        if not config_path.is_file() or not weights_path.is_file():
            raise FileNotFoundError(
                f"{folder} holds no head ensemble ({HEAD_ENSEMBLE_CONFIG} and {HEAD_ENSEMBLE_WEIGHTS}); train one "
                "with `trl-icrm train --method head_ensemble`."
            )
        settings = json.loads(config_path.read_text(encoding="utf-8"))
        heads = cls(HeadEnsembleConfig.from_dict(settings["head_ensemble"]))
        heads.load_state_dict(load_file(weights_path))
        return heads.eval()


def is_head_ensemble_folder(path: str | os.PathLike) -> bool:
    return Path(path, HEAD_ENSEMBLE_CONFIG).is_file()


__all__ = [
    "HEAD_ENSEMBLE_CONFIG",
    "HEAD_ENSEMBLE_WEIGHTS",
    "HEAD_TYPES",
    "HeadEnsemble",
    "HeadEnsembleConfig",
    "is_head_ensemble_folder",
]

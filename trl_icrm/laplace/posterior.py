# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""[`LaplacePosterior`]: a fitted laplace-torch posterior over a BT reward model's weights, its GLM predictive per
completion, and its storage next to the model (safetensors, no pickle).

The MAP weights are the model itself; the file holds the curvature (Kronecker factors, diagonal or dense GGN), the
prior precision tuned by marginal likelihood, the posterior mean (to check it is the model's) and, in the safetensors
metadata, the subset, the structure, the base model and a signature of the weights (names and shapes). It is written
to a temporary file first and renamed into place, so an interrupted fit leaves nothing a later load would read.

Example:

```python
from trl_icrm.laplace import load_posterior

posterior = load_posterior("outputs/math-bt-lora")          # finds laplace_lora.safetensors next to the model
mean, variance = posterior.predict_rows(rows)               # rows: (n, 1, length) token ids padded with -1
```
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..models.features import weight_fingerprint
from .adapter import SUBSETS


POSTERIOR_FORMAT = "trl-icrm/laplace-posterior"
POSTERIOR_VERSION = 1
STRUCTURES = ("kron", "diag", "full")
DEFAULT_STRUCTURE = {"lora": "kron", "last_layer": "full"}
"""Hessian structure per subset: Kronecker factors for the LoRA weights, the exact dense GGN for the head."""


class PosteriorMismatchError(ValueError):
    """A posterior file that does not belong to the model it is loaded with (weights, shapes or base model)."""


def posterior_file(model_dir: str | os.PathLike, subset: str) -> Path:
    """Where the posterior of `subset` lives next to a saved model: `<model_dir>/laplace_<subset>.safetensors`."""
    if subset not in SUBSETS:
        raise ValueError(f"Unknown subset {subset!r}; expected one of {SUBSETS}.")
    return Path(model_dir) / f"laplace_{subset}.safetensors"


def saved_subsets(model_dir: str | os.PathLike) -> list[str]:
    """The subsets with a posterior file next to a saved model (LoRA first)."""
    if not os.path.isdir(model_dir):
        return []
    return [subset for subset in SUBSETS if posterior_file(model_dir, subset).is_file()]


def weight_signature(named_parameters: list[tuple[str, torch.Tensor]]) -> str:
    """A short hash of the names and shapes of the weights a posterior covers."""
    text = json.dumps([[name, list(parameter.shape)] for name, parameter in named_parameters])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def make_laplace(adapter: torch.nn.Module, structure: str, prior_precision: float = 1.0) -> Any:
    """laplace-torch's posterior object over `adapter`'s trainable weights (reward-modeling likelihood, GGN by
    curvlinops; the predictive's Jacobians per row in one backward pass, [`~trl_icrm.laplace.jacobians`])."""
    from laplace import Laplace

    from .jacobians import per_row_backend

    if structure not in STRUCTURES:
        raise ValueError(f"Unknown hessian_structure {structure!r}; expected one of {STRUCTURES}.")
    return Laplace(
        adapter,
        "reward_modeling",
        subset_of_weights="all",
        hessian_structure=structure,
        backend=per_row_backend(),
        prior_precision=prior_precision,
    )


@dataclass
class LaplacePosterior:
    """A fitted (or loaded) Laplace posterior of a reward model.

    Attributes:
        laplace: The laplace-torch object (`KronLaplace`, `DiagLaplace` or `FullLaplace`) over the adapter's weights.
        adapter: The module laplace-torch differentiates ([`PairwiseRewardAdapter`] or [`HeadAdapter`]).
        model: The reward model (PEFT or plain sequence classifier).
        subset, structure: Which weights and which Hessian approximation.
        pad_token_id: The tokenizer's pad id.
        metadata: Base model, weight signature, number of pairs, ...
    """

    laplace: Any
    adapter: torch.nn.Module
    model: torch.nn.Module
    subset: str
    structure: str
    pad_token_id: int
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def prior_precision(self) -> float:
        return float(self.laplace.prior_precision.reshape(-1)[0])

    def predict_rows(self, rows: torch.Tensor, chunk_size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
        """MAP reward and GLM predictive variance of completions given as `(n, 1, length)` token rows (padded with
        -1), `chunk_size` completions per forward pass (and, for the LoRA subset, per backward pass: the Jacobians of
        a chunk come from one backward pass, [`~trl_icrm.laplace.jacobians`])."""
        from .adapter import pooled_features
        from .predictive import glm_predictive

        means, variances = [], []
        device = next(self.model.parameters()).device
        for start in range(0, len(rows), chunk_size):
            chunk = rows[start : start + chunk_size]
            chunk = chunk[..., : int((chunk >= 0).flatten(0, -2).any(0).nonzero().max()) + 1]  # drop all-pad columns
            chunk = chunk.to(device)
            if self.subset == "last_layer":
                chunk = pooled_features(self.model, chunk, self.pad_token_id)
            mean, variance = glm_predictive(self.laplace, chunk)
            means.append(mean.reshape(-1).cpu())
            variances.append(variance.reshape(-1).cpu())
        return torch.cat(means).double(), torch.cat(variances).double().clamp_min(0.0)

    def to(self, device: str | torch.device) -> LaplacePosterior:
        """Move the model and the posterior (curvature, mean, prior) to `device`, e.g. a GPU to serve it; returns
        `self`. laplace-torch's posterior objects have no `.to`: the object is rebuilt on the moved model from its
        state."""
        state = self.laplace.state_dict()
        self.model.to(device)
        self.adapter.to(device)
        laplace = make_laplace(self.adapter, self.structure)
        laplace.load_state_dict(_to_device(state, torch.device(device)))
        self.laplace = laplace
        return self

    def tensors(self) -> dict[str, torch.Tensor]:
        """The posterior's tensors for safetensors: curvature, prior precision and mean, loss."""
        state = self.laplace.state_dict()
        tensors = {key: torch.as_tensor(state[key]).detach().reshape(-1).contiguous() for key in ("mean", "loss")}
        tensors["prior_precision"] = state["prior_precision"].detach().reshape(-1).contiguous()
        tensors["prior_mean"] = torch.as_tensor(state["prior_mean"]).detach().reshape(-1).contiguous()
        if self.structure == "kron":
            for i, factors in enumerate(state["H"]):
                for j, factor in enumerate(factors):
                    tensors[f"H.{i}.{j}"] = factor.detach().contiguous()
        else:
            tensors["H"] = state["H"].detach().contiguous()
        return {key: value.float().cpu() for key, value in tensors.items()}

    def file_metadata(self) -> dict[str, str]:
        state = self.laplace.state_dict()
        return {
            **self.metadata,
            "format": POSTERIOR_FORMAT,
            "version": str(POSTERIOR_VERSION),
            "subset": self.subset,
            "structure": self.structure,
            "cls_name": state["cls_name"],
            "n_data": str(state["n_data"]),
            "n_outputs": str(state["n_outputs"]),
            "temperature": str(state["temperature"]),
            "sigma_noise": str(float(torch.as_tensor(state["sigma_noise"]).reshape(-1)[0])),
        }

    def save(self, model_dir: str | os.PathLike) -> str:
        """Write the posterior next to the model (`laplace_<subset>.safetensors`) atomically; returns the path."""
        from safetensors.torch import save_file

        path = posterior_file(model_dir, self.subset)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
        try:
            save_file(self.tensors(), str(temporary), metadata=self.file_metadata())
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        return str(path)


def _to_device(value: Any, device: torch.device) -> Any:
    """Every tensor of a (nested) laplace-torch state dict on `device`."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (list, tuple)):
        return type(value)(_to_device(item, device) for item in value)
    if isinstance(value, dict):
        return {key: _to_device(item, device) for key, item in value.items()}
    return value


__all__ = [
    "DEFAULT_STRUCTURE",
    "POSTERIOR_FORMAT",
    "STRUCTURES",
    "make_laplace",
    "LaplacePosterior",
    "PosteriorMismatchError",
    "posterior_file",
    "saved_subsets",
    "weight_fingerprint",
    "weight_signature",
]

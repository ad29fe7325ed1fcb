# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""One registry of reward kinds: [`load_reward`] turns a saved model (or a built-in name) into its reward function.

A saved reward model says what it is in its config: an ICRM model has `icrm` settings, a VRM model `vrm` settings, a
conventional BT model is a one-output sequence classifier; a BT model with a Laplace posterior next to it
(`laplace_*.safetensors`, from `trl-icrm laplace`) is of kind `laplace`, which takes precedence over `bt`; a folder
with `head_ensemble_config.json` is a head ensemble (`head_ensemble`), one with `lora_ensemble_config.json` a LoRA
ensemble (`lora_ensemble`). Kind `mc_dropout` (MC dropout on a BT model)
is chosen by name.
[`reward_model_kind`] reads that; [`load_reward`] returns the matching reward model (`ICRMReward`, `VRMReward`,
`SequenceClassifierReward`, `LaplaceReward`) or, for the name `"verifier"`, the math-verify correctness reward. A new
kind of reward model registers itself once with [`register_reward_kind`] and is then loadable everywhere
(`trl-icrm grpo --reward`, `trl-icrm bon --reward_model_name_or_path`, the experiments).

Example:

```python
from trl_icrm import load_reward

reward = load_reward("outputs/math-icrm", penalty="lcb")  # an ICRMReward: the kind is read from the saved config
verifier = load_reward("verifier")                           # math-verify correctness, no model
```
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RewardKind:
    """How to recognize and load one kind of saved reward model.

    Attributes:
        name: The kind's name (`"icrm"`, `"bt"`, ...).
        detect: Whether a saved model's transformers config is of this kind.
        load: `load(model_name_or_path, **kwargs)` -> the reward model.
        description: One line for error messages and `--help`.
        detect_path: Optionally, whether a saved model's folder is of this kind (e.g. a file next to the model);
            checked before every config-based `detect`.
    """

    name: str
    detect: Callable[[Any], bool]
    load: Callable[..., Any]
    description: str = ""
    detect_path: Callable[[str], bool] | None = None


REWARD_KINDS: dict[str, RewardKind] = {}
"""Registered kinds of saved reward models, in detection order."""

NAMED_REWARDS = ("verifier",)
"""Rewards loaded by name, without a model."""


def register_reward_kind(kind: RewardKind, first: bool = False) -> None:
    """Register (or replace) a kind of saved reward model; `first` puts its detection before the others'."""
    others = {name: value for name, value in REWARD_KINDS.items() if name != kind.name}
    REWARD_KINDS.clear()
    REWARD_KINDS.update({kind.name: kind, **others} if first else {**others, kind.name: kind})


def _load_icrm(path: str | os.PathLike, **kwargs: Any):
    from .icrm import ICRMReward

    return ICRMReward(path, **kwargs)


def _load_vrm(path: str | os.PathLike, **kwargs: Any):
    from .vrm import VRMReward

    return VRMReward(path, **kwargs)


def _load_classifier(path: str | os.PathLike, **kwargs: Any):
    from .classifier import SequenceClassifierReward

    return SequenceClassifierReward(path, **kwargs)


def _load_laplace(path: str | os.PathLike, **kwargs: Any):
    from .laplace import LaplaceReward

    return LaplaceReward(path, **kwargs)


def _load_head_ensemble(path: str | os.PathLike, **kwargs: Any):
    from .head_ensemble import HeadEnsembleReward

    return HeadEnsembleReward(path, **kwargs)


def _load_mc_dropout(path: str | os.PathLike, **kwargs: Any):
    from .mc_dropout import MCDropoutReward

    return MCDropoutReward(path, **kwargs)


def _load_lora_ensemble(path: str | os.PathLike, **kwargs: Any):
    from .lora_ensemble import LoRAEnsembleReward

    return LoRAEnsembleReward(path, **kwargs)


def _is_lora_ensemble(path: str) -> bool:
    from ..uncertainty.lora_ensemble import is_lora_ensemble_folder

    return is_lora_ensemble_folder(path)


def _is_head_ensemble(path: str) -> bool:
    from ..uncertainty.heads import is_head_ensemble_folder

    return is_head_ensemble_folder(path)


def _has_laplace_posterior(path: str) -> bool:
    return any(os.path.isfile(os.path.join(path, f"laplace_{s}.safetensors")) for s in ("lora", "last_layer"))


register_reward_kind(
    RewardKind("icrm", lambda config: getattr(config, "icrm", None) is not None, _load_icrm, "ICRM reward model")
)
register_reward_kind(
    RewardKind("vrm", lambda config: getattr(config, "vrm", None) is not None, _load_vrm, "VRM reward model")
)
register_reward_kind(
    RewardKind(
        "bt",
        lambda config: getattr(config, "num_labels", None) == 1,
        _load_classifier,
        "Bradley-Terry sequence classifier (trl.RewardTrainer)",
    )
)
register_reward_kind(
    RewardKind(
        "laplace",
        lambda config: False,
        _load_laplace,
        "BT reward model with a Laplace posterior next to it (trl-icrm laplace)",
        detect_path=_has_laplace_posterior,
    ),
    first=True,
)
register_reward_kind(
    RewardKind(
        "head_ensemble",
        lambda config: False,
        _load_head_ensemble,
        "M reward heads on one frozen backbone (trl-icrm train --method head_ensemble)",
        detect_path=_is_head_ensemble,
    ),
    first=True,
)
register_reward_kind(
    RewardKind(
        "lora_ensemble",
        lambda config: False,
        _load_lora_ensemble,
        "M BT LoRA adapters on one base model (trl-icrm train --method lora_ensemble)",
        detect_path=_is_lora_ensemble,
    ),
    first=True,
)
register_reward_kind(
    RewardKind(
        "mc_dropout",
        lambda config: False,
        _load_mc_dropout,
        "MC dropout on a BT reward model (named explicitly: a BT folder reads as 'bt')",
    )
)


def reward_model_kind(model_name_or_path: str | os.PathLike, trust_remote_code: bool = False) -> str:
    """The registered kind of a saved reward model (folder, PEFT adapter folder or hub id): first from the files in
    its folder (a Laplace posterior next to a BT model), then from its config."""
    from ..models import read_model_config
    from ..utils.default_model import resolve_model_name_or_path

    path = resolve_model_name_or_path(model_name_or_path)
    for kind in REWARD_KINDS.values():
        if kind.detect_path is not None and os.path.isdir(path) and kind.detect_path(path):
            return kind.name
    config = read_model_config(model_name_or_path, trust_remote_code=trust_remote_code)
    for kind in REWARD_KINDS.values():
        if kind.detect(config):
            return kind.name
    known = ", ".join(f"{name} ({kind.description})" for name, kind in REWARD_KINDS.items())
    raise ValueError(
        f"{model_name_or_path} is none of the known kinds of reward model: {known}. Say which it is with `kind=` "
        "(`--reward`)."
    )


def load_reward(name_or_path: str | os.PathLike, kind: str = "auto", **kwargs: Any):
    """The reward function of a saved reward model, or of a named reward (`"verifier"`).

    Args:
        name_or_path: A reward model folder, PEFT adapter folder or hub id; or `"verifier"` (math-verify).
        kind: A registered kind (`"icrm"`, `"vrm"`, `"bt"`, ...) or `"auto"` ([`reward_model_kind`]).
        **kwargs: Passed to the reward model (e.g. `penalty`, `name`, `fixed_demonstrations` for ICRM).
    """
    if str(name_or_path) in NAMED_REWARDS or kind == "verifier":
        from .math_verify import MathVerifyReward

        return MathVerifyReward(**kwargs)
    if kind == "auto":
        kind = reward_model_kind(name_or_path, trust_remote_code=kwargs.get("trust_remote_code", False))
    if kind not in REWARD_KINDS:
        raise ValueError(f"Unknown reward kind {kind!r}; choose 'auto', one of {list(REWARD_KINDS)} or 'verifier'.")
    return REWARD_KINDS[kind].load(name_or_path, **kwargs)


def build_reward(kind: str, model_name_or_path: str | None = None, **kwargs: Any):
    """A reward by kind (`"icrm"`, `"vrm"`, `"bt"`, `"verifier"`) and model; the same as [`load_reward`] with `kind=`."""
    if kind != "verifier" and model_name_or_path is None:
        raise ValueError(f"The {kind!r} reward needs a reward model (`model_name_or_path`).")
    return load_reward(model_name_or_path or kind, kind=kind, **kwargs)


__all__ = [
    "NAMED_REWARDS",
    "REWARD_KINDS",
    "RewardKind",
    "build_reward",
    "load_reward",
    "register_reward_kind",
    "reward_model_kind",
]

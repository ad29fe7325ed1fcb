# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Loading what the reward server serves: the reward model (any registered kind, or an ensemble of several) and its
demonstration bank.

Example:

```python
from trl_icrm.serving.loading import load_serving_reward, read_demonstration_bank

reward = load_serving_reward(["outputs/math-icrm"], penalty="lcb")          # kind read from the saved config
ensemble = load_serving_reward(["outputs/icrm-a", "outputs/icrm-b"])          # an EnsembleReward
bank = read_demonstration_bank("bank.json")                                  # {key: [{prompt, chosen, rejected}]}
```
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .protocol import DemonstrationPolicy, RequestError, bank_from_json


logger = logging.getLogger(__name__)

DEMONSTRATIONS_COLUMN = "demonstrations"
"""The column a served ICRM model reads each completion's demonstrations from."""


def _kind_kwargs(
    kind: str,
    name: str,
    allow_zero_shot: bool,
    batch_size: int,
    max_length: int | None,
    trust_remote_code: bool,
    prefix_cache_bytes: int | None = None,
) -> dict[str, Any]:
    """Keyword arguments of the registered loader of `kind`: ICRM, VRM and BT take these; other kinds get none."""
    if kind == "icrm":
        cache = {} if prefix_cache_bytes is None else {"prefix_cache_bytes": prefix_cache_bytes}
        return {
            **cache,
            "name": name,
            "demonstrations_column": DEMONSTRATIONS_COLUMN,
            "allow_zero_shot": allow_zero_shot,
            "batch_size": batch_size,
            "max_length": max_length,
            "trust_remote_code": trust_remote_code,
        }
    if kind in ("bt", "vrm"):
        return {"name": name, "batch_size": batch_size, "trust_remote_code": trust_remote_code}
    return {}


def load_serving_reward(
    paths: list[str] | str,
    kind: str = "auto",
    *,
    penalty: str | None = None,
    penalty_coef: float = 1.0,
    ensemble_method: str = "mean",
    ensemble_coef: float = 1.0,
    allow_zero_shot: bool = False,
    batch_size: int = 16,
    max_length: int | None = None,
    device: str | None = None,
    trust_remote_code: bool = False,
    prefix_cache_bytes: int | None = None,
):
    """The reward model the server scores with: one saved reward model loaded through `trl_icrm.load_reward` (its kind
    read from its config with `kind="auto"`), or an `EnsembleReward` of several. The server's reward is its posterior
    under `penalty` / `penalty_coef` (`None`: the model's point reward, e.g. ICRM's logit r).

    ICRM models read each completion's demonstrations from the `demonstrations` column (per request); with
    `allow_zero_shot` a completion without any is scored zero-shot. `prefix_cache_bytes` bounds the encoded
    demonstration sets an ICRM model keeps across requests (`None`: its default, `0`: none kept).
    """
    from ..rewards import EnsembleReward, RewardModel, load_reward, reward_model_kind

    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not paths:
        raise ValueError("Give one or more reward models to serve.")
    given = {"penalty": penalty, "penalty_coef": penalty_coef}  # to the one model, or to the ensemble of several
    members = []
    for path in paths:
        path_kind = reward_model_kind(path, trust_remote_code) if kind == "auto" else kind
        if path_kind == "verifier":
            raise ValueError("The math-verify reward has no model to serve; serve a reward model (ICRM, BT, ...).")
        name = Path(str(path).rstrip("/")).name or str(path)
        kwargs = _kind_kwargs(
            path_kind, name, allow_zero_shot, batch_size, max_length, trust_remote_code, prefix_cache_bytes
        )
        member = load_reward(path, kind=path_kind, **kwargs, **(given if len(paths) == 1 else {}))
        if not isinstance(member, RewardModel):
            raise ValueError(f"{path} ({path_kind}) is not a trl-icrm RewardModel; it cannot be served.")
        members.append(member)
    if device is not None:
        for member in members:
            move_to_device(member, device)
    return members[0] if len(members) == 1 else EnsembleReward(members, ensemble_method, ensemble_coef, **given)


POSITION_FIELDS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")
"""Config fields that bound how many tokens a model reads (the first one a config has counts, with the others)."""


def model_token_limit(model: Any) -> int | None:
    """The most tokens `model` can read: the smallest positive `max_position_embeddings`-like field of its (text)
    config; `None` if it has none."""
    from ..models import unwrap_peft

    config = unwrap_peft(model).config
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    limits = [getattr(config, name, None) for name in POSITION_FIELDS]
    limits = [limit for limit in limits if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0]
    return min(limits) if limits else None


@dataclass
class TokenBound:
    """The token bound of every served model, checked on each request before it reaches the scoring thread.

    Each member counts the tokens of a completion's query (prompt + completion, as it renders them) with its own
    copy of the tokenizer (so the check never shares a tokenizer with the scoring thread), against the smallest of
    its model's position limit, `--max_length` and the length it recorded at training (ICRM). Demonstrations do not
    count: an ICRM model drops whole demonstrations to fit its bound."""

    members: list[tuple[Any, int, str]] = field(default_factory=list)  # (renderer, limit, where the limit comes from)

    def check(self, items: Sequence[Any], where: str) -> None:
        """A [`RequestError`] (422) naming the first item whose query is over a member's bound."""
        for i, item in enumerate(items):
            for renderer, limit, source in self.members:
                try:
                    count = len(renderer.encode_query(item.prompt, item.completion))
                except (TypeError, ValueError) as error:
                    raise RequestError(f"{where}[{i}]", str(error)) from None
                if count > limit:
                    raise RequestError(
                        f"{where}[{i}]",
                        f"{count} tokens (prompt and completion), over the limit of {limit} ({source}).",
                    )


def token_bound(reward: Any, max_length: int | None = None) -> TokenBound:
    """The [`TokenBound`] of `reward` (each member of an ensemble) under `--max_length`."""
    from ..demonstrations import DemonstrationRenderer

    members = []
    for member in getattr(reward, "members", None) or [reward]:
        tokenizer, model = getattr(member, "tokenizer", None), getattr(member, "model", None)
        if tokenizer is None or model is None:
            continue
        limits = [(model_token_limit(model), "the model's max_position_embeddings")]
        limits.append((max_length, "--max_length"))
        if max_length is None:
            limits.append((getattr(member, "max_length", None), "the model's max_length"))
        limits = [(limit, source) for limit, source in limits if limit]
        if limits:
            limit, source = min(limits, key=lambda pair: pair[0])
            members.append((DemonstrationRenderer(copy.deepcopy(tokenizer)), limit, f"{source} of {member.__name__}"))
    return TokenBound(members)


def freeze_for_serving(reward: Any) -> None:
    """Mark the model(s) of a served reward as frozen: the server only scores, so a reward that keeps encoded
    demonstrations across calls fingerprints its weights once, not on every request (a request of one completion
    would pay for reading every weight tensor)."""
    for member in getattr(reward, "members", None) or [reward]:
        scorer = getattr(member, "scorer", None)
        if hasattr(scorer, "frozen"):
            scorer.frozen = True


def move_to_device(reward: Any, device: str) -> None:
    """Move the model(s) of a reward model (or of every member of an ensemble) to `device`."""
    for member in getattr(reward, "members", None) or [reward]:
        if callable(getattr(member, "to", None)):  # rewards whose state is more than `.model` (Laplace posteriors)
            member.to(device)
            continue
        model = getattr(member, "model", None)
        if model is not None and hasattr(model, "to"):
            model.to(device)


def resolve_device(device: str) -> str | None:
    """`"auto"`: CUDA when available, else the CPU; anything else as given."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def demonstration_policy(reward: Any, bank=None, num_demonstrations: int = 4, seed: int = 0) -> DemonstrationPolicy:
    """How requests' labels steer `reward`: ICRM models (alone or in an ensemble) read per-completion demonstrations
    from the `demonstrations` column; other models read none (their requests' labels are ignored)."""
    from ..rewards import ICRMReward

    icrm = [m for m in getattr(reward, "members", None) or [reward] if isinstance(m, ICRMReward)]
    for member in icrm:
        if member.fixed is not None or member.bank_key_column is not None:
            raise ValueError(
                f"{member!r} uses fixed or bank demonstrations; the server needs an ICRMReward that reads the "
                f"{DEMONSTRATIONS_COLUMN!r} column (give the bank to the server instead)."
            )
        if member.demonstrations_column != DEMONSTRATIONS_COLUMN:
            raise ValueError(f"{member!r} must read its demonstrations from the {DEMONSTRATIONS_COLUMN!r} column.")
    return DemonstrationPolicy(
        bank=dict(bank or {}),
        num_demonstrations=num_demonstrations,
        seed=seed,
        used=bool(icrm),
        required=any(not member.allow_zero_shot for member in icrm),
    )


def read_demonstration_bank(path: str | os.PathLike, key_field: str = "group") -> dict[str, list[dict[str, Any]]]:
    """A demonstration bank from a file: a JSON object `{key: [{prompt, chosen, rejected}, ...]}`, or preference rows
    `{prompt, chosen, rejected, <key_field>, ...}` (a JSON list or JSON lines) grouped by `key_field`; or from a
    folder of preference pairs saved with `save_to_disk` (its train split, such as `trl-icrm build-hh-objectives`
    writes), grouped the same way."""
    if Path(path).is_dir():
        from ..data.loading import load_split

        bank = bank_from_json(load_split(path).to_list(), key_field, where=str(path))
        if not bank:
            raise ValueError(f"{path} holds no demonstrations.")
        return bank
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as error:
            raise ValueError(f"{path} is neither JSON nor JSON lines ({error}).") from None
    bank = bank_from_json(data, key_field, where=str(path))
    if not bank:
        raise ValueError(f"{path} holds no demonstrations.")
    return bank


__all__ = [
    "DEMONSTRATIONS_COLUMN",
    "TokenBound",
    "demonstration_policy",
    "freeze_for_serving",
    "load_serving_reward",
    "model_token_limit",
    "move_to_device",
    "read_demonstration_bank",
    "resolve_device",
    "token_bound",
]

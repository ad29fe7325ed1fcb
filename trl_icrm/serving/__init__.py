# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Serving a reward model over HTTP, for RLHF frameworks that call a remote reward model (TRL, OpenRLHF, verl).

- `config`: [`ServingConfig`], batching and request limits;
- `protocol`: the request and response formats (OpenRLHF's `/get_reward`, the raw `/score`), parsed and validated
  without I/O;
- `batching`: [`BatchScorer`], concurrent requests batched onto one scoring worker thread;
- `loading`: the served reward model (any registered kind, or an ensemble) and the demonstration bank;
- `app`: the FastAPI app ([`create_app`]) and uvicorn ([`run_server`]);
- `clients`: the client side (standard library only): [`RewardClient`], OpenRLHF's `reward_func` and verl's
  `compute_score`; `async_clients`: verl's asynchronous `compute_score`, its concurrent calls micro-batched;
- `remote`: [`RemoteReward`], a TRL reward function (`GRPOTrainer`, `RLOOTrainer`) answered by the server.

`trl-icrm serve` runs it; `docs/serving.md` shows the TRL, OpenRLHF and verl set-ups. Names are imported lazily
(FastAPI and torch only when needed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..utils.lazy import lazy_attributes


_EXPORTS = {
    "trl_icrm.serving.app": ["create_app", "run_server"],
    "trl_icrm.serving.batching": ["BatchScorer", "QueueFullError", "ShuttingDownError"],
    "trl_icrm.serving.clients": ["RewardClient"],
    "trl_icrm.serving.config": ["ServingConfig"],
    "trl_icrm.serving.loading": ["load_serving_reward", "read_demonstration_bank"],
    "trl_icrm.serving.protocol": ["RequestError", "ScoreItem", "parse_get_reward", "parse_score"],
    "trl_icrm.serving.remote": ["RemoteReward"],
}

__all__ = [
    "BatchScorer",
    "QueueFullError",
    "RemoteReward",
    "RequestError",
    "RewardClient",
    "ScoreItem",
    "ServingConfig",
    "ShuttingDownError",
    "create_app",
    "load_serving_reward",
    "parse_get_reward",
    "parse_score",
    "read_demonstration_bank",
    "run_server",
]


__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, globals())


if TYPE_CHECKING:
    from .app import create_app, run_server
    from .batching import BatchScorer, QueueFullError, ShuttingDownError
    from .clients import RewardClient
    from .config import ServingConfig
    from .loading import load_serving_reward, read_demonstration_bank
    from .protocol import RequestError, ScoreItem, parse_get_reward, parse_score
    from .remote import RemoteReward

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""[`ServingConfig`]: how the reward server batches requests and what it accepts (pure settings, no I/O).

Every field is also a flag of `trl-icrm serve` (`--max_batch_size`, `--max_wait_ms`, ...).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ServingConfig:
    """Batching, queueing and request limits of the reward server.

    Batching: requests that arrive within `max_wait_ms` of the oldest waiting one are scored together, up to
    `max_batch_size` completions, in one call of the reward model (which encodes each distinct demonstration prefix
    once). At most `max_queue` requests wait for the scoring worker; beyond that a request is answered 503 at once.

    Limits (each a 4xx naming the field): the body size, the items (completions) per request, the characters of any
    one text (prompt, completion, query, a demonstration's side) and the demonstrations per completion; the tokens of
    a query are bounded by the served model (`trl-icrm serve --max_length`).

    Connections: a body must arrive within `read_timeout_s` of its headers (408), at most `max_connections`
    connections are served at once and at most `max_pending_body_bytes` are held in bodies still arriving (503).

    Demonstration bank: a label that is a bank key draws `num_demonstrations` pairs of that key, seeded by `seed`, the
    key and the prompt: the same draw as `ICRMReward(demonstration_bank=..., num_demonstrations=..., seed=...)`.
    """

    max_batch_size: int = field(
        default=64,
        metadata={
            "help": "Most completions scored together in one reward-model call (a larger request is scored alone)."
        },
    )
    max_wait_ms: float = field(
        default=5.0,
        metadata={
            "help": "How long the oldest waiting request may wait for others to share its batch (milliseconds)."
        },
    )
    max_queue: int = field(
        default=256,
        metadata={"help": "Most requests waiting for the scoring worker; beyond it a request gets 503 (retry later)."},
    )
    max_body_bytes: int = field(
        default=8 * 1024 * 1024, metadata={"help": "Largest request body in bytes (larger: 413)."}
    )
    max_items_per_request: int = field(
        default=1024, metadata={"help": "Most completions (queries or items) in one request (more: 422)."}
    )
    max_text_chars: int = field(
        default=65536,
        metadata={"help": "Most characters of one text: prompt, completion, query or a demonstration's side (422)."},
    )
    max_demonstrations: int = field(
        default=64, metadata={"help": "Most demonstrations given with one completion (more: 422)."}
    )
    num_demonstrations: int = field(
        default=4, metadata={"help": "Demonstrations drawn from the bank for a label that is a bank key."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of the bank draws (with the key and the prompt)."})
    read_timeout_s: float = field(
        default=30.0,
        metadata={"help": "Seconds a client has to send a request's whole body once its headers arrived (408)."},
    )
    max_connections: int = field(
        default=1024,
        metadata={"help": "Most open connections (and requests in progress); beyond it a request gets 503."},
    )
    max_pending_body_bytes: int = field(
        default=256 * 1024 * 1024,
        metadata={"help": "Most bytes held in request bodies still arriving, all requests together (beyond: 503)."},
    )

    def __post_init__(self):
        positive = (
            "max_batch_size",
            "max_queue",
            "max_body_bytes",
            "max_items_per_request",
            "max_text_chars",
            "max_connections",
            "max_pending_body_bytes",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.read_timeout_s <= 0:
            raise ValueError(f"read_timeout_s must be > 0, got {self.read_timeout_s}.")
        for name in ("max_wait_ms", "max_demonstrations", "num_demonstrations"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


__all__ = ["ServingConfig"]

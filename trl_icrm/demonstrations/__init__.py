# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""In-context demonstrations: rendering them with a query into one model input, and drawing them (one sampler)."""

from .rendering import (
    DemonstrationRenderer,
    DemonstrationTemplate,
    EncodedPair,
    EncodedQuery,
    MalformedDemonstrationError,
    QueryTooLongError,
    is_conversational_value,
    validate_demonstration,
    validate_demonstrations,
)
from .sampling import (
    DEMONSTRATION_KEYS,
    DemonstrationBank,
    as_demonstration,
    draw_k,
    draw_mixed,
    sample_without_replacement,
    seeded_rng,
    stable_seed,
)


__all__ = [
    "DEMONSTRATION_KEYS",
    "DemonstrationBank",
    "DemonstrationRenderer",
    "DemonstrationTemplate",
    "EncodedPair",
    "EncodedQuery",
    "MalformedDemonstrationError",
    "QueryTooLongError",
    "as_demonstration",
    "draw_k",
    "draw_mixed",
    "is_conversational_value",
    "sample_without_replacement",
    "seeded_rng",
    "stable_seed",
    "validate_demonstration",
    "validate_demonstrations",
]

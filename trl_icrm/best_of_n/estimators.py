# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The math of best-of-N over-optimization curves, apart from any model or I/O.

- [`kl_bon`]`(n) = log n - (n - 1) / n`, the KL between the best-of-n policy and the reference policy;
- the exact order-statistics estimator of the expected best-of-n score for every n <= N from one set of N samples
  ([`best_of_n_weights`], [`expected_best_of_n`]; Gao et al. 2022, "Scaling Laws for Reward Model Overoptimization"),
  with bootstrap confidence intervals over prompts ([`bootstrap_ci`]);
- the curves built from them ([`best_of_n_curve`]).

Example:

```python
>>> from trl_icrm.best_of_n.estimators import expected_best_of_n, kl_bon
>>> float(kl_bon(1)), round(float(kl_bon(4)), 4)
(0.0, 0.6363)
```
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


def check_n(n: float) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, float, np.integer, np.floating)):
        raise ValueError(f"n must be a number >= 1, got {n!r}.")
    if not n >= 1:  # also catches NaN
        raise ValueError(f"n must be >= 1 (best-of-n keeps the best of n >= 1 samples), got {n}.")


def kl_bon(n: float | Sequence[float] | np.ndarray) -> float | np.ndarray:
    """KL divergence between the best-of-n policy and the reference policy: `log n - (n - 1) / n`.

    It is 0 for n = 1 and increases with n (like log n - 1). The formula (Stiennon et al. 2020) is exact when two
    samples are never equal; in general it is an upper bound of the true KL (Beirami et al. 2024).

    Args:
        n: Number of samples (>= 1); a scalar or an array of them.

    Returns:
        A float for a scalar `n`, else a float array of the same shape.

    Example:

    ```python
    >>> from trl_icrm.best_of_n import kl_bon
    >>> kl_bon(1), round(kl_bon(2), 4)
    (0.0, 0.1931)
    ```
    """
    if np.ndim(n) == 0:
        check_n(n)
        n = float(n)
        return math.log(n) - (n - 1.0) / n
    values = np.asarray(n, dtype=float)
    if values.size and not np.all(values >= 1):
        raise ValueError(f"every n must be >= 1, got {values[~(values >= 1)].tolist()}.")
    return np.log(values) - (values - 1.0) / values


def _rank_weights(num_samples: int, n: int) -> np.ndarray:
    """`C(i - 1, n - 1) / C(N, n)` for i = 1..N: probability that the i-th smallest of N is the max of an n-subset."""
    total = math.comb(num_samples, n)
    # Exact integers; Python's int / int is correctly rounded, so the weights are exact to float precision for any N.
    return np.array([math.comb(i - 1, n - 1) / total for i in range(1, num_samples + 1)], dtype=float)


def _as_scores(scores: Any, name: str = "scores") -> np.ndarray:
    try:
        array = np.asarray(scores, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numbers (None/NaN allowed), got {scores!r}.") from error
    if array.ndim == 0 or array.shape[-1] == 0:
        raise ValueError(f"{name} must have at least one sample on its last axis, got shape {array.shape}.")
    return array


def best_of_n_weights(scores: Sequence[float] | np.ndarray, n: int) -> np.ndarray:
    """Probability that each of N samples is the one best-of-n keeps, for n drawn uniformly without replacement.

    Sort the N samples by score; the i-th smallest is the maximum of a uniformly random n-subset with probability
    `C(i - 1, n - 1) / C(N, n)` (Gao et al. 2022). The result is exact, not sampled.

    Ties: when several samples share a score, best-of-n picks one of the tied maxima uniformly at random. Averaging the
    rank weights within each group of tied samples gives exactly the probabilities under that rule (a uniformly random
    order of the tied samples, then the rank rule). NaN scores (unscored samples) count as `-inf`: they tie with each
    other and rank below every scored sample.

    Args:
        scores: Scores used for selection, shape `(..., N)`; leading axes (e.g. prompts) are independent.
        n: Subset size, 1 <= n <= N.

    Returns:
        Weights of shape `(..., N)` in the order of `scores`, each row summing to 1.

    Example:

    ```python
    >>> from trl_icrm.best_of_n import best_of_n_weights
    >>> best_of_n_weights([0.3, 0.1, 0.2], 2).tolist()  # best of 2 from 3: the top sample in 2 of the 3 pairs
    [0.6666666666666666, 0.0, 0.3333333333333333]
    ```
    """
    scores = _as_scores(scores)
    num_samples = scores.shape[-1]
    check_n(n)
    if int(n) != n:
        raise ValueError(f"n must be an integer, got {n}.")
    n = int(n)
    if n > num_samples:
        raise ValueError(f"Best-of-{n} needs at least {n} samples per prompt, got N = {num_samples}.")
    flat = np.where(np.isnan(scores), -np.inf, scores).reshape(-1, num_samples)
    rows = flat.shape[0]
    order = np.argsort(flat, axis=-1, kind="stable")
    ranked = np.take_along_axis(flat, order, axis=-1)
    rank_weights = np.broadcast_to(_rank_weights(num_samples, n), (rows, num_samples))
    # Groups of equal sorted scores (-inf == -inf, so unscored samples form one group); average weights per group.
    starts = np.ones_like(ranked, dtype=bool)
    starts[:, 1:] = ranked[:, 1:] != ranked[:, :-1]
    groups = np.cumsum(starts, axis=-1) - 1 + np.arange(rows)[:, None] * num_samples
    sums = np.bincount(groups.ravel(), weights=rank_weights.ravel(), minlength=rows * num_samples)
    counts = np.bincount(groups.ravel(), minlength=rows * num_samples)
    averaged = (sums[groups] / counts[groups]).reshape(rows, num_samples)
    weights = np.empty_like(averaged)
    np.put_along_axis(weights, order, averaged, axis=-1)
    return weights.reshape(scores.shape)


def expected_best_of_n(
    scores: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray | None = None,
    ns: Sequence[int] | None = None,
) -> np.ndarray:
    """Expected value of the response best-of-n selects, for every n, from one set of N samples (exact estimator).

    For each n, `sum_i best_of_n_weights(scores, n)[i] * values[i]`: the average over all C(N, n) subsets of the value
    of each subset's best-scored sample. It is the unbiased estimate of the best-of-n expectation from N i.i.d.
    samples (Gao et al. 2022), computed exactly rather than by random sub-sampling. See [`best_of_n_weights`] for ties.

    Args:
        scores: Selection scores, shape `(..., N)` (e.g. `(num_prompts, N)`); NaN ranks lowest.
        values: What to average for the selected sample (e.g. the gold reward), same shape; defaults to `scores`.
            A NaN value with a non-zero weight makes the result NaN (drop such prompts first, as [`best_of_n_curve`]
            does).
        ns: Subset sizes; defaults to every n in 1..N.

    Returns:
        Array of shape `(len(ns), ...)`.

    Example:

    ```python
    >>> from trl_icrm.best_of_n import expected_best_of_n
    >>> expected_best_of_n([1.0, 3.0, 2.0], ns=[1, 2, 3]).tolist()  # mean, expected max of a pair, max
    [2.0, 2.6666666666666665, 3.0]
    ```
    """
    scores = _as_scores(scores)
    values = scores if values is None else _as_scores(values, "values")
    if values.shape != scores.shape:
        raise ValueError(f"values must have the shape of scores {scores.shape}, got {values.shape}.")
    ns = list(range(1, scores.shape[-1] + 1)) if ns is None else list(ns)
    if not ns:
        raise ValueError("ns must name at least one n.")
    out = []
    for n in ns:
        weights = best_of_n_weights(scores, n)
        # Zero-weight samples contribute nothing, even when their value is NaN or infinite.
        with np.errstate(invalid="ignore"):
            out.append(np.where(weights > 0, weights * values, 0.0).sum(axis=-1))
    return np.stack(out)


def bootstrap_ci(
    samples: Sequence[float] | np.ndarray,
    num_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap confidence interval of the mean over the first axis (e.g. prompts).

    Args:
        samples: Shape `(num_items, ...)`; the mean is over axis 0, computed independently for the trailing axes.
        num_resamples: Bootstrap resamples of the items (with replacement).
        confidence: Two-sided confidence level in (0, 1).
        seed: Seed of the resampling (`None`: not seeded).

    Returns:
        `(low, high)`, each of shape `samples.shape[1:]`.

    Example:

    ```python
    >>> from trl_icrm.best_of_n import bootstrap_ci
    >>> low, high = bootstrap_ci([0.0, 1.0, 1.0, 0.0, 1.0])
    >>> bool(low < 0.6 < high)
    True
    ```
    """
    samples = np.asarray(samples, dtype=float)
    if samples.ndim == 0 or samples.shape[0] == 0:
        raise ValueError("bootstrap_ci needs at least one item.")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}.")
    if num_resamples < 1:
        raise ValueError(f"num_resamples must be >= 1, got {num_resamples}.")
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, samples.shape[0], size=(num_resamples, samples.shape[0]))
    means = samples[indices].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha], axis=0)
    return low, high


@dataclass
class BestOfNCurve:
    """Expected scores of the best-of-n response for n = 1..N, with bootstrap confidence intervals over prompts.

    Attributes:
        name: Label of the curve (e.g. the reward model and penalty that select).
        ns: The n values.
        kl_bon: `kl_bon(n)` for each n.
        metrics: `{metric: {"mean": [...], "ci_low": [...], "ci_high": [...]}}`, one value per n (e.g. `proxy`,
            `gold`).
        num_prompts: Prompts the curve averages over.
        num_prompts_skipped: Prompts left out because a metric was missing (NaN) for one of their samples.
        num_samples: N, the samples per prompt.
        confidence: Level of the confidence intervals.
    """

    name: str
    ns: list[int]
    kl_bon: list[float]
    metrics: dict[str, dict[str, list[float]]]
    num_prompts: int
    num_prompts_skipped: int
    num_samples: int
    confidence: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BestOfNCurve:
        return cls(**data)


def best_of_n_curve(
    selection_scores: Sequence[Sequence[float]] | np.ndarray,
    metrics: Mapping[str, Sequence[Sequence[float]] | np.ndarray],
    ns: Sequence[int] | None = None,
    name: str = "best_of_n",
    num_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> BestOfNCurve:
    """Over-optimization curve from one sample set: expected metrics of the best-of-n response for each n.

    Args:
        selection_scores: Scores that rank the samples, shape `(num_prompts, N)`; NaN ranks lowest.
        metrics: Values to report for the selected sample, each of shape `(num_prompts, N)`, e.g.
            `{"proxy": proxy_scores, "gold": gold_scores}`. A prompt with a NaN in any metric is skipped (counted in
            `num_prompts_skipped`), so every point of the curve averages over the same prompts.
        ns: The n values (default: 1..N). Each must satisfy 1 <= n <= N.
        name: Label of the curve.
        num_bootstrap: Bootstrap resamples of the prompts for the confidence intervals.
        confidence: Level of the confidence intervals.
        seed: Seed of the bootstrap.

    Example:

    ```python
    >>> import numpy as np
    >>> from trl_icrm.best_of_n import best_of_n_curve
    >>> proxy = np.random.default_rng(0).normal(size=(16, 8))
    >>> curve = best_of_n_curve(proxy, {"proxy": proxy, "gold": -proxy**2})
    >>> len(curve.ns), curve.kl_bon[0], curve.metrics["proxy"]["mean"][-1] > curve.metrics["proxy"]["mean"][0]
    (8, 0.0, True)
    ```
    """
    scores = _as_scores(selection_scores, "selection_scores")
    if scores.ndim != 2:
        raise ValueError(f"selection_scores must have shape (num_prompts, N), got {scores.shape}.")
    if not metrics:
        raise ValueError("metrics must name at least one metric, e.g. {'proxy': ..., 'gold': ...}.")
    arrays = {key: _as_scores(value, f"metrics[{key!r}]") for key, value in metrics.items()}
    for key, value in arrays.items():
        if value.shape != scores.shape:
            raise ValueError(
                f"metrics[{key!r}] must have the shape of selection_scores {scores.shape}, got {value.shape}."
            )
    num_samples = scores.shape[1]
    ns = list(range(1, num_samples + 1)) if ns is None else [int(n) for n in ns]
    for n in ns:
        check_n(n)
    if max(ns, default=0) > num_samples:
        raise ValueError(f"Best-of-{max(ns)} needs N >= {max(ns)} samples per prompt, got N = {num_samples}.")
    keep = np.all([~np.isnan(value).any(axis=1) for value in arrays.values()], axis=0)
    if not keep.any():
        raise ValueError("Every prompt has a missing (None/NaN) metric value; nothing to average.")
    results = {}
    for key, value in arrays.items():
        per_prompt = expected_best_of_n(scores[keep], value[keep], ns).T  # (num_prompts, len(ns))
        low, high = bootstrap_ci(per_prompt, num_bootstrap, confidence, seed)
        results[key] = {
            "mean": per_prompt.mean(axis=0).tolist(),
            "ci_low": np.asarray(low).tolist(),
            "ci_high": np.asarray(high).tolist(),
        }
    return BestOfNCurve(
        name=name,
        ns=ns,
        kl_bon=[float(kl_bon(n)) for n in ns],
        metrics=results,
        num_prompts=int(keep.sum()),
        num_prompts_skipped=int((~keep).sum()),
        num_samples=num_samples,
        confidence=confidence,
    )

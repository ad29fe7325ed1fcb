# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Best-of-n curves from one scored sample set (pure computation): every selection rule of a proxy or an ensemble
([`curves_from_scores`], [`selection_rules`]) and named selection methods over proxy members ([`method_curves`])."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ...best_of_n import ENSEMBLE_METHODS, PENALTIES, BestOfNCurve, best_of_n_curve, combine_rewards


logger = logging.getLogger(__name__)

DEFAULT_PENALTIES = (("lcb", 1.0), ("var_penalty", 1.0))
DEFAULT_ENSEMBLES = (("mean", 1.0), ("worst_case", 1.0), ("mean_minus_std", 1.0))


def _format_coef(coef: float) -> str:
    return f"{coef:g}"


def curves_from_scores(
    proxy: Mapping[str, np.ndarray],
    gold: np.ndarray,
    proxy_variances: Mapping[str, np.ndarray] | None = None,
    penalties: Sequence[tuple[str, float]] = DEFAULT_PENALTIES,
    ensembles: Sequence[tuple[str, float]] = DEFAULT_ENSEMBLES,
    ns: Sequence[int] | None = None,
    num_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[BestOfNCurve]:
    """Best-of-n curves of every selection rule from one sample set.

    Args:
        proxy: `{member name: scores (num_prompts, N)}`, one or more proxy reward functions (posterior means for
            uncertain ones).
        gold: Gold scores `(num_prompts, N)`; prompts with a missing (NaN) gold or proxy score are skipped.
        proxy_variances: `{member name: variances}` for every member, or `None`; the penalties need them.
        penalties: `(kind, k)` pairs (`"lcb"`, `"var_penalty"`); skipped without variances.
        ensembles: `(method, k)` pairs (`"mean"`, `"worst_case"`, `"mean_minus_std"`); used with 2+ members.
        ns: The n values (default 1..N).
        num_bootstrap: Bootstrap resamples of the prompts.
        confidence: Level of the confidence intervals.
        seed: Seed of the bootstrap.

    Returns:
        One [`~trl_icrm.best_of_n.BestOfNCurve`] per selection rule, with metrics `proxy` (mean proxy score over the
        members) and `gold`. Single proxy: `"<name>"`, `"<name> lcb k=1"`, ... Several: each member, then
        `"ensemble <method>"` and `"ensemble mean <penalty> k=..."`.

    Example:

    ```python
    >>> import numpy as np
    >>> from trl_icrm.experiments.best_of_n import curves_from_scores
    >>> rng = np.random.default_rng(0)
    >>> proxy = rng.normal(size=(16, 8))
    >>> [c.name for c in curves_from_scores({"rm": proxy}, gold=(proxy > 1).astype(float))]
    ['rm']
    ```
    """
    means, variances, gold = _stack_scores(proxy, gold, proxy_variances)
    for kind, _ in penalties:
        if kind not in PENALTIES:
            raise ValueError(f"Unknown penalty {kind!r}; expected one of {PENALTIES}.")
    for method, _ in ensembles:
        if method not in ENSEMBLE_METHODS:
            raise ValueError(f"Unknown ensemble method {method!r}; expected one of {ENSEMBLE_METHODS}.")
    rules = selection_rules(list(proxy), means, variances, penalties, ensembles)
    metrics = {"proxy": combine_rewards(means), "gold": gold}  # mean over members: the same proxy for every curve
    return [
        best_of_n_curve(selection, metrics, ns, name, num_bootstrap, confidence, seed) for name, selection in rules
    ]


def _stack_scores(
    proxy: Mapping[str, np.ndarray], gold: np.ndarray, proxy_variances: Mapping[str, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """`(means (members, prompts, N), variances or None, gold (prompts, N))`, checked."""
    if not proxy:
        raise ValueError("curves_from_scores needs at least one proxy.")
    names = list(proxy)
    means = np.stack([np.asarray(proxy[name], dtype=float) for name in names])
    variances = None
    if proxy_variances:
        missing = [name for name in names if name not in proxy_variances]
        if missing:
            raise ValueError(f"proxy_variances lacks the members {missing}.")
        variances = np.stack([np.asarray(proxy_variances[name], dtype=float) for name in names])
    gold = np.asarray(gold, dtype=float)
    if gold.shape != means.shape[1:]:
        raise ValueError(f"gold must have the shape of the proxy scores {means.shape[1:]}, got {gold.shape}.")
    return means, variances, gold


def selection_rules(
    names: Sequence[str],
    means: np.ndarray,
    variances: np.ndarray | None,
    penalties: Sequence[tuple[str, float]],
    ensembles: Sequence[tuple[str, float]],
) -> list[tuple[str, np.ndarray]]:
    """`(curve name, selection score)` of every rule: one member alone, or each member and the ensemble aggregations;
    then the uncertainty penalties of the (mean) proxy when `variances` are given."""
    rules: list[tuple[str, np.ndarray]] = []
    if len(names) == 1:
        rules.append((names[0], means[0]))
        prefix = names[0]
    else:
        rules += [(name, means[i]) for i, name in enumerate(names)]
        for method, k in ensembles:
            label = f"ensemble {method}" + (f" k={_format_coef(k)}" if method == "mean_minus_std" else "")
            rules.append((label, combine_rewards(means, ensemble=method, ensemble_coef=k)))
        prefix = "ensemble mean"
    if variances is not None:
        rules += [
            (f"{prefix} {kind} k={_format_coef(k)}", combine_rewards(means, variances, kind, k))
            for kind, k in penalties
        ]
    elif penalties:
        logger.info("The proxy reports no uncertainty; the penalty curves %s are skipped.", [p for p, _ in penalties])
    return rules


@dataclass
class SelectionMethod:
    """One best-of-n selection rule over named proxy members: the members' rewards are penalized by their own
    variances (`penalty`, `coef`) and combined (`ensemble`), as [`~trl_icrm.best_of_n.combine_rewards`] does."""

    name: str
    members: list[str]
    penalty: str | None = None
    coef: float = 1.0
    ensemble: str = "mean"


def method_curves(
    proxy: Mapping[str, np.ndarray],
    proxy_variances: Mapping[str, np.ndarray | None],
    gold: np.ndarray,
    methods: Sequence[SelectionMethod],
    ns: Sequence[int] | None = None,
    num_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[BestOfNCurve]:
    """One best-of-n curve per [`SelectionMethod`]: selection by the method's score; metrics `proxy` (the mean of its
    members' unpenalized rewards) and `gold`.

    Example:

    ```python
    >>> import numpy as np
    >>> from trl_icrm.experiments.best_of_n import SelectionMethod, method_curves
    >>> rng = np.random.default_rng(0)
    >>> means, variances = {"a": rng.normal(size=(8, 4))}, {"a": rng.uniform(size=(8, 4))}
    >>> methods = [SelectionMethod("MAP", ["a"]), SelectionMethod("LA std k=1", ["a"], "lcb", 1.0)]
    >>> [c.name for c in method_curves(means, variances, means["a"] > 0, methods, num_bootstrap=10)]
    ['MAP', 'LA std k=1']
    ```
    """
    curves = []
    for method in methods:
        missing = [m for m in method.members if m not in proxy]
        if missing:
            raise ValueError(f"{method.name}: no scores for the members {missing}.")
        means = np.stack([np.asarray(proxy[m], dtype=float) for m in method.members])
        variances = None
        if method.penalty not in (None, "mean"):
            if any(proxy_variances.get(m) is None for m in method.members):
                raise ValueError(f"{method.name}: penalty {method.penalty!r} needs every member's variances.")
            variances = np.stack([np.asarray(proxy_variances[m], dtype=float) for m in method.members])
        selection = combine_rewards(means, variances, method.penalty, method.coef, method.ensemble)
        metrics = {"proxy": means.mean(axis=0), "gold": np.asarray(gold, dtype=float)}
        curves.append(best_of_n_curve(selection, metrics, ns, method.name, num_bootstrap, confidence, seed))
    return curves


__all__ = [
    "DEFAULT_ENSEMBLES",
    "DEFAULT_PENALTIES",
    "SelectionMethod",
    "curves_from_scores",
    "method_curves",
    "selection_rules",
]

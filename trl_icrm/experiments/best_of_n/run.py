# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The best-of-N run, computation only: the prompts, N candidates sampled once per prompt, every candidate scored by
the proxies and the gold reward ([`sample_and_score`]), and the settings of the run ([`BestOfNSettings`]). Files and
plots are [`~trl_icrm.experiments.best_of_n.report`]'s."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ...best_of_n import ENSEMBLE_METHODS, PENALTIES, BestOfNSampler, RewardFunc, score_candidates
from .curves import DEFAULT_ENSEMBLES, DEFAULT_PENALTIES


logger = logging.getLogger(__name__)


@dataclass
class BestOfNSettings:
    """How [`~trl_icrm.experiments.best_of_n.run_best_of_n_experiment`] samples, scores and draws the curves (also the options of `trl-icrm bon`)."""

    num_prompts: int = field(default=64, metadata={"help": "Prompts to use (the first ones of the dataset)."})
    difficulties: list[int] | None = field(
        default=None,
        metadata={"help": "Difficulty levels (arithmetic steps) of the built-in math problems (none: all)."},
    )
    num_samples: int = field(default=32, metadata={"help": "N, candidates per prompt (the curves cover n <= N)."})
    max_new_tokens: int = field(default=128, metadata={"help": "Most tokens per candidate."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (1.0: the policy itself)."})
    seed: int = field(default=0, metadata={"help": "Seed of the problems, the sampling and the bootstrap."})
    generation_batch_size: int = field(default=64, metadata={"help": "Most sequences per generate call."})
    penalties: list[str] = field(
        default_factory=lambda: [f"{kind}:{k:g}" for kind, k in DEFAULT_PENALTIES],
        metadata={
            "help": "Uncertainty penalty curves 'kind[:k]' (lcb, var_penalty), drawn when every proxy reports its "
            "uncertainty; 'none' for no penalty curve."
        },
    )
    ensembles: list[str] = field(
        default_factory=lambda: [f"{method}:{k:g}" for method, k in DEFAULT_ENSEMBLES],
        metadata={
            "help": "Ensemble curves 'method[:k]' (mean, worst_case, mean_minus_std, uncertainty_weighted) with several proxies; 'none' "
            "for no ensemble curve."
        },
    )
    allow_mixed_scales: bool = field(
        default=False, metadata={"help": "Draw ensemble curves over proxies on different scales (e.g. BT and ICRM)."}
    )
    ns: list[int] | None = field(
        default=None, metadata={"help": "The n values of the curves (none: 1..N); checked before any sampling."}
    )
    num_bootstrap: int = field(default=1000, metadata={"help": "Bootstrap resamples of the prompts."})
    confidence: float = field(default=0.95, metadata={"help": "Level of the confidence intervals."})
    progress_bar: bool = field(default=True, metadata={"help": "Show progress bars (sampling, then scoring)."})
    save_samples: bool = field(
        default=True, metadata={"help": "Also write every candidate with its scores to best_of_n_samples.jsonl."}
    )

    def __post_init__(self):
        """Reject out-of-range values when the settings are made (on the command line: when they are parsed), before
        any model is loaded or sampled from."""
        for name in ("num_prompts", "num_samples", "max_new_tokens", "generation_batch_size", "num_bootstrap"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0 (best-of-n samples), got {self.temperature}.")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}.")
        if self.ns is not None and (not self.ns or min(self.ns) < 1):
            raise ValueError(f"Every n must be >= 1, got ns={self.ns}.")
        if self.ns is not None and max(self.ns) > self.num_samples:
            raise ValueError(
                f"Best-of-{max(self.ns)} needs N >= {max(self.ns)} samples per prompt, got N = {self.num_samples}."
            )
        unknown = [kind for kind, _ in parse_pairs(self.penalties, "penalty") if kind not in PENALTIES]
        unknown += [method for method, _ in parse_pairs(self.ensembles, "ensemble") if method not in ENSEMBLE_METHODS]
        if unknown:
            raise ValueError(
                f"Unknown penalties or ensembles {unknown}; penalties are {PENALTIES}, ensembles {ENSEMBLE_METHODS}."
            )


def parse_pairs(
    items: Sequence[str | tuple[str, float]], what: str, default_coef: float = 1.0
) -> list[tuple[str, float]]:
    pairs = []
    for item in items:
        if isinstance(item, str) and item.strip().lower() == "none":
            continue
        if isinstance(item, str):
            kind, _, coef = item.partition(":")
            try:
                pairs.append((kind.strip(), float(coef) if coef else default_coef))
            except ValueError as error:
                raise ValueError(f"{what} {item!r} must look like 'kind' or 'kind:k' with a number k.") from error
        else:
            kind, coef = item
            pairs.append((kind, float(coef)))
    return pairs


@dataclass
class CandidateSet:
    """The prompts of an experiment, their dataset columns (one value per prompt) and the N candidates of each."""

    prompts: list[Any]
    columns: dict[str, list[Any]]
    completions: list[list[Any]]
    completion_ids: list[list[list[int]]]


@dataclass
class CandidateScores:
    """Scores `(num_prompts, N)` of every candidate: each proxy member's (with its variance when the proxies report
    their uncertainty) and the gold reward's, with the time spent in the gold reward."""

    proxy: dict[str, np.ndarray]
    proxy_variances: dict[str, np.ndarray]
    gold: np.ndarray
    gold_seconds: float = 0.0


def check_proxies(
    proxies: Sequence[RewardFunc], ensembles: Sequence[Any] = (), allow_mixed_scales: bool = False
) -> None:
    """At least one proxy, and ensemble curves only over proxies on one scale (a BT score and an ICRM reward are
    not on one scale) unless `allow_mixed_scales` (the settings check their own values: [`BestOfNSettings`])."""
    if not proxies:
        raise ValueError("run_best_of_n_experiment needs at least one proxy reward function.")
    scales = {getattr(p, "__name__", repr(p)): getattr(p, "scale", "score") for p in proxies}
    if ensembles and len(proxies) > 1 and len(set(scales.values())) > 1 and not allow_mixed_scales:
        raise ValueError(
            f"The ensemble curves would combine rewards on different scales {scales}; give proxies of one kind, "
            "--ensembles none, or --allow_mixed_scales to combine them anyway."
        )


def experiment_prompts(
    dataset: Any | None, num_prompts: int, seed: int = 0, difficulties: Sequence[int] | None = None
) -> tuple[list[Any], dict[str, list[Any]]]:
    """`(prompts, columns)`: the first `num_prompts` rows of `dataset` (default: built-in arithmetic word problems of
    the test split), split into the prompts and the other columns."""
    if dataset is None:
        from ...data.math_problems import make_arithmetic_problems

        levels = {} if difficulties is None else {"difficulties": list(difficulties)}
        dataset = make_arithmetic_problems(num_train=0, num_test=num_prompts, seed=seed, split="test", **levels)
    if len(dataset) == 0:
        raise ValueError("The dataset is empty: best-of-n needs at least one prompt.")
    rows = [dataset[i] for i in range(min(num_prompts, len(dataset)))]
    if len(rows) < num_prompts:
        logger.warning("The dataset has %d rows; using all of them instead of %d.", len(rows), num_prompts)
    columns = {key: [row[key] for row in rows] for key in rows[0] if key != "prompt"}
    return [row["prompt"] for row in rows], columns


def sample_candidates(sampler: BestOfNSampler, prompts: list[Any], columns: dict[str, list[Any]]) -> CandidateSet:
    """Step 1: sample the sampler's N candidates for every prompt, once."""
    completions, completion_ids = sampler.generate(prompts)
    return CandidateSet(prompts, columns, completions, completion_ids)


def score_candidate_set(
    candidates: CandidateSet,
    proxies: Sequence[RewardFunc],
    gold: RewardFunc,
    names: Sequence[str],
    with_uncertainty: bool = False,
    generation_batch_size: int = 64,
    progress_bar: bool = True,
) -> CandidateScores:
    """Step 2: score every candidate with each proxy (`names`; their variances too `with_uncertainty`) and with the
    gold reward, a chunk of prompts at a time (about `generation_batch_size` candidates per call)."""
    num_prompts, num_samples = len(candidates.prompts), len(candidates.completions[0])
    scores = CandidateScores(
        proxy={name: np.empty((num_prompts, num_samples)) for name in names},
        proxy_variances={name: np.empty((num_prompts, num_samples)) for name in names} if with_uncertainty else {},
        gold=np.empty((num_prompts, num_samples)),
    )
    step = max(1, generation_batch_size // num_samples)
    with tqdm(total=num_prompts, unit="prompt", desc="Scoring", disable=not progress_bar) as progress:
        for start in range(0, num_prompts, step):
            chunk = slice(start, start + step)
            batch = (candidates.prompts[chunk], candidates.completions[chunk], candidates.completion_ids[chunk])
            batch_columns = {key: value[chunk] for key, value in candidates.columns.items()}
            proxy, variances = score_candidates(
                proxies, *batch, with_uncertainty=with_uncertainty, names=names, **batch_columns
            )
            for name in names:
                scores.proxy[name][chunk] = proxy[name]
                if with_uncertainty:
                    scores.proxy_variances[name][chunk] = variances[name]
            gold_started = time.perf_counter()
            scores.gold[chunk] = score_candidates(gold, *batch, names=["gold"], **batch_columns)[0]["gold"]
            scores.gold_seconds += time.perf_counter() - gold_started
            progress.update(len(candidates.prompts[chunk]))
    return scores


def sample_and_score(
    proxies: Sequence[RewardFunc],
    gold: RewardFunc,
    model: Any,
    processing_class: Any | None,
    dataset: Any | None,
    settings: BestOfNSettings,
    with_uncertainty: bool,
) -> tuple[CandidateSet, CandidateScores, list[float]]:
    """`(candidates, scores, laps)`: N candidates per prompt of `dataset` ([`experiment_prompts`]) sampled once from
    the policy `model`, scored by the proxies (with their variances `with_uncertainty`) and the gold reward; `laps` are
    the `time.perf_counter()` after loading the policy, after sampling and after scoring."""
    prompts, columns = experiment_prompts(dataset, settings.num_prompts, settings.seed, settings.difficulties)
    sampler = BestOfNSampler(
        model,
        proxies,
        processing_class,
        n=settings.num_samples,
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        generation_batch_size=settings.generation_batch_size,
        seed=settings.seed,
        progress_bar=settings.progress_bar,
    )
    laps = [time.perf_counter()]
    candidates = sample_candidates(sampler, prompts, columns)
    laps.append(time.perf_counter())
    batch, progress = settings.generation_batch_size, settings.progress_bar
    scores = score_candidate_set(candidates, proxies, gold, sampler.reward_names, with_uncertainty, batch, progress)
    laps.append(time.perf_counter())
    return candidates, scores, laps


def run_timings(started: float, cpu_started: float, laps: Sequence[float], gold_seconds: float) -> dict[str, float]:
    """Wall-clock seconds of each step (`laps`: after loading, sampling, scoring) and CPU seconds in all."""
    return {
        "load_seconds": laps[0] - started,
        "generation_seconds": laps[1] - laps[0],
        "proxy_scoring_seconds": laps[2] - laps[1] - gold_seconds,
        "gold_scoring_seconds": gold_seconds,
        "total_seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,  # all threads; differs from wall time on a shared CPU
    }


def run_config(model, proxies, gold, scores, settings, with_uncertainty, penalties, ensembles) -> dict[str, Any]:
    """The settings of a run, as written to `best_of_n_curves.json`."""
    if isinstance(model, (str, os.PathLike)):
        model_name = str(model)
    else:
        model_name = str(getattr(model, "name_or_path", type(model).__name__))
    return {
        "model": model_name,
        "proxy": list(scores.proxy),
        "gold": getattr(gold, "__name__", type(gold).__name__),
        "num_prompts": len(scores.gold),
        "num_samples": settings.num_samples,
        "max_new_tokens": settings.max_new_tokens,
        "temperature": settings.temperature,
        "difficulties": None if settings.difficulties is None else list(settings.difficulties),
        "seed": settings.seed,
        "penalties": penalties if with_uncertainty else [],
        "ensembles": ensembles if len(proxies) > 1 else [],
        "num_bootstrap": settings.num_bootstrap,
        "confidence": settings.confidence,
        "gold_accuracy_of_all_samples": None if np.isnan(scores.gold).all() else float(np.nanmean(scores.gold)),
    }


__all__ = [
    "BestOfNSettings",
    "CandidateScores",
    "CandidateSet",
    "check_proxies",
    "experiment_prompts",
    "parse_pairs",
    "run_config",
    "run_timings",
    "sample_and_score",
    "sample_candidates",
    "score_candidate_set",
]

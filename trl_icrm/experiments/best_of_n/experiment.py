# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The best-of-N over-optimization experiment: sample once, score with a proxy and a gold reward, write the curves.

For each prompt, N candidates are sampled once from the policy. A proxy reward (a reward model, or an ensemble of them)
and a gold reward (math-verify correctness by default) score every candidate. From this one sample set,
[`~trl_icrm.best_of_n.best_of_n_curve`] gives the expected proxy and gold score of the best-of-n response for every
n <= N (exact order-statistics estimator, bootstrap confidence intervals over prompts), for several ways of selecting:
the proxy's plain score and, when the proxy reports its uncertainty ([`~trl_icrm.best_of_n.SupportsUncertainty`]), its
`lcb` and `var_penalty` scores; with several proxies, each one alone and the ensemble aggregations.

Over-optimization shows as a proxy curve that keeps rising with `KL_bon` while the gold curve falls. The "proxy" metric
of every curve is the same quantity, the mean (unpenalized) proxy score over the ensemble members, so the curves of one
panel are comparable; the selection score only decides which candidate is kept.

Outputs, in `output_dir`: `best_of_n_curves.json` (curves and the run's settings), `best_of_n_curves.csv` (one row per
curve and n), `best_of_n_curves.png` (proxy and gold vs `KL_bon`, one line per curve, like figure 2 of the seed
slides) and `best_of_n_samples.jsonl` (every candidate with its scores, to recompute curves with
[`curves_from_scores`]).

[`run_best_of_n_experiment`] runs the steps, each usable alone (`run`: computation; `report`: files and plots;
`curves`: the curves from scores): [`experiment_prompts`] -> [`sample_candidates`] ->
[`score_candidate_set`] -> [`write_samples`] -> [`curves_from_scores`] -> [`save_curves`]. `trl-icrm bon` runs it
with reward models loaded by `trl_icrm.load_reward`.

Example:

```python
>>> from trl_icrm.experiments.best_of_n import run_best_of_n_experiment
>>> def brevity(prompts, completions, **kwargs):  # any TRL reward function serves as the proxy
...     return [-float(len(c[0]["content"])) for c in completions]
>>> result = run_best_of_n_experiment(brevity, "runs/bon", num_prompts=8, num_samples=8, max_new_tokens=64)
>>> result["files"]["png"]
'runs/bon/best_of_n_curves.png'
```
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...best_of_n import RewardFunc
from ...rewards import supports_uncertainty
from ...utils.default_model import DEFAULT_MODEL
from .curves import curves_from_scores
from .report import SAMPLES_FILE, save_curves, write_samples
from .run import BestOfNSettings, check_proxies, parse_pairs, run_config, run_timings, sample_and_score


def run_best_of_n_experiment(
    proxy: RewardFunc | Sequence[RewardFunc],
    output_dir: str | os.PathLike,
    gold: RewardFunc | None = None,
    model: Any = DEFAULT_MODEL,
    processing_class: Any | None = None,
    dataset: Any | None = None,
    settings: BestOfNSettings | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Sample N candidates per prompt, score them with the proxy and the gold reward, write the curves.

    Args:
        proxy: The proxy reward function(s), with TRL's interface (several form an ensemble).
        output_dir: Folder for the outputs (created).
        gold: The gold reward function (default: [`~trl_icrm.rewards.math_verify.MathVerifyReward`], 1.0 if correct).
        model: The policy (model, path, hub id or [`DEFAULT_MODEL`]).
        processing_class: Its tokenizer (default: loaded with the model).
        dataset: Rows with a `prompt` column and the columns the rewards need (e.g. `solution`); default: the
            built-in arithmetic word problems (`make_arithmetic_problems(..., split="test")`, conversational).
        settings: [`BestOfNSettings`] (sampling, penalties and ensembles, bootstrap); `**overrides` replace fields
            of it, e.g. `num_samples=8`.

    Returns:
        `{"curves": [...], "files": {"json", "csv", "png"[, "samples"]}, "timings": {...}, "num_prompts": ...,
        "config": {...}}`.
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    settings = dataclasses.replace(settings or BestOfNSettings(), **overrides)
    proxies = list(proxy) if isinstance(proxy, (list, tuple)) else [proxy]
    penalties, ensembles = parse_pairs(settings.penalties, "penalty"), parse_pairs(settings.ensembles, "ensemble")
    check_proxies(proxies, ensembles, settings.allow_mixed_scales)
    gold = gold if gold is not None else _math_verify()
    with_uncertainty = bool(penalties) and all(supports_uncertainty(p) for p in proxies)
    candidates, scores, laps = sample_and_score(
        proxies, gold, model, processing_class, dataset, settings, with_uncertainty
    )
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    if settings.save_samples:  # first, so the expensive samples survive if no curve can be drawn from them
        files["samples"] = write_samples(candidates, scores, output_dir / SAMPLES_FILE)
    curves = curves_from_scores(
        scores.proxy,
        scores.gold,
        scores.proxy_variances or None,
        penalties,
        ensembles,
        None if settings.ns is None else [int(n) for n in settings.ns],
        settings.num_bootstrap,
        settings.confidence,
        settings.seed,
    )
    timings = run_timings(started, cpu_started, laps, scores.gold_seconds)
    config = {
        **run_config(model, proxies, gold, scores, settings, with_uncertainty, penalties, ensembles),
        "timings": timings,
    }
    num_prompts = len(candidates.prompts)
    title = f"Best-of-n on {num_prompts} prompts (N = {settings.num_samples}), policy {Path(config['model']).name}"
    files = {**save_curves(curves, output_dir, config, title=title), **files}
    return {"curves": curves, "files": files, "timings": timings, "num_prompts": num_prompts, "config": config}


def _math_verify() -> RewardFunc:
    from ...rewards.math_verify import MathVerifyReward

    return MathVerifyReward()


__all__ = ["run_best_of_n_experiment"]

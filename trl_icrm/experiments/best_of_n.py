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

import argparse
import csv
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..best_of_n import (
    ENSEMBLE_METHODS,
    PENALTIES,
    BestOfNCurve,
    BestOfNSampler,
    RewardFunc,
    best_of_n_curve,
    combine_rewards,
    kl_bon,
    score_candidates,
)
from ..rewards import supports_uncertainty
from ..utils.default_model import DEFAULT_MODEL
from ..utils.io import json_safe


logger = logging.getLogger(__name__)

CURVES_FORMAT = "trl-icrm/best-of-n-curves"
CURVES_VERSION = 1
FILE_STEM = "best_of_n_curves"
SAMPLES_FILE = "best_of_n_samples.jsonl"
DEFAULT_PENALTIES = (("lcb", 1.0), ("var_penalty", 1.0))
DEFAULT_ENSEMBLES = (("mean", 1.0), ("worst_case", 1.0), ("mean_minus_std", 1.0))
METRIC_LABELS = {"proxy": "Proxy reward", "gold": "Gold reward"}


# ---------------------------------------------------------------------------------------------------------------------
# Curves from scores
# ---------------------------------------------------------------------------------------------------------------------


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
    for kind, _ in penalties:
        if kind not in PENALTIES:
            raise ValueError(f"Unknown penalty {kind!r}; expected one of {PENALTIES}.")
    for method, _ in ensembles:
        if method not in ENSEMBLE_METHODS:
            raise ValueError(f"Unknown ensemble method {method!r}; expected one of {ENSEMBLE_METHODS}.")
    reported_proxy = combine_rewards(means)  # mean over members: the same proxy metric for every curve
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
    metrics = {"proxy": reported_proxy, "gold": gold}
    return [
        best_of_n_curve(selection, metrics, ns, name, num_bootstrap, confidence, seed) for name, selection in rules
    ]


# ---------------------------------------------------------------------------------------------------------------------
# Writing and plotting
# ---------------------------------------------------------------------------------------------------------------------


def curve_rows(curves: Sequence[BestOfNCurve]) -> list[dict[str, Any]]:
    """One flat row per curve and n: `curve, n, kl_bon, <metric>_mean, <metric>_ci_low, <metric>_ci_high, ...`."""
    rows = []
    for curve in curves:
        for i, n in enumerate(curve.ns):
            row: dict[str, Any] = {"curve": curve.name, "n": n, "kl_bon": curve.kl_bon[i]}
            for metric, stats in curve.metrics.items():
                for key in ("mean", "ci_low", "ci_high"):
                    row[f"{metric}_{key}"] = stats[key][i]
            row.update(num_prompts=curve.num_prompts, num_samples=curve.num_samples)
            rows.append(row)
    return rows


def plot_curves(
    curves: Sequence[BestOfNCurve],
    path: str | os.PathLike,
    metrics: Sequence[str] = ("proxy", "gold"),
    metric_labels: Mapping[str, str] | None = None,
    title: str | None = None,
) -> Path:
    """Plot each metric against `KL_bon` in its own panel, one line per curve with its confidence band (PNG, Agg).

    The top axis shows n. Drawn on a standalone Agg canvas, so no display and no global matplotlib state are needed.

    Example:

    ```python
    >>> import numpy as np
    >>> from trl_icrm.best_of_n import best_of_n_curve
    >>> from trl_icrm.experiments.best_of_n import plot_curves
    >>> proxy = np.random.default_rng(0).normal(size=(16, 8))
    >>> curve = best_of_n_curve(proxy, {"proxy": proxy, "gold": proxy - proxy**2}, name="toy")
    >>> plot_curves([curve], "toy.png")
    PosixPath('toy.png')
    ```
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not curves:
        raise ValueError("plot_curves needs at least one curve.")
    labels = {**METRIC_LABELS, **(metric_labels or {})}
    metrics = [m for m in metrics if any(m in curve.metrics for curve in curves)]
    if not metrics:
        raise ValueError("None of the metrics to plot is in the curves.")
    figure = Figure(figsize=(5.2 * len(metrics), 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(metrics), squeeze=False)[0]
    max_n = max(max(curve.ns) for curve in curves)
    ticks = [n for n in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024) if n <= max_n]
    for axis, metric in zip(axes, metrics, strict=True):
        for index, curve in enumerate(curves):
            if metric not in curve.metrics:
                continue
            stats = curve.metrics[metric]
            color = f"C{index % 10}"
            axis.plot(curve.kl_bon, stats["mean"], marker="o", markersize=2.5, color=color, label=curve.name)
            axis.fill_between(curve.kl_bon, stats["ci_low"], stats["ci_high"], color=color, alpha=0.15, linewidth=0)
        axis.set_xlabel(r"$KL_{bon} = \log n - (n-1)/n$ (nats)")
        axis.set_ylabel(labels.get(metric, metric))
        axis.set_title(labels.get(metric, metric))
        axis.grid(alpha=0.3)
        top = axis.secondary_xaxis("top")  # same KL scale, labelled with the n of each tick
        top.set_xticks([kl_bon(n) for n in ticks], labels=[str(n) for n in ticks])
        top.set_xlabel("n")
    axes[0].legend(fontsize="small")
    if title:
        figure.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=150)
    return path


def save_curves(
    curves: Sequence[BestOfNCurve],
    output_dir: str | os.PathLike,
    config: Mapping[str, Any] | None = None,
    title: str | None = None,
    metric_labels: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Write curves as `best_of_n_curves.json`, `.csv` and `.png` in `output_dir`.

    Returns:
        `{"json": path, "csv": path, "png": path}`.

    Example:

    ```python
    >>> import numpy as np
    >>> from trl_icrm.best_of_n import best_of_n_curve
    >>> from trl_icrm.experiments.best_of_n import load_curves, save_curves
    >>> proxy = np.random.default_rng(0).normal(size=(16, 8))
    >>> files = save_curves([best_of_n_curve(proxy, {"proxy": proxy})], "runs/toy")
    >>> curves, config = load_curves(files["json"])
    ```
    """
    if not curves:
        raise ValueError("save_curves needs at least one curve.")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    files = {kind: output_dir / f"{FILE_STEM}.{kind}" for kind in ("json", "csv", "png")}
    document = {
        "format": CURVES_FORMAT,
        "version": CURVES_VERSION,
        "config": dict(config or {}),
        "curves": [curve.to_dict() for curve in curves],
    }
    files["json"].write_text(json.dumps(json_safe(document), indent=2, allow_nan=False) + "\n")
    rows = curve_rows(curves)
    fieldnames = list(dict.fromkeys(key for row in rows for key in row))
    with open(files["csv"], "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(json_safe(rows))
    plot_curves(curves, files["png"], metric_labels=metric_labels, title=title)
    return {kind: str(path) for kind, path in files.items()}


def load_curves(path: str | os.PathLike) -> tuple[list[BestOfNCurve], dict[str, Any]]:
    """Read a `best_of_n_curves.json` written by [`save_curves`]: `(curves, config)`."""
    document = json.loads(Path(path).read_text())
    if document.get("format") != CURVES_FORMAT:
        raise ValueError(f"{path} is not a best-of-n curves file (format {document.get('format')!r}).")
    nan = float("nan")
    curves = []
    for data in document["curves"]:
        metrics = {
            metric: {key: [nan if v is None else v for v in values] for key, values in stats.items()}
            for metric, stats in data["metrics"].items()
        }
        curves.append(BestOfNCurve.from_dict({**data, "metrics": metrics}))
    return curves, document.get("config", {})


# ---------------------------------------------------------------------------------------------------------------------
# The experiment
# ---------------------------------------------------------------------------------------------------------------------


def _parse_pairs(
    items: Sequence[str | tuple[str, float]], what: str, default_coef: float = 1.0
) -> list[tuple[str, float]]:
    pairs = []
    for item in items:
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


def run_best_of_n_experiment(
    proxy: RewardFunc | Sequence[RewardFunc],
    output_dir: str | os.PathLike,
    gold: RewardFunc | None = None,
    model: Any = DEFAULT_MODEL,
    processing_class: Any | None = None,
    dataset: Any | None = None,
    num_prompts: int = 64,
    num_samples: int = 32,
    max_new_tokens: int = 128,
    temperature: float = 1.0,
    seed: int = 0,
    generation_batch_size: int = 64,
    penalties: Sequence[str | tuple[str, float]] = DEFAULT_PENALTIES,
    ensembles: Sequence[str | tuple[str, float]] = DEFAULT_ENSEMBLES,
    ns: Sequence[int] | None = None,
    difficulties: Sequence[int] | None = None,
    num_bootstrap: int = 1000,
    confidence: float = 0.95,
    progress_bar: bool = True,
    save_samples: bool = True,
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
        num_prompts: Prompts to use (the first ones of `dataset`).
        num_samples: N, candidates per prompt; curves cover n = 1..N.
        max_new_tokens: Maximum tokens per candidate.
        temperature: Sampling temperature (1.0: the reference policy itself).
        seed: Seed of the problems, the sampling and the bootstrap.
        generation_batch_size: Most sequences per `generate` call.
        penalties: Uncertainty penalties as `(kind, k)` or `"kind:k"`; used when every proxy implements
            [`~trl_icrm.best_of_n.SupportsUncertainty`].
        ensembles: Ensemble aggregations as `(method, k)` or `"method:k"`; used with several proxies.
        ns: The n values of the curves (default: 1..N); checked before any sampling.
        difficulties: Difficulty levels (numbers of arithmetic operations) of the built-in problems (default: all).
        num_bootstrap: Bootstrap resamples of the prompts.
        confidence: Level of the confidence intervals.
        progress_bar: Show tqdm progress bars over prompts (sampling, then scoring).
        save_samples: Also write every candidate with its scores to `best_of_n_samples.jsonl`.

    Returns:
        `{"curves": [...], "files": {"json", "csv", "png"[, "samples"]}, "timings": {...}, "num_prompts": ...}`.
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    proxies = list(proxy) if isinstance(proxy, (list, tuple)) else [proxy]
    if not proxies:
        raise ValueError("run_best_of_n_experiment needs at least one proxy reward function.")
    if num_prompts < 1:
        raise ValueError(f"num_prompts must be >= 1, got {num_prompts}.")
    if num_samples < 1:
        raise ValueError(f"num_samples (N) must be >= 1, got {num_samples}.")
    if ns is not None:
        ns = [int(n) for n in ns]
        if not ns or min(ns) < 1:
            raise ValueError(f"Every n must be >= 1, got ns={ns}.")
        if max(ns) > num_samples:
            raise ValueError(f"Best-of-{max(ns)} needs N >= {max(ns)} samples per prompt, got N = {num_samples}.")
    penalties = _parse_pairs(penalties, "penalty")
    ensembles = _parse_pairs(ensembles, "ensemble")
    if gold is None:
        from ..rewards.math_verify import MathVerifyReward

        gold = MathVerifyReward()
    if dataset is None:
        from ..data.math_problems import make_arithmetic_problems

        levels = {} if difficulties is None else {"difficulties": list(difficulties)}
        dataset = make_arithmetic_problems(num_train=0, num_test=num_prompts, seed=seed, split="test", **levels)
    if len(dataset) == 0:
        raise ValueError("The dataset is empty: best-of-n needs at least one prompt.")
    rows = [dataset[i] for i in range(min(num_prompts, len(dataset)))]
    if len(rows) < num_prompts:
        logger.warning("The dataset has %d rows; using all of them instead of %d.", len(rows), num_prompts)
    prompts = [row["prompt"] for row in rows]
    columns = {key: [row[key] for row in rows] for key in rows[0] if key != "prompt"}
    with_uncertainty = bool(penalties) and all(supports_uncertainty(p) for p in proxies)
    sampler = BestOfNSampler(
        model,
        proxies,
        processing_class,
        n=num_samples,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        generation_batch_size=generation_batch_size,
        seed=seed,
        progress_bar=progress_bar,
    )
    loaded = time.perf_counter()
    completions, completion_ids = sampler.generate(prompts)
    generated = time.perf_counter()

    names = sampler.reward_names
    proxy_scores = {name: np.empty((len(prompts), num_samples)) for name in names}
    proxy_variances = {name: np.empty((len(prompts), num_samples)) for name in names} if with_uncertainty else {}
    gold_scores = np.empty((len(prompts), num_samples))
    gold_time = 0.0
    step = max(1, generation_batch_size // num_samples)
    with tqdm(total=len(prompts), unit="prompt", desc="Scoring", disable=not progress_bar) as progress:
        for start in range(0, len(prompts), step):
            chunk = slice(start, start + step)
            batch_columns = {key: value[chunk] for key, value in columns.items()}
            scores, variances = score_candidates(
                proxies,
                prompts[chunk],
                completions[chunk],
                completion_ids[chunk],
                with_uncertainty=with_uncertainty,
                names=names,
                **batch_columns,
            )
            for name in names:
                proxy_scores[name][chunk] = scores[name]
                if with_uncertainty:
                    proxy_variances[name][chunk] = variances[name]
            gold_started = time.perf_counter()
            gold_scores[chunk] = score_candidates(
                gold, prompts[chunk], completions[chunk], completion_ids[chunk], names=["gold"], **batch_columns
            )[0]["gold"]
            gold_time += time.perf_counter() - gold_started
            progress.update(len(prompts[chunk]))
    scored = time.perf_counter()

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    if save_samples:  # first, so the expensive samples survive if no curve can be drawn from them
        samples_path = output_dir / SAMPLES_FILE
        with open(samples_path, "w") as handle:
            for i, prompt in enumerate(prompts):
                record = {
                    "prompt": prompt,
                    **{key: value[i] for key, value in columns.items()},
                    "completions": completions[i],
                    "proxy": {name: proxy_scores[name][i].tolist() for name in names},
                    "proxy_variance": {name: proxy_variances[name][i].tolist() for name in proxy_variances},
                    "gold": gold_scores[i].tolist(),
                }
                handle.write(json.dumps(json_safe(record), default=str) + "\n")
        files["samples"] = str(samples_path)
    curves = curves_from_scores(
        proxy_scores,
        gold_scores,
        proxy_variances or None,
        penalties=penalties,
        ensembles=ensembles,
        ns=ns,
        num_bootstrap=num_bootstrap,
        confidence=confidence,
        seed=seed,
    )
    timings = {
        "load_seconds": loaded - started,
        "generation_seconds": generated - loaded,
        "proxy_scoring_seconds": scored - generated - gold_time,
        "gold_scoring_seconds": gold_time,
        "total_seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,  # all threads; differs from wall time on a shared CPU
    }
    if isinstance(model, (str, os.PathLike)):
        model_name = str(model)
    else:
        model_name = getattr(model, "name_or_path", type(model).__name__)
    config = {
        "model": str(model_name),
        "proxy": names,
        "gold": getattr(gold, "__name__", type(gold).__name__),
        "num_prompts": len(prompts),
        "num_samples": num_samples,
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "difficulties": None if difficulties is None else list(difficulties),
        "seed": seed,
        "penalties": penalties if with_uncertainty else [],
        "ensembles": ensembles if len(proxies) > 1 else [],
        "num_bootstrap": num_bootstrap,
        "confidence": confidence,
        "gold_accuracy_of_all_samples": float(np.nanmean(gold_scores)) if not np.isnan(gold_scores).all() else None,
        "timings": timings,
    }
    title = f"Best-of-n on {len(prompts)} prompts (N = {num_samples}), policy {Path(str(model_name)).name}"
    files = {**save_curves(curves, output_dir, config, title=title), **files}
    return {"curves": curves, "files": files, "timings": timings, "num_prompts": len(prompts), "config": config}


# ---------------------------------------------------------------------------------------------------------------------
# Command line (shared by `trl-icrm bon` and examples/best_of_n.py)
# ---------------------------------------------------------------------------------------------------------------------


def add_bon_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the arguments of the best-of-n experiment to `parser` (used by `trl-icrm bon` and the example)."""
    parser.add_argument(
        "--reward-model",
        nargs="+",
        required=True,
        metavar="PATH",
        help="Proxy reward model folder(s) (sequence classification); several form an ensemble.",
    )
    parser.add_argument(
        "--reward-kind",
        choices=("auto", "icrm", "bt"),
        default="auto",
        help="ICRM (reports its uncertainty: penalty curves) or BT reward model; auto reads the model config.",
    )
    parser.add_argument(
        "--demonstrations",
        metavar="JSON",
        help="JSON list of {prompt, chosen, rejected} pairs that steer an ICRM proxy (default: zero-shot).",
    )
    parser.add_argument("--output-dir", default="runs/best_of_n", help="Folder for the curves (JSON, CSV, PNG).")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="Policy: path, hub id or the embedded default model.")
    parser.add_argument("--num-prompts", type=int, default=64, help="Built-in math problems to use.")
    parser.add_argument(
        "--difficulties",
        type=int,
        nargs="+",
        help="Difficulty levels (arithmetic steps) of the problems; all if not given.",
    )
    parser.add_argument("--num-samples", "-N", type=int, default=32, help="N, candidates per prompt (curves: n <= N).")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="Maximum tokens per candidate.")
    parser.add_argument("--temperature", type=float, default=1.0, help="Sampling temperature.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the problems, the sampling and the bootstrap.")
    parser.add_argument("--generation-batch-size", type=int, default=64, help="Most sequences per generate call.")
    parser.add_argument(
        "--penalties",
        nargs="*",
        default=[f"{kind}:{k:g}" for kind, k in DEFAULT_PENALTIES],
        metavar="KIND[:K]",
        help="Uncertainty penalties (lcb, var_penalty) when the proxy reports its uncertainty.",
    )
    parser.add_argument(
        "--ensembles",
        nargs="*",
        default=[f"{method}:{k:g}" for method, k in DEFAULT_ENSEMBLES],
        metavar="METHOD[:K]",
        help="Ensemble aggregations (mean, worst_case, mean_minus_std) with several reward models.",
    )
    parser.add_argument("--num-bootstrap", type=int, default=1000, help="Bootstrap resamples of the prompts.")
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads of torch (torch's choice if not given); 1 is often fastest on a CPU shared with other jobs.",
    )
    parser.add_argument("--no-progress", action="store_true", help="Hide the progress bars.")
    return parser


def reward_model_kind(path: str | os.PathLike) -> str:
    """`"icrm"` for a saved ICRM reward model (its config has `icrm` settings), `"bt"` for a one-output classifier.

    A PEFT adapter folder without its own `config.json` is judged by its base model's config.
    """
    from transformers import AutoConfig

    from ..modeling import is_peft_folder
    from ..utils.default_model import resolve_model_name_or_path

    config_path = resolve_model_name_or_path(path)
    if is_peft_folder(config_path) and not Path(config_path, "config.json").is_file():
        with open(Path(config_path, "adapter_config.json"), encoding="utf-8") as handle:
            config_path = resolve_model_name_or_path(json.load(handle)["base_model_name_or_path"])
    config = AutoConfig.from_pretrained(config_path)
    if getattr(config, "icrm", None) is not None:
        return "icrm"
    if getattr(config, "num_labels", None) == 1:
        return "bt"
    raise ValueError(
        f"{path} is neither a saved ICRM reward model (no `icrm` settings in its config) nor a one-output "
        "(Bradley-Terry) reward model; say which it is with reward_kind='icrm' or 'bt' (--reward-kind)."
    )


def load_proxy(
    path: str | os.PathLike, kind: str = "auto", demonstrations: Sequence[Mapping[str, Any]] | None = None
) -> RewardFunc:
    """The proxy reward function (TRL interface) of the reward model saved in `path`.

    Args:
        path: Reward model folder, PEFT adapter folder or hub id.
        kind: `"icrm"` ([`~trl_icrm.rewards.icrm.ICRMReward`], which reports its uncertainty), `"bt"`
            ([`~trl_icrm.rewards.icrm.SequenceClassifierReward`]) or `"auto"` ([`reward_model_kind`]).
        demonstrations: Fixed demonstration pairs (`{"prompt", "chosen", "rejected"}`) that steer an ICRM model on
            every prompt; without them it scores zero-shot (K = 0).
    """
    from ..rewards import ICRMReward, SequenceClassifierReward

    kind = reward_model_kind(path) if kind == "auto" else kind
    name = Path(str(path).rstrip("/")).name or str(path)
    if kind == "icrm":
        fixed = list(demonstrations) if demonstrations else None
        return ICRMReward(path, fixed_demonstrations=fixed, allow_zero_shot=True, name=name)
    if kind == "bt":
        if demonstrations:
            raise ValueError("Demonstrations steer ICRM reward models only; a BT reward model takes none.")
        return SequenceClassifierReward(path, name=name)
    raise ValueError(f"Unknown reward model kind {kind!r}; expected 'auto', 'icrm' or 'bt'.")


def bon_main(args: argparse.Namespace, load_reward: Callable[..., RewardFunc] | None = None) -> int:
    """Run the experiment from parsed [`add_bon_arguments`] arguments and print where the files are.

    `load_reward(path, kind, demonstrations)` turns each `--reward-model` into a reward function (default:
    [`load_proxy`]).
    """
    load_reward = load_reward or load_proxy
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    demonstrations = None
    if args.demonstrations:
        demonstrations = json.loads(Path(args.demonstrations).read_text())
        if not isinstance(demonstrations, list):
            raise ValueError(f"{args.demonstrations} must hold a JSON list of {{prompt, chosen, rejected}} pairs.")
    result = run_best_of_n_experiment(
        [load_reward(path, args.reward_kind, demonstrations) for path in args.reward_model],
        args.output_dir,
        model=args.model,
        num_prompts=args.num_prompts,
        num_samples=args.num_samples,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        seed=args.seed,
        generation_batch_size=args.generation_batch_size,
        penalties=args.penalties,
        ensembles=args.ensembles,
        difficulties=args.difficulties,
        num_bootstrap=args.num_bootstrap,
        progress_bar=not args.no_progress,
    )
    timings = result["timings"]
    print(
        f"Best-of-n over {result['num_prompts']} prompts, N = {args.num_samples}: "
        f"{timings['total_seconds']:.0f} s in all ({timings['generation_seconds']:.0f} s sampling, "
        f"{timings['proxy_scoring_seconds']:.0f} s proxy, {timings['gold_scoring_seconds']:.0f} s gold)."
    )
    for curve in result["curves"]:
        gold = curve.metrics["gold"]["mean"]
        line = f"  {curve.name}: gold {gold[0]:.3f} (n=1), best {max(gold):.3f}, {gold[-1]:.3f} (n={curve.ns[-1]})"
        if curve.num_prompts_skipped:
            line += f" ({curve.num_prompts_skipped} prompts skipped: missing scores)"
        print(line)
    for kind, path in result["files"].items():
        print(f"  {kind}: {path}")
    return 0

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Files and plots of the best-of-N experiment: the curves (`best_of_n_curves.json`, `.csv`, `.png`), every candidate
with its scores (`best_of_n_samples.jsonl`), a sampled candidate set and cached proxy scores that later runs reuse,
and the reliability diagram of a Bayesian proxy."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...best_of_n import BestOfNCurve, RewardFunc, kl_bon
from ...rewards import supports_uncertainty
from ...utils.io import json_safe, new_figure, save_figure, write_csv, write_json
from .run import CandidateScores, CandidateSet, score_candidate_set


CURVES_FORMAT = "trl-icrm/best-of-n-curves"
CURVES_VERSION = 1
FILE_STEM = "best_of_n_curves"
SAMPLES_FILE = "best_of_n_samples.jsonl"
METRIC_LABELS = {"proxy": "Proxy reward", "gold": "Gold reward"}


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
    write_json(document, files["json"])
    rows = curve_rows(curves)
    fieldnames = list(dict.fromkeys(key for row in rows for key in row))
    write_csv(json_safe([{key: row.get(key) for key in fieldnames} for row in rows]), files["csv"])
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


def write_samples(candidates: CandidateSet, scores: CandidateScores, path: str | os.PathLike) -> str:
    """Step 3: write every candidate with its scores as JSON lines (one prompt per line); [`curves_from_scores`]
    recomputes the curves from them."""
    with open(path, "w", encoding="utf-8") as handle:
        for i, prompt in enumerate(candidates.prompts):
            record = {
                "prompt": prompt,
                **{key: value[i] for key, value in candidates.columns.items()},
                "completions": candidates.completions[i],
                "proxy": {name: values[i].tolist() for name, values in scores.proxy.items()},
                "proxy_variance": {name: values[i].tolist() for name, values in scores.proxy_variances.items()},
                "gold": scores.gold[i].tolist(),
            }
            handle.write(json.dumps(json_safe(record), default=str) + "\n")
    return str(path)


def save_candidates(candidates: CandidateSet, path: str | os.PathLike) -> str:
    """Write a sampled [`CandidateSet`] as JSON (written to a temporary file, then renamed), so that later proxies are
    scored on exactly the same candidates ([`load_candidates`])."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    write_json(dataclasses.asdict(candidates), temporary)
    os.replace(temporary, path)
    return str(path)


def load_candidates(path: str | os.PathLike) -> CandidateSet:
    """Read a [`CandidateSet`] written by [`save_candidates`]."""
    data = json.loads(Path(path).read_text())
    return CandidateSet(data["prompts"], data["columns"], data["completions"], data["completion_ids"])


def cached_proxy_scores(
    candidates: CandidateSet,
    name: str,
    reward: RewardFunc | None,
    cache_dir: str | os.PathLike,
    with_uncertainty: bool = True,
    generation_batch_size: int = 64,
    progress_bar: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Scores `(num_prompts, N)` of one proxy on the candidates and its variances (`None` without uncertainty),
    read from `<cache_dir>/<name>.npz` if there, else computed (with `reward`, loaded lazily by the caller) and saved
    there: a proxy is scored once, and a new proxy is added to an experiment by scoring only it."""
    path = Path(cache_dir) / f"{name}.npz"
    if path.is_file():
        cached = np.load(path)
        return cached["mean"], cached["variance"] if "variance" in cached else None
    if reward is None:
        raise FileNotFoundError(f"No cached scores {path} and no reward function to compute them.")
    uncertain = with_uncertainty and supports_uncertainty(reward)
    scores = score_candidate_set(
        candidates, [reward], _no_gold, [name], uncertain, generation_batch_size, progress_bar
    )
    arrays = {"mean": scores.proxy[name]}
    if uncertain:
        arrays["variance"] = scores.proxy_variances[name]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path.with_name(f".{path.stem}.partial.npz"), **arrays)
    os.replace(path.with_name(f".{path.stem}.partial.npz"), path)
    return arrays["mean"], arrays.get("variance")


def _no_gold(prompts, completions, **kwargs):
    return [float("nan")] * len(completions)


def plot_reliability(summary: Mapping[str, Any], path: str | os.PathLike, subset: str) -> None:
    """The reliability diagram of a Laplace posterior's held-out pairs (`trl_icrm.laplace.evaluation`'s calibration
    summary): MAP and Laplace predicted probabilities against observed frequencies, with their ECE."""
    figure, axis = new_figure((4.6, 4.2))
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    for key, label in (("map", "MAP"), ("laplace", f"Laplace ({subset})")):
        bins = summary[f"reliability_{key}"]
        axis.plot(
            [b["confidence"] for b in bins],
            [b["frequency"] for b in bins],
            marker="o",
            label=f"{label}, ECE {summary[f'ece_{key}']:.3f}",
        )
    axis.set_xlabel("predicted P(first preferred)")
    axis.set_ylabel("observed frequency")
    axis.set_title(f"Held-out math pairs (n = {summary['num_pairs']})")
    axis.legend(fontsize="small")
    save_figure(figure, path)


__all__ = [
    "CURVES_FORMAT",
    "CURVES_VERSION",
    "FILE_STEM",
    "METRIC_LABELS",
    "SAMPLES_FILE",
    "cached_proxy_scores",
    "curve_rows",
    "load_candidates",
    "load_curves",
    "plot_curves",
    "plot_reliability",
    "save_candidates",
    "save_curves",
    "write_samples",
]

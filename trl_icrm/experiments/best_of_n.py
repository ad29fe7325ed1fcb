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

[`run_best_of_n_experiment`] runs the steps, each usable alone: [`experiment_prompts`] -> [`sample_candidates`] ->
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
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
from ..utils.io import json_safe, write_csv, write_json


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


# ---------------------------------------------------------------------------------------------------------------------
# The experiment
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class BestOfNSettings:
    """How [`run_best_of_n_experiment`] samples, scores and draws the curves (also the options of `trl-icrm bon`)."""

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
            "help": "Ensemble curves 'method[:k]' (mean, worst_case, mean_minus_std) with several proxies; 'none' "
            "for no ensemble curve."
        },
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
        unknown = [kind for kind, _ in _parse_pairs(self.penalties, "penalty") if kind not in PENALTIES]
        unknown += [method for method, _ in _parse_pairs(self.ensembles, "ensemble") if method not in ENSEMBLE_METHODS]
        if unknown:
            raise ValueError(
                f"Unknown penalties or ensembles {unknown}; penalties are {PENALTIES}, ensembles {ENSEMBLE_METHODS}."
            )


def _parse_pairs(
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


def _check_proxies(proxies: Sequence[RewardFunc]) -> None:
    """At least one proxy (the settings check their own values when made: [`BestOfNSettings`])."""
    if not proxies:
        raise ValueError("run_best_of_n_experiment needs at least one proxy reward function.")


def experiment_prompts(
    dataset: Any | None, num_prompts: int, seed: int = 0, difficulties: Sequence[int] | None = None
) -> tuple[list[Any], dict[str, list[Any]]]:
    """`(prompts, columns)`: the first `num_prompts` rows of `dataset` (default: built-in arithmetic word problems of
    the test split), split into the prompts and the other columns."""
    if dataset is None:
        from ..data.math_problems import make_arithmetic_problems

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
    _check_proxies(proxies)
    ns = None if settings.ns is None else [int(n) for n in settings.ns]
    penalties, ensembles = _parse_pairs(settings.penalties, "penalty"), _parse_pairs(settings.ensembles, "ensemble")
    gold = gold if gold is not None else _math_verify()
    prompts, columns = experiment_prompts(dataset, settings.num_prompts, settings.seed, settings.difficulties)
    with_uncertainty = bool(penalties) and all(supports_uncertainty(p) for p in proxies)
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
        ns,
        settings.num_bootstrap,
        settings.confidence,
        settings.seed,
    )
    timings = _timings(started, cpu_started, laps, scores.gold_seconds)
    config = {
        **_run_config(model, proxies, gold, scores, settings, with_uncertainty, penalties, ensembles),
        "timings": timings,
    }
    title = f"Best-of-n on {len(prompts)} prompts (N = {settings.num_samples}), policy {Path(config['model']).name}"
    files = {**save_curves(curves, output_dir, config, title=title), **files}
    return {"curves": curves, "files": files, "timings": timings, "num_prompts": len(prompts), "config": config}


def _timings(started: float, cpu_started: float, laps: Sequence[float], gold_seconds: float) -> dict[str, float]:
    """Wall-clock seconds of each step (`laps`: after loading, sampling, scoring) and CPU seconds in all."""
    return {
        "load_seconds": laps[0] - started,
        "generation_seconds": laps[1] - laps[0],
        "proxy_scoring_seconds": laps[2] - laps[1] - gold_seconds,
        "gold_scoring_seconds": gold_seconds,
        "total_seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,  # all threads; differs from wall time on a shared CPU
    }


def _math_verify() -> RewardFunc:
    from ..rewards.math_verify import MathVerifyReward

    return MathVerifyReward()


def _run_config(model, proxies, gold, scores, settings, with_uncertainty, penalties, ensembles) -> dict[str, Any]:
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
    "SelectionMethod",
    "cached_proxy_scores",
    "load_candidates",
    "method_curves",
    "save_candidates",
    "CandidateScores",
    "CandidateSet",
    "curve_rows",
    "curves_from_scores",
    "experiment_prompts",
    "load_curves",
    "plot_curves",
    "run_best_of_n_experiment",
    "sample_candidates",
    "save_curves",
    "score_candidate_set",
    "selection_rules",
    "write_samples",
]

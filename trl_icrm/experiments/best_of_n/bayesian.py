# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Bayesian reward models (Laplace-LoRA, ICRM, VRM) against best-of-N over-optimization, on the embedded model (CPU).

The experiment of `recipes/bayesian_reward_models.py`, every step cached in `--output_dir` (a step whose output is
there is skipped, so a rerun resumes and a new proxy is added by scoring only it):

1. `preferences`: policy-sampled math pairs (`trl-icrm build-math-preferences`), math-verify labels;
2. `candidates`: N answers per held-out problem, sampled once from the policy;
3. `bt`: small BT LoRA reward models (`trl-icrm train --method bt --no_merge_lora`), one per `--seeds`;
4. `laplace`: a Laplace posterior for each (`trl-icrm laplace`, LoRA-KFAC and last layer);
5. `icrm` (with `--icrm_steps` > 0): an ICRM model on the same pairs (`trl-icrm train --method icrm`), scored with
   `--icrm_demonstrations` training pairs of the problem's family in context;
   `vrm` (with `--vrm_steps` > 0): a VRM model on the same pairs (`trl-icrm train --method vrm`);
6. `scores`: every proxy's mean (and variance) on the candidates, and math-verify gold; one `.npz` per proxy;
7. `curves`: best-of-n proxy and gold vs KL_bon for every method (`--methods`, a JSON list of
   `{name, members, penalty, coef}` over the proxy names), exact order-statistics estimator, bootstrap intervals over
   prompts; `curves/best_of_n_curves.{json,csv,png}` and `gold_at_max_n.json`;
8. `calibration`: MAP vs Laplace ECE on held-out pairs and the predictive variance on another data set's pairs.

The `trl-icrm` commands run in their own processes (memory is freed between steps), through the `command` runner
that [`run_bayesian_reward_models`] is given (the recipe passes one that runs `python -m` the command line).

Example:

```python
>>> from trl_icrm.experiments.best_of_n.bayesian import BayesianRewardModelsArguments, run_bayesian_reward_models
>>> args = BayesianRewardModelsArguments(output_dir="runs/brm", steps=["curves"])
>>> run_bayesian_reward_models(args, command=print)  # doctest: +SKIP
```
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


CommandRunner = Callable[..., None]
"""Runs one `trl-icrm` command, given its arguments (`command("train", "--method", "bt", ...)`)."""

LAPLACE_EVAL_FRACTION = 0.1
"""Share of the pairs `trl-icrm laplace` holds out (its default), so calibration sees the same held-out pairs."""


MAIN_PENALIZED = (
    "LA std",
    "LA var",
    "LA last-layer std",
    "LA Ens std",
    "LA Ens last-layer std",
    "ICRM lcb",
    "VRM std",
)
"""Penalized methods drawn (at k = 1) in the main figure; every k is in the CSV and the full figure."""
STEPS = ("preferences", "candidates", "bt", "laplace", "icrm", "vrm", "scores", "curves", "calibration")


@dataclass
class BayesianRewardModelsArguments:
    """Options of the experiment (`recipes/bayesian_reward_models.py`: TrlParser flags, snake_case, `--config
    file.yaml`)."""

    output_dir: str = field(default="runs/bayesian_reward_models", metadata={"help": "Folder of every step's output."})
    model_name_or_path: str = field(
        default="embedded:SmolLM2-135M-Instruct", metadata={"help": "The policy, and the base of the reward models."}
    )
    steps: list[str] = field(default_factory=lambda: list(STEPS), metadata={"help": f"Steps to run, of {STEPS}."})
    num_problems: int = field(default=64, metadata={"help": "Training problems for the pairs (fewer: weaker proxy)."})
    samples_per_problem: int = field(default=8, metadata={"help": "Policy samples per training problem."})
    pair_max_new_tokens: int = field(default=128, metadata={"help": "Most tokens per sampled training answer."})
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"help": "One BT model per seed (Ens)."})
    bt_steps: int = field(default=20, metadata={"help": "Training steps of each BT model (4 pairs a step)."})
    icrm_steps: int = field(default=0, metadata={"help": "Training steps of the ICRM proxy (0: none)."})
    icrm_demonstrations: int = field(
        default=4, metadata={"help": "K of the ICRM proxy: trained with 0..K, scored with K of the problem's family."}
    )
    vrm_steps: int = field(default=0, metadata={"help": "Training steps of the VRM proxy (0: none)."})
    num_prompts: int = field(default=32, metadata={"help": "Held-out problems of the best-of-n experiment."})
    num_candidates: int = field(default=64, metadata={"help": "N answers sampled per problem."})
    num_scored_prompts: int | None = field(
        default=None, metadata={"help": "Score and draw only the first prompts of the candidates (none: all)."}
    )
    max_new_tokens: int = field(default=96, metadata={"help": "Most tokens per sampled answer."})
    temperature: float = field(
        default=0.7, metadata={"help": "Sampling temperature of the policy, for the pairs and the candidates."}
    )
    difficulties: list[int] = field(default_factory=lambda: [1], metadata={"help": "Problem difficulties."})
    lora_posterior_seeds: list[int] | None = field(
        default=None, metadata={"help": "Seeds whose LoRA-KFAC posterior scores the candidates (default: all)."}
    )
    ks: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0], metadata={"help": "Penalty coefficients k."})
    methods: str | None = field(
        default=None, metadata={"help": "JSON file of selection methods {name, members, penalty, coef}."}
    )
    num_bootstrap: int = field(default=1000, metadata={"help": "Bootstrap resamples of the prompts."})
    threads: int | None = field(default=None, metadata={"help": "CPU threads of torch."})

    def __post_init__(self):
        unknown = [step for step in self.steps if step not in STEPS]
        if unknown:
            raise ValueError(f"Unknown steps {unknown}; choose from {STEPS}.")


def step_preferences(args, out: Path, command: CommandRunner) -> None:
    if (out / "preferences").is_dir():
        return
    command(
        "build-math-preferences",
        "--num_problems",
        str(args.num_problems),
        "--num_samples",
        str(args.samples_per_problem),
        "--max_new_tokens",
        str(args.pair_max_new_tokens),
        "--temperature",
        str(args.temperature),
        "--model_name_or_path",
        args.model_name_or_path,
        "--output_dir",
        str(out / "preferences"),
        "--seed",
        "0",
    )


def step_candidates(args, out: Path, command: CommandRunner) -> None:
    from ...best_of_n import BestOfNSampler
    from .report import save_candidates
    from .run import experiment_prompts, sample_candidates

    if (out / "candidates.json").is_file():
        return
    started = time.perf_counter()
    prompts, columns = experiment_prompts(None, args.num_prompts, seed=0, difficulties=args.difficulties)
    sampler = BestOfNSampler(
        args.model_name_or_path,
        reward_funcs=[_unused],
        n=args.num_candidates,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        seed=0,
        progress_bar=True,
    )
    save_candidates(sample_candidates(sampler, prompts, columns), out / "candidates.json")
    print(f"[candidates] {time.perf_counter() - started:.0f} s", flush=True)


def _unused(prompts, completions, **kwargs):
    return [0.0] * len(completions)


def bt_dir(out: Path, seed: int) -> Path:
    return out / f"bt-seed{seed}"


def step_bt(args, out: Path, command: CommandRunner) -> None:
    for seed in args.seeds:
        if (bt_dir(out, seed) / "adapter_config.json").is_file():
            continue
        command(
            "train",
            "--method",
            "bt",
            "--no_merge_lora",
            "--model_name_or_path",
            args.model_name_or_path,
            "--dataset_name",
            str(out / "preferences"),
            "--output_dir",
            str(bt_dir(out, seed)),
            "--seed",
            str(seed),
            "--max_steps",
            str(args.bt_steps),
            "--max_length",
            "768",
            "--report_to",
            "none",
        )


def step_laplace(args, out: Path, command: CommandRunner) -> None:
    lora_seeds = args.seeds if args.lora_posterior_seeds is None else args.lora_posterior_seeds
    for seed in args.seeds:
        for subset in ("last_layer", "lora") if seed in lora_seeds else ("last_layer",):
            if (bt_dir(out, seed) / f"laplace_{subset}.safetensors").is_file():
                continue
            command(
                "laplace",
                "--model_name_or_path",
                str(bt_dir(out, seed)),
                "--dataset_name",
                str(out / "preferences"),
                "--seed",
                str(seed),
                "--subset",
                subset,
                "--max_length",
                "768",
                "--evaluate",
                "--no_progress_bar",
            )


def step_icrm(args, out: Path, command: CommandRunner) -> None:
    train_proxy(args, out, command, "icrm", args.icrm_steps, "--max_demonstrations", str(args.icrm_demonstrations))


def step_vrm(args, out: Path, command: CommandRunner) -> None:
    train_proxy(args, out, command, "vrm", args.vrm_steps)


def train_proxy(args, out: Path, command: CommandRunner, method: str, steps: int, *options: str) -> None:
    """Train the `method` proxy on the pairs into `out/method` (`steps` 0: none; a saved model: done already)."""
    if steps <= 0 or any((out / method).glob("*.safetensors")):
        return
    command(
        "train",
        "--method",
        method,
        "--model_name_or_path",
        args.model_name_or_path,
        "--dataset_name",
        str(out / "preferences"),
        "--output_dir",
        str(out / method),
        "--max_steps",
        str(steps),
        *options,
        "--max_length",
        "768",
        "--report_to",
        "none",
    )


def proxy_specs(args, out: Path) -> dict[str, dict]:
    """Every proxy to score: name -> {path, kind, subset}. MAP scores come from the last-layer posterior's mean (the
    MAP reward exactly, at the cost of one forward pass)."""
    specs = {}
    lora_seeds = args.seeds if args.lora_posterior_seeds is None else args.lora_posterior_seeds
    for seed in args.seeds:
        specs[f"bt{seed}_ll"] = {"path": str(bt_dir(out, seed)), "kind": "laplace", "subset": "last_layer"}
        if seed in lora_seeds:
            specs[f"bt{seed}_lora"] = {"path": str(bt_dir(out, seed)), "kind": "laplace", "subset": "lora"}
    for kind in ("icrm", "vrm"):
        if any((out / kind).glob("*.safetensors")):
            specs[kind] = {"path": str(out / kind), "kind": kind}
    return specs


def load_proxy(args, out: Path, spec: dict, name: str):
    """The reward of one proxy. ICRM reads `--icrm_demonstrations` training pairs of the problem's family (one set per
    family, the same for every candidate of it; zero-shot for a family without training pairs)."""
    from ...rewards import load_reward

    if spec["kind"] == "icrm":
        return load_reward(
            spec["path"],
            kind="icrm",
            demonstration_bank=family_bank(out / "preferences"),
            bank_key_column="family",
            num_demonstrations=args.icrm_demonstrations,
            bank_draw="per_key",
            allow_zero_shot=True,
            name=name,
        )
    if spec["kind"] == "vrm":
        return load_reward(spec["path"], kind="vrm", name=name)
    return load_reward(spec["path"], kind=spec["kind"], subset=spec["subset"], name=name)


def family_bank(preferences: Path) -> dict[str, list[dict]]:
    """The training pairs by problem family: `{family: [{prompt, chosen, rejected}, ...]}`."""
    from datasets import load_from_disk

    bank = {}
    for row in load_from_disk(str(preferences)):
        bank.setdefault(row["family"], []).append({key: row[key] for key in ("prompt", "chosen", "rejected")})
    return bank


def step_scores(args, out: Path, command: CommandRunner) -> None:
    from ...rewards import MathVerifyReward
    from .report import cached_proxy_scores, load_candidates

    candidates = load_candidates(out / "candidates.json")
    if args.num_scored_prompts is not None:
        keep = slice(0, args.num_scored_prompts)
        candidates = type(candidates)(
            candidates.prompts[keep],
            {key: values[keep] for key, values in candidates.columns.items()},
            candidates.completions[keep],
            candidates.completion_ids[keep],
        )
    cache = out / "scores"
    timings = json.loads((cache / "timings.json").read_text()) if (cache / "timings.json").is_file() else {}
    for name, spec in {**proxy_specs(args, out), "gold": {"kind": "verifier"}}.items():
        if (cache / f"{name}.npz").is_file():
            continue
        started = time.perf_counter()
        reward = MathVerifyReward() if name == "gold" else load_proxy(args, out, spec, name)
        cached_proxy_scores(candidates, name, reward, cache, with_uncertainty=name != "gold", generation_batch_size=64)
        timings[name] = time.perf_counter() - started
        (cache / "timings.json").write_text(json.dumps(timings, indent=2))
        print(f"[scores] {name}: {timings[name]:.0f} s", flush=True)


def default_methods(args, out: Path) -> list[dict]:
    specs = proxy_specs(args, out)
    first = args.seeds[0]
    methods = [{"name": "MAP", "members": [f"bt{first}_ll"]}]
    for tag, label in (("lora", "LA"), ("ll", "LA last-layer")):
        if f"bt{first}_{tag}" not in specs:
            continue
        for penalty, kind in (("lcb", "std"), ("var_penalty", "var")):
            methods += [
                {"name": f"{label} {kind} k={k:g}", "members": [f"bt{first}_{tag}"], "penalty": penalty, "coef": k}
                for k in args.ks
            ]
    if len(args.seeds) > 1:
        methods.append({"name": "Ens", "members": [f"bt{s}_ll" for s in args.seeds]})
        for tag, label in (("lora", "LA Ens"), ("ll", "LA Ens last-layer")):
            members = [f"bt{s}_{tag}" for s in args.seeds]
            if all(m in specs for m in members):
                methods += [
                    {"name": f"{label} std k={k:g}", "members": members, "penalty": "lcb", "coef": k} for k in args.ks
                ]
    if "icrm" in specs:
        methods.append({"name": "ICRM", "members": ["icrm"]})
        methods += [{"name": f"ICRM lcb k={k:g}", "members": ["icrm"], "penalty": "lcb", "coef": k} for k in args.ks]
    if "vrm" in specs:
        methods.append({"name": "VRM", "members": ["vrm"]})
        methods += [{"name": f"VRM std k={k:g}", "members": ["vrm"], "penalty": "lcb", "coef": k} for k in args.ks]
    return methods


def step_curves(args, out: Path, command: CommandRunner) -> None:
    from ...utils.io import write_json
    from .curves import SelectionMethod, method_curves
    from .report import plot_curves, save_curves

    methods = json.loads(Path(args.methods).read_text()) if args.methods else default_methods(args, out)
    names = {m for method in methods for m in method["members"]}
    proxy, variances = {}, {}
    for name in names:
        data = np.load(out / "scores" / f"{name}.npz")
        proxy[name], variances[name] = data["mean"], data["variance"] if "variance" in data else None
    gold = np.load(out / "scores" / "gold.npz")["mean"]
    curves = method_curves(
        proxy, variances, gold, [SelectionMethod(**m) for m in methods], num_bootstrap=args.num_bootstrap
    )
    config = {**vars(args), "methods": methods, "gold_accuracy_of_all_samples": float(np.nanmean(gold))}
    title = f"Best-of-n, {gold.shape[0]} prompts, N = {gold.shape[1]}: BT (MAP), Laplace, ensembles"
    save_curves(curves, out / "curves", config, title=title)
    main_names = {"MAP", "Ens", "ICRM", "VRM"} | {f"{label} k=1" for label in MAIN_PENALIZED}
    plot_curves([c for c in curves if c.name in main_names], out / "curves" / "main.png", title=title)
    table = gold_at_max_n(curves)
    write_json(table, out / "gold_at_max_n.json")
    for row in table:
        print(
            f"{row['method']:28s} gold@N {row['gold_mean']:.3f} [{row['gold_ci_low']:.3f}, {row['gold_ci_high']:.3f}]"
            f"  best {row['gold_best']:.3f} (n={row['n_best']})"
        )


def step_calibration(args, out: Path, command: CommandRunner) -> None:
    from ...data.builtin import concise_vs_detailed
    from ...data.loading import load_training_pairs
    from ...laplace import load_posterior
    from ...laplace.evaluation import calibration_summary, pair_predictions
    from ...utils.io import write_json
    from .report import plot_reliability

    seed = args.seeds[0]
    _, held_out = load_training_pairs(str(out / "preferences"), eval_fraction=LAPLACE_EVAL_FRACTION, seed=seed)
    other = concise_vs_detailed()["test"]
    other = other.select(range(min(len(held_out), len(other))))
    results = {}
    for subset in ("last_layer", "lora"):
        folder = bt_dir(out, seed)
        if not (folder / f"laplace_{subset}.safetensors").is_file():
            continue
        posterior = load_posterior(folder, subset=subset)
        tokenizer = _tokenizer(folder)
        same = calibration_summary(pair_predictions(posterior, tokenizer, held_out, max_length=768))
        far = calibration_summary(pair_predictions(posterior, tokenizer, other, max_length=768))
        results[subset] = {
            "held_out": same,
            "other_data_set": far,
            "variance_ratio": far["mean_variance"] / same["mean_variance"],
            "median_variance_ratio": far["median_variance"] / same["median_variance"],
        }
        print(
            f"[calibration] {subset}: ECE MAP {same['ece_map']:.3f} LA {same['ece_laplace']:.3f}; variance ratio "
            f"{results[subset]['variance_ratio']:.2f}",
            flush=True,
        )
        plot_reliability(same, out / f"reliability_{subset}.png", subset)
    write_json(results, out / "calibration.json")


def _tokenizer(folder: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def gold_at_max_n(curves) -> list[dict]:
    """One row per curve: proxy and gold at the largest n (mean and confidence interval), and the best gold and its
    n."""
    table = []
    for curve in curves:
        row = {"method": curve.name, "n": curve.ns[-1], "kl_bon": curve.kl_bon[-1]}
        for metric in ("gold", "proxy"):
            stats = curve.metrics[metric]
            row.update({f"{metric}_{key}": stats[key][-1] for key in ("mean", "ci_low", "ci_high")})
        row["gold_best"] = float(np.max(curve.metrics["gold"]["mean"]))
        row["n_best"] = int(curve.ns[int(np.argmax(curve.metrics["gold"]["mean"]))])
        table.append(row)
    return table


def run_bayesian_reward_models(args: BayesianRewardModelsArguments, command: CommandRunner) -> None:
    """Run the steps of `args.steps` in order (each skipped when its output is in `args.output_dir` already);
    `command` runs the `trl-icrm` commands of the steps that train or fit."""
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    steps = {name: globals()[f"step_{name}"] for name in STEPS}
    for name in STEPS:
        if name in args.steps:
            steps[name](args, out, command)
    os.sync()


__all__ = [
    "MAIN_PENALIZED",
    "STEPS",
    "BayesianRewardModelsArguments",
    "CommandRunner",
    "default_methods",
    "gold_at_max_n",
    "proxy_specs",
    "run_bayesian_reward_models",
]

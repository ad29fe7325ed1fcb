# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Robustness to a spurious length correlation: VRM vs `trl.RewardTrainer` (BT) vs ICRM (K = 0 and K = 4).

Training pairs are drawn so that the chosen response is the longer one in `--bias` (90%) of them, from the steerable
set's seen objectives (each prompt carries the instruction of its objective, e.g. "Answer in one short sentence.",
so the preference is readable from the prompt) and, with `--math_preferences`, the math preference pairs of
`trl-icrm build-math-preferences` (split by problem). Every model is trained from the same backbone with the same
LoRA, steps, batch, learning rate and seed, then evaluated on held-out prompts:

- `in_distribution`: ordinary held-out pairs with the training bias (90% chosen longer);
- `balanced`: chosen longer in half of the pairs;
- `reversed`: chosen always the shorter response.

Accuracy comes with 95% bootstrap intervals over pairs (and over training seeds when several are given); the VRM - BT
difference is bootstrapped on the same pairs. The mean objective weights E[w | x] of the VRM model are reported per
prompt family.

    python benchmarks/vrm_robustness.py --output_dir outputs/vrm-robustness --results_dir docs/results/vrm
    python benchmarks/vrm_robustness.py --math_preferences outputs/math-preferences --seeds 0 1
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import asdict, dataclass, field

import numpy as np
from datasets import Dataset
from trl import TrlParser

from trl_icrm import DEFAULT_MODEL, ICRMReward, SequenceClassifierReward, VRMReward
from trl_icrm.data.spurious import length_bias_splits, longer_share
from trl_icrm.data.steerable import DEFAULT_SEEN_OBJECTIVES, STYLE_INSTRUCTIONS, build_steerable_splits
from trl_icrm.demonstrations import DemonstrationBank, seeded_rng
from trl_icrm.evaluation.steerability import bt_pair_probabilities, pair_probabilities
from trl_icrm.experiments.steerability import (
    SteerableTrainingArguments,
    train_steerable_bt,
    train_steerable_icrm,
    train_steerable_vrm,
)
from trl_icrm.utils.io import new_figure, save_figure, write_csv, write_json


SETS = ("in_distribution", "balanced", "reversed")
METHODS = ("bt", "vrm", "icrm_k0", "icrm_k4")


@dataclass
class RobustnessArguments:
    output_dir: str = field(default="outputs/vrm-robustness", metadata={"help": "Trained models and raw results."})
    results_dir: str = field(default="docs/results/vrm", metadata={"help": "JSON, CSV and figures of the report."})
    model_name_or_path: str = field(default=DEFAULT_MODEL, metadata={"help": "Backbone of every model."})
    math_preferences: str | None = field(default=None, metadata={"help": "Pairs of build-math-preferences."})
    train_size: int = field(default=160, metadata={"help": "Training pairs."})
    eval_size: int = field(default=50, metadata={"help": "Pairs of each evaluation set."})
    bias: float = field(default=0.9, metadata={"help": "Share of training pairs whose chosen response is longer."})
    max_steps: int = field(default=40, metadata={"help": "Training steps of every model."})
    batch_size: int = field(default=4, metadata={"help": "Pairs per training batch."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Learning rate (constant) of every model."})
    max_length: int = field(default=1024, metadata={"help": "Token bound (ICRM: demonstrations + query)."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank of every model."})
    lora_last_layers: int | None = field(default=8, metadata={"help": "LoRA on the last this many layers only."})
    num_demonstrations: int = field(default=4, metadata={"help": "K of ICRM: trained with 0..K, evaluated at 0, K."})
    num_objectives: int = field(default=32, metadata={"help": "VRM: D."})
    num_features: int = field(default=4, metadata={"help": "VRM: d."})
    seeds: list[int] = field(default_factory=lambda: [0], metadata={"help": "Training seeds."})
    bootstrap: int = field(default=2000, metadata={"help": "Bootstrap resamples."})
    methods: list[str] = field(default_factory=lambda: list(METHODS), metadata={"help": "Methods to run."})


# Data
def steerable_pools(seed: int) -> tuple[list[dict], list[dict]]:
    """(train, test) pairs of the seen objectives; the prompt asks for its objective's style."""
    splits = build_steerable_splits(None, DEFAULT_SEEN_OBJECTIVES, seed=seed)

    def with_instruction(row: dict) -> dict:
        content = f"{row['prompt'][0]['content']} {STYLE_INSTRUCTIONS[row['group']]}"
        return {**row, "prompt": [{"role": "user", "content": content}], "family": row["group"]}

    return [with_instruction(r) for r in splits["train"]], [with_instruction(r) for r in splits["test_seen"]]


def math_pools(path: str, seed: int) -> tuple[list[dict], list[dict]]:
    """(train, test) math preference pairs, split by problem (70/30); family `math/<problem family>`."""
    from trl_icrm.data.math_preferences import load_preferences

    rows = load_preferences(path).to_list()
    questions = sorted({str(r.get("question", r["prompt"])) for r in rows})
    random.Random(seed).shuffle(questions)
    test = set(questions[: round(0.3 * len(questions))])
    pools: tuple[list[dict], list[dict]] = ([], [])
    for r in rows:
        pair = {k: r[k] for k in ("prompt", "chosen", "rejected")}
        pair["group"] = pair["family"] = f"math/{r.get('group', 'all')}"
        pools[str(r.get("question", r["prompt"])) in test].append(pair)
    return pools


def make_splits(args: RobustnessArguments) -> tuple[dict[str, list[dict]], dict]:
    train_pool, test_pool = steerable_pools(0)
    if args.math_preferences:
        math_train, math_test = math_pools(args.math_preferences, 0)
        train_pool, test_pool = train_pool + math_train, test_pool + math_test
    splits = length_bias_splits(train_pool, test_pool, args.train_size, args.eval_size, args.bias, seed=0)
    summary = {
        name: {
            "pairs": len(pairs),
            "chosen_longer_share": round(longer_share(pairs), 3),
            "families": dict(sorted(_count(p["family"] for p in pairs).items())),
        }
        for name, pairs in splits.items()
    }
    return splits, summary


def _count(values) -> dict:
    out: dict = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


# Training
def train_models(splits: dict, args: RobustnessArguments, seed: int) -> dict[str, dict]:
    """Train BT, VRM and ICRM (unless already saved in the seed's folder); returns paths and times."""
    train = Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected", "group")} for p in splits["train"]])
    training = SteerableTrainingArguments(
        model_name_or_path=args.model_name_or_path,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        min_demonstrations=0,
        max_demonstrations=args.num_demonstrations,
        max_length=args.max_length,
        lora_r=args.lora_r,
        lora_last_layers=args.lora_last_layers,
        batch_twins=False,
        seed=seed,
    )
    trainers = {
        "bt": lambda out: train_steerable_bt(train, out, training),
        "vrm": lambda out: train_steerable_vrm(
            train, out, training, num_objectives=args.num_objectives, num_features=args.num_features
        ),
        "icrm": lambda out: train_steerable_icrm(train, out, training),
    }
    wanted = {m.split("_")[0] for m in args.methods}
    models = {}
    for name, train_fn in trainers.items():
        out = os.path.join(args.output_dir, f"seed{seed}", name)
        if name not in wanted:
            continue
        if os.path.isfile(os.path.join(out, "config.json")) or os.path.isfile(
            os.path.join(out, "adapter_config.json")
        ):
            models[name] = {"path": out, "seconds": None}
            continue
        result = train_fn(out)
        models[name] = {"path": out, "seconds": result["seconds"]}
        print(f"seed {seed}: trained {name} in {result['seconds']} s", flush=True)
    return models


# Evaluation
def pair_key(pair: dict) -> str:
    return json.dumps([pair[k] for k in ("prompt", "chosen", "rejected")], sort_keys=True)


def demonstrations_for(pairs: list[dict], bank: DemonstrationBank, k: int, seed: int) -> list[list[dict]]:
    """K demonstrations of each pair's family from the training pairs, seeded by the pair (the same pair gets the
    same ones in every evaluation set)."""
    return [bank.draw(p["group"], k, seeded_rng(seed, "demos", pair_key(p))) for p in pairs]


def correctness(probabilities) -> np.ndarray:
    p = np.asarray(probabilities, dtype=float)
    return np.where(p > 0.5, 1.0, np.where(p < 0.5, 0.0, 0.5))


def evaluate_models(
    models: dict, splits: dict, args: RobustnessArguments, seed: int, done: dict | None = None
) -> dict[str, dict[str, list]]:
    """Per method and evaluation set, the correctness (1, 0, or 0.5 for a tie) of every pair; each distinct pair is
    scored once (methods in `done`, evaluated by an earlier run on the same splits, are kept)."""
    out: dict[str, dict[str, list]] = dict(done or {})
    bank = DemonstrationBank.from_rows(splits["train"])
    unique = list({pair_key(p): p for s in SETS for p in splits[s]}.values())
    index = {pair_key(p): i for i, p in enumerate(unique)}

    def by_set(probabilities) -> dict[str, list]:
        values = correctness(probabilities)
        return {s: [float(values[index[pair_key(p)]]) for p in splits[s]] for s in SETS}

    if "bt" in models and "bt" not in out:
        out["bt"] = by_set(bt_pair_probabilities(SequenceClassifierReward(models["bt"]["path"]), unique))
    if "vrm" in models and "vrm" not in out:
        out["vrm"] = by_set(bt_pair_probabilities(VRMReward(models["vrm"]["path"]), unique))
    if "icrm" in models and "icrm_k0" not in out:
        reward = ICRMReward(models["icrm"]["path"], allow_zero_shot=True)
        for k in (0, args.num_demonstrations):
            out[f"icrm_k{k}"] = by_set(pair_probabilities(reward, unique, demonstrations_for(unique, bank, k, seed)))
    return out


def bootstrap_interval(per_seed: list[np.ndarray], resamples: int, seed: int = 0) -> tuple[float, float, float]:
    """Mean accuracy over seeds and pairs, and a 95% interval resampling pairs (and seeds, when several)."""
    rng = np.random.default_rng(seed)
    values = np.stack(per_seed)  # (seeds, pairs)
    means = []
    for _ in range(resamples):
        seeds = rng.integers(0, len(values), len(values)) if len(values) > 1 else np.zeros(1, dtype=int)
        pairs = rng.integers(0, values.shape[1], values.shape[1])
        means.append(values[seeds][:, pairs].mean())
    low, high = np.percentile(means, [2.5, 97.5])
    return float(values.mean()), float(low), float(high)


def summarize(per_seed: dict[int, dict], args: RobustnessArguments) -> dict:
    methods = [m for m in METHODS if all(m in r for r in per_seed.values())]
    table = {
        m: {
            s: dict(
                zip(
                    ("mean", "low", "high"),
                    bootstrap_interval([np.array(r[m][s]) for r in per_seed.values()], args.bootstrap),
                    strict=True,
                )
            )
            for s in SETS
        }
        for m in methods
    }
    differences = {}
    if "vrm" in methods and "bt" in methods:
        for s in SETS:
            diff = [np.array(r["vrm"][s]) - np.array(r["bt"][s]) for r in per_seed.values()]
            differences[s] = dict(zip(("mean", "low", "high"), bootstrap_interval(diff, args.bootstrap), strict=True))
    return {"accuracy": table, "vrm_minus_bt": differences}


# Objective weights of VRM per prompt family
def family_weights(vrm_path: str, pairs: list[dict]) -> dict:
    """Mean E[w | x] per family over the held-out prompts, the total-variation distance between family means, and
    the mean distance of a prompt's E[w] to its own family's mean (the spread within a family)."""
    reward = VRMReward(vrm_path)
    unique = {json.dumps(p["prompt"], sort_keys=True): p for p in pairs}
    rows = list(unique.values())
    weights = reward.objective_weights([p["prompt"] for p in rows], [p["chosen"] for p in rows])
    families = sorted({p["family"] for p in rows})
    means = {f: weights[[p["family"] == f for p in rows]].mean(0) for f in families}
    within = {
        f: float(
            np.mean([0.5 * np.abs(w - means[f]).sum() for w, p in zip(weights, rows, strict=True) if p["family"] == f])
        )
        for f in families
    }
    between = {
        f"{a} | {b}": float(0.5 * np.abs(means[a] - means[b]).sum()) for a in families for b in families if a < b
    }
    counts = _count(p["family"] for p in rows)
    return {
        "mean_weights": {f: means[f].tolist() for f in families},
        "within_tv": within,
        "between_tv": between,
        "prompts": counts,
    }


def plot_weights(weights: dict, path: str) -> str:
    families = list(weights["mean_weights"])
    matrix = np.array([weights["mean_weights"][f] for f in families])
    figure, axes = new_figure((8.0, 0.5 * len(families) + 1.5))
    image = axes.imshow(matrix, aspect="auto", cmap="viridis")
    axes.set_yticks(range(len(families)), families)
    axes.set_xlabel("objective j (D)")
    axes.set_title("VRM: mean E[w | x] per prompt family (held-out prompts)")
    figure.colorbar(image, ax=axes)
    return save_figure(figure, path)


def main(args: RobustnessArguments) -> dict:
    start = time.perf_counter()
    splits, data_summary = make_splits(args)
    print(json.dumps(data_summary, indent=1), flush=True)
    per_seed, times = {}, {}
    for seed in args.seeds:
        models = train_models(splits, args, seed)
        times[seed] = {name: m["seconds"] for name, m in models.items()}
        cache = os.path.join(args.output_dir, f"seed{seed}", "correctness.json")
        done = json.loads(open(cache, encoding="utf-8").read()) if os.path.isfile(cache) else None
        per_seed[seed] = evaluate_models(models, splits, args, seed, done)
        write_json(per_seed[seed], cache)
    results = {"arguments": asdict(args), "data": data_summary, "training_seconds": times, **summarize(per_seed, args)}
    if "vrm" in {m.split("_")[0] for m in args.methods}:
        vrm_path = os.path.join(args.output_dir, f"seed{args.seeds[0]}", "vrm")
        results["vrm_weights"] = family_weights(vrm_path, [p for s in SETS for p in splits[s]])
        plot_weights(results["vrm_weights"], os.path.join(args.results_dir, "weights_by_family.png"))
    results["seconds"] = round(time.perf_counter() - start, 1)
    write_json(results, os.path.join(args.results_dir, "vrm_robustness.json"))
    rows = [
        {"method": m, "set": s, **{k: round(v, 4) for k, v in results["accuracy"][m][s].items()}}
        for m in results["accuracy"]
        for s in SETS
    ]
    write_csv(rows, os.path.join(args.results_dir, "accuracy.csv"))
    for row in rows:
        print(row, flush=True)
    print("VRM - BT:", results["vrm_minus_bt"], flush=True)
    return results


if __name__ == "__main__":
    (parsed,) = TrlParser((RobustnessArguments,)).parse_args_and_config()
    main(parsed)

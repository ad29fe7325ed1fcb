# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The steerability benchmark end to end: train (optionally) an ICRM and a BT model on the seen objectives of the
steerable data set, then evaluate both ([`trl_icrm.evaluation.steerability.evaluate_steerability`]).

Run by `trl-icrm steer-eval` and `examples/steerability.py`:

    trl-icrm steer-eval --output_dir outputs/steerability                       # trains both with LoRA, then evaluates
    trl-icrm steer-eval --icrm_model outputs/steerability/icrm --bt_model outputs/steerability/bt   # evaluate only
    trl-icrm steer-eval --benchmark pku_saferlhf --benchmark_path data/pku.jsonl --icrm_model my-icrm \
        --conflict helpfulness harmlessness

Evaluation sets on the built-in data: `unseen` (test prompts of the unseen objectives, demonstrations from their train
prompts) and `seen` (test prompts of the seen objectives, demonstrations from the training pairs). With
`--benchmark`, the benchmark's pairs are split per group into demonstrations and evaluation pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm

from ..data.steerable import (
    DEFAULT_SEEN_OBJECTIVES,
    add_twin_column,
    build_steerable_splits,
    load_responses,
    summarize,
)
from ..evaluation.steerability import demonstration_pools
from ..utils.default_model import DEFAULT_MODEL, resolve_model_name_or_path
from .steerability_report import evaluate_steerability


LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "gate_proj"]


def add_steer_eval_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    data = parser.add_argument_group("data")
    data.add_argument("--responses", default=None, help="Steerable responses (JSON lines; default: the bundled set).")
    data.add_argument("--seen_objectives", nargs="+", default=list(DEFAULT_SEEN_OBJECTIVES))
    data.add_argument(
        "--cross_style_pairs",
        type=int,
        default=0,
        help="Also train on cross-style objectives 's>t' between seen styles, this many pairs each (0: none).",
    )
    data.add_argument(
        "--benchmark",
        default=None,
        help="Evaluate on a public benchmark instead (see --help of "
        "trl_icrm.data.benchmarks): pku_saferlhf, rm_bench, reward_bench_2, vpl_hh_rlhf.",
    )
    data.add_argument("--benchmark_path", default=None, help="Hub id or local file of the benchmark.")
    data.add_argument(
        "--demonstration_fraction",
        type=float,
        default=0.5,
        help="With --benchmark: share of each group's pairs used as demonstrations.",
    )
    data.add_argument("--max_eval_pairs", type=int, default=12, help="At most this many evaluation pairs per group.")
    data.add_argument(
        "--seen_groups",
        nargs="+",
        default=None,
        help="Seen objectives to evaluate (default: the --conflict pair; 'all' for every seen objective).",
    )
    models = parser.add_argument_group("models")
    models.add_argument("--icrm_model", default=None, help="Trained ICRM model; trained here (LoRA) when absent.")
    models.add_argument("--bt_model", default=None, help="Trained BT model; trained here (LoRA) when absent.")
    models.add_argument("--no_bt", action="store_true", help="Skip the BT comparison.")
    models.add_argument("--base_model", default=DEFAULT_MODEL, help="Backbone to train from.")
    train = parser.add_argument_group("training (when a model is trained here)")
    train.add_argument("--max_steps", type=int, default=60)
    train.add_argument("--batch_size", type=int, default=4)
    train.add_argument("--learning_rate", type=float, default=1e-3)
    train.add_argument("--min_demonstrations", type=int, default=0, help="K ~ U{this..max} while training ICRM.")
    train.add_argument("--max_demonstrations", type=int, default=4, help="K ~ U{min..this} while training ICRM.")
    train.add_argument("--max_length", type=int, default=1536)
    train.add_argument("--lora_r", type=int, default=16, help="LoRA rank; 0 fine-tunes all weights.")
    train.add_argument(
        "--batch_twins",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Batch each ICRM training pair with its flipped twin under the conflicting objective (docs/method.md).",
    )
    train.add_argument("--save_steps", type=int, default=None, help="Also save ICRM checkpoints this often.")
    evaluation = parser.add_argument_group("evaluation")
    evaluation.add_argument("--ks", type=int, nargs="+", default=[0, 1, 2, 4, 8])
    evaluation.add_argument("--num_draws", type=int, default=2, help="Draws of demonstrations per K > 0.")
    evaluation.add_argument(
        "--conflict",
        nargs=2,
        default=["concise", "detailed"],
        metavar=("A", "B"),
        help="Two conflicting groups for the mixing front.",
    )
    evaluation.add_argument("--ratios", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    evaluation.add_argument("--mix_k", type=int, default=8)
    evaluation.add_argument("--mix_draws", type=int, default=1)
    parser.add_argument("--output_dir", default="outputs/steerability")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def _cap_per_group(pairs: Sequence[dict], cap: int | None, seed: int) -> list[dict]:
    if cap is None:
        return list(pairs)
    by_group: dict[str, list[dict]] = {}
    for pair in pairs:
        by_group.setdefault(pair["group"], []).append(pair)
    out = []
    for group in sorted(by_group):
        rows = by_group[group]
        random.Random(f"{seed}-{group}").shuffle(rows)
        out += rows[:cap]
    return out


def builtin_eval_sets(
    splits, max_eval_pairs: int | None = None, seed: int = 0, seen_groups: Sequence[str] | None = None
) -> dict[str, tuple[list, dict]]:
    """`unseen` and `seen` evaluation sets `(pairs, demonstration pools)` of the steerable data set (`seen` limited
    to `seen_groups` when given)."""
    seen = [p for p in splits["test_seen"].to_list() if seen_groups is None or p["group"] in seen_groups]
    return {
        "unseen": (
            _cap_per_group(splits["test_unseen"].to_list(), max_eval_pairs, seed),
            demonstration_pools(splits["demos_unseen"]),
        ),
        "seen": (_cap_per_group(seen, max_eval_pairs, seed), demonstration_pools(splits["train"])),
    }


def benchmark_eval_sets(pairs, demonstration_fraction: float, max_eval_pairs: int | None, seed: int):
    """Split each group of a benchmark's pairs into demonstrations and evaluation pairs (seeded, by prompt)."""
    prompts = sorted({repr(p["prompt"]) for p in pairs})
    random.Random(seed).shuffle(prompts)
    demo_prompts = set(prompts[: round(demonstration_fraction * len(prompts))])
    demos = [p for p in pairs if repr(p["prompt"]) in demo_prompts]
    evaluation = [p for p in pairs if repr(p["prompt"]) not in demo_prompts]
    return {"benchmark": (_cap_per_group(evaluation, max_eval_pairs, seed), demonstration_pools(demos))}


def train_steerable_models(
    train_dataset,
    output_dir: str,
    base_model: str = DEFAULT_MODEL,
    max_steps: int = 150,
    batch_size: int = 4,
    learning_rate: float = 5e-4,
    max_demonstrations: int = 4,
    max_length: int = 1536,
    lora_r: int = 16,
    min_demonstrations: int = 0,
    train_bt: bool = True,
    seed: int = 0,
    train_icrm: bool = True,
    batch_twins: bool = False,
    save_steps: int | None = None,
) -> dict[str, Any]:
    """Train an ICRM model (`<output_dir>/icrm`, with `train_icrm`) and a BT model (`<output_dir>/bt`, merged, with
    `train_bt`) on the same pairs, with the same steps, batch, learning rate and LoRA rank (`lora_r=0`: all weights).
    With `batch_twins` each ICRM batch holds pairs next to their flipped twins ([`add_twin_column`]); `save_steps`
    keeps ICRM checkpoints. Returns paths, times and the training logs."""
    from peft import LoraConfig
    from trl import RewardTrainer

    from ..trainer import bt_config_from, save_reward_model
    from ..trainer.icrm_config import ICRMConfig
    from ..trainer.icrm_trainer import ICRMRewardTrainer

    common = {
        "max_steps": max_steps,
        "per_device_train_batch_size": batch_size,
        "learning_rate": learning_rate,
        "lr_scheduler_type": "constant",
        "gradient_checkpointing": False,
        "logging_steps": 10,
        "logging_first_step": True,
        "save_strategy": "no",
        "report_to": [],
        "seed": seed,
        "max_length": max_length,
    }

    def peft_config():
        if lora_r == 0:
            return None
        return LoraConfig(r=lora_r, lora_alpha=2 * lora_r, target_modules=LORA_TARGETS, task_type="SEQ_CLS")

    out: dict[str, Any] = {}
    if train_icrm:
        icrm_dir = os.path.join(output_dir, "icrm")
        args = ICRMConfig(
            output_dir=icrm_dir,
            min_demonstrations=min_demonstrations,
            max_demonstrations=max_demonstrations,
            batch_together_column="twin" if batch_twins else None,
            **{**common, **({"save_strategy": "steps", "save_steps": save_steps} if save_steps else {})},
        )
        start = time.perf_counter()
        icrm_data = add_twin_column(train_dataset) if batch_twins else train_dataset
        trainer = ICRMRewardTrainer(base_model, args=args, train_dataset=icrm_data, peft_config=peft_config())
        trainer.train()
        trainer.save_model(icrm_dir)
        out["icrm"] = {
            "path": icrm_dir,
            "seconds": round(time.perf_counter() - start, 1),
            "log_history": trainer.state.log_history,
        }
    if train_bt:
        bt_dir = os.path.join(output_dir, "bt")
        bt_args = bt_config_from(ICRMConfig(output_dir=bt_dir, **common))
        start = time.perf_counter()
        bt = RewardTrainer(
            resolve_model_name_or_path(base_model),
            args=bt_args,
            train_dataset=train_dataset.select_columns(["prompt", "chosen", "rejected"]),
            peft_config=peft_config(),
        )
        bt.train()
        save_reward_model(bt, bt_dir)
        out["bt"] = {
            "path": bt_dir,
            "seconds": round(time.perf_counter() - start, 1),
            "log_history": bt.state.log_history,
        }
    return out


def steer_eval_main(args: argparse.Namespace) -> int:
    from ..rewards import ICRMReward, SequenceClassifierReward
    from ..utils.io import write_json

    os.makedirs(args.output_dir, exist_ok=True)
    record: dict[str, Any] = {"args": {k: v for k, v in vars(args).items() if not callable(v)}}
    if args.benchmark:
        from ..data.benchmarks import load_preference_benchmark

        pairs = load_preference_benchmark(args.benchmark, args.benchmark_path).to_list()
        eval_sets = benchmark_eval_sets(pairs, args.demonstration_fraction, args.max_eval_pairs, args.seed)
        conflict_set = "benchmark"
        train_dataset = None
    else:
        splits = build_steerable_splits(
            load_responses(args.responses),
            args.seen_objectives,
            seed=args.seed,
            cross_style_objectives=args.cross_style_pairs,
        )
        record["data"] = summarize(splits)
        seen_groups = args.seen_groups or list(args.conflict)
        eval_sets = builtin_eval_sets(
            splits, args.max_eval_pairs, args.seed, None if "all" in seen_groups else seen_groups
        )
        conflict_set = "seen" if args.conflict[0] in args.seen_objectives else "unseen"
        train_dataset = splits["train"].shuffle(seed=args.seed)
    need_icrm = args.icrm_model is None
    need_bt = args.bt_model is None and not args.no_bt
    if need_icrm or need_bt:
        if train_dataset is None:
            raise SystemExit("Pass --icrm_model (and --bt_model or --no_bt) to evaluate on a benchmark.")
        record["training"] = train_steerable_models(
            train_dataset,
            args.output_dir,
            args.base_model,
            args.max_steps,
            args.batch_size,
            args.learning_rate,
            args.max_demonstrations,
            args.max_length,
            args.lora_r,
            min_demonstrations=args.min_demonstrations,
            train_bt=need_bt,
            seed=args.seed,
            train_icrm=need_icrm,
            batch_twins=args.batch_twins,
            save_steps=args.save_steps,
        )
        if need_icrm:
            args.icrm_model = record["training"]["icrm"]["path"]
        if need_bt:
            args.bt_model = record["training"]["bt"]["path"]
    reward = ICRMReward(args.icrm_model, allow_zero_shot=True, max_length=args.max_length)
    bt_reward = None if args.no_bt else SequenceClassifierReward(args.bt_model, name="bt")
    start = time.perf_counter()
    results = evaluate_steerability(
        reward,
        eval_sets,
        args.output_dir,
        bt_reward=bt_reward,
        ks=args.ks,
        num_draws=args.num_draws,
        conflict=tuple(args.conflict),
        conflict_set=conflict_set,
        ratios=args.ratios,
        mix_k=args.mix_k,
        mix_draws=args.mix_draws,
        seed=args.seed,
        progress=lambda jobs: tqdm(jobs, desc="Evaluating (K, draw)", unit="draw"),
    )
    record["evaluation_seconds"] = round(time.perf_counter() - start, 1)
    write_json(record, os.path.join(args.output_dir, "run.json"))
    print(json.dumps(headline(results), indent=2))
    print(f"Results and plots: {args.output_dir}")
    return 0


def headline(results: dict[str, Any]) -> dict[str, Any]:
    """Mean accuracy per K and set, BT per group, ECE at the largest K and the conflict front's hypervolume."""
    out: dict[str, Any] = {}
    for name, result in results["sets"].items():
        out[name] = {
            "accuracy_by_k": {str(k): round(v["mean"], 3) for k, v in result["mean_over_groups"].items()},
            "by_group": {
                g: {str(k): round(v["mean"], 3) for k, v in by_k.items()} for g, by_k in result["summary"].items()
            },
            "bt": {g: round(v, 3) for g, v in (result["bt"] or {}).items()},
            "ece_at_max_k": round(result["calibration"][max(results["ks"])]["ece"], 3),
        }
    if "conflict" in results:
        out["conflict_hypervolume"] = {
            "icrm": round(results["conflict"]["hypervolume"], 3),
            "bt": round(results["conflict"].get("bt_hypervolume", float("nan")), 3),
        }
    return out


__all__ = [
    "add_steer_eval_arguments",
    "benchmark_eval_sets",
    "builtin_eval_sets",
    "headline",
    "steer_eval_main",
    "train_steerable_models",
]

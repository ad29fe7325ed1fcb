# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The steerability benchmark end to end: train (optionally) an ICRM and a BT model on the seen objectives of the
steerable data set, then evaluate both ([`trl_icrm.experiments.steerability_report.evaluate_steerability`]).

Run by `trl-icrm steer-eval`:

    trl-icrm steer-eval --output_dir outputs/steerability                      # trains both with LoRA, then evaluates
    trl-icrm steer-eval --icrm_model_name_or_path outputs/steerability/icrm \
        --bt_model_name_or_path outputs/steerability/bt                        # evaluate only
    trl-icrm steer-eval --benchmark pku_saferlhf --dataset_name data/pku.jsonl --icrm_model_name_or_path my-icrm \
        --no_bt --conflict helpfulness harmlessness

Evaluation sets on the built-in data ([`builtin_steerability_data`]): `unseen` (test prompts of the unseen objectives,
demonstrations from their train prompts) and `seen` (test prompts of the seen objectives, demonstrations from the
training pairs). On a benchmark ([`benchmark_steerability_data`]), the benchmark's pairs are split per group into
demonstrations and evaluation pairs. [`train_steerable_models`] trains both models with one set of
[`SteerableTrainingArguments`].
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..data.steerable import (
    add_twin_column,
    build_steerable_splits,
    load_responses,
    summarize,
)
from ..evaluation.steerability import demonstration_pools
from ..utils.default_model import DEFAULT_MODEL, resolve_model_name_or_path


@dataclass
class SteerableTrainingArguments:
    """How [`train_steerable_models`] trains the ICRM and the BT model: the same backbone, steps, batch, learning rate,
    length bound, LoRA rank and seed for both."""

    model_name_or_path: str = field(default=DEFAULT_MODEL, metadata={"help": "Backbone the models are trained from."})
    max_steps: int = field(default=60, metadata={"help": "Training steps of each model."})
    batch_size: int = field(default=4, metadata={"help": "Pairs per training batch."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Learning rate (constant schedule)."})
    min_demonstrations: int = field(default=0, metadata={"help": "K ~ U{this..max} while training ICRM."})
    max_demonstrations: int = field(default=4, metadata={"help": "K ~ U{min..this} while training ICRM."})
    max_length: int = field(
        default=1536, metadata={"help": "Token bound of demonstrations + query (training and scoring)."}
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank; 0 fine-tunes all weights."})
    lora_last_layers: int | None = field(
        default=None,
        metadata={"help": "LoRA on the last this many layers only (backward stops below them); default: all."},
    )
    batch_twins: bool = field(
        default=True,
        metadata={
            "help": "Batch each ICRM training pair with its flipped twin under the conflicting objective "
            "(docs/method.md)."
        },
    )
    save_steps: int | None = field(default=None, metadata={"help": "Also save ICRM checkpoints this often."})
    seed: int = field(default=0, metadata={"help": "Seed of the data splits, training and evaluation draws."})
    report_to: list[str] = field(
        default_factory=list,
        metadata={"help": "Where both trainings report their logs (e.g. wandb, tensorboard; none by default)."},
    )


@dataclass
class SteerabilityData:
    """What the benchmark evaluates on: `eval_sets` (`{name: (pairs, demonstration pools)}`), the set whose groups
    the conflict front mixes, the training pairs (`None` on a benchmark) and a summary of the splits."""

    eval_sets: dict[str, tuple[list, dict]]
    conflict_set: str
    train_dataset: Any | None = None
    summary: dict[str, Any] | None = None


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


def builtin_steerability_data(
    seen_objectives: Sequence[str],
    conflict: Sequence[str],
    responses: str | os.PathLike | None = None,
    cross_style_pairs: int = 0,
    max_eval_pairs: int | None = None,
    seen_groups: Sequence[str] | None = None,
    seed: int = 0,
) -> SteerabilityData:
    """The steerable data set ([`~trl_icrm.data.steerable.build_steerable_splits`] of `responses`, default: the bundled
    set) as [`SteerabilityData`]: training pairs of the `seen_objectives` and the [`builtin_eval_sets`], the `seen`
    set limited to `seen_groups` (default: the `conflict` pair; `["all"]`: every seen objective)."""
    splits = build_steerable_splits(
        load_responses(responses), seen_objectives, seed=seed, cross_style_objectives=cross_style_pairs
    )
    seen_groups = list(seen_groups or conflict)
    eval_sets = builtin_eval_sets(splits, max_eval_pairs, seed, None if "all" in seen_groups else seen_groups)
    return SteerabilityData(
        eval_sets=eval_sets,
        conflict_set="seen" if conflict[0] in seen_objectives else "unseen",
        train_dataset=splits["train"].shuffle(seed=seed),
        summary=summarize(splits),
    )


def benchmark_steerability_data(
    benchmark: str,
    benchmark_path: str | None = None,
    demonstration_fraction: float = 0.5,
    max_eval_pairs: int | None = None,
    seed: int = 0,
    split: str | None = None,
    config: str | None = None,
) -> SteerabilityData:
    """A public preference benchmark ([`~trl_icrm.data.benchmarks.load_preference_benchmark`]; its own `split` by
    default) as [`SteerabilityData`], split by [`benchmark_eval_sets`]; it has no training pairs."""
    from ..data.benchmarks import load_preference_benchmark

    pairs = load_preference_benchmark(benchmark, benchmark_path, split, config).to_list()
    eval_sets = benchmark_eval_sets(pairs, demonstration_fraction, max_eval_pairs, seed)
    return SteerabilityData(eval_sets=eval_sets, conflict_set="benchmark")


def _sample_sources(pairs: Sequence[dict], cap: int | None, seed: int, id_column: str = "pair_id") -> list[dict]:
    """At most `cap` pairs per group, taken in one seeded random order of the source pairs (`id_column`; each pair is
    its own source without it) shared by every group: a source kept in one group is kept in the others, so a pair's
    conflicting twins stay together."""
    if cap is None:
        return list(pairs)
    sources = [repr(p.get(id_column, i)) for i, p in enumerate(pairs)]
    order = sorted(set(sources))
    random.Random(seed).shuffle(order)
    rank = {source: i for i, source in enumerate(order)}
    by_group: dict[str, list[int]] = {}
    for i, pair in enumerate(pairs):
        by_group.setdefault(pair["group"], []).append(i)
    kept = sorted(i for group in by_group.values() for i in sorted(group, key=lambda i: rank[sources[i]])[:cap])
    return [pairs[i] for i in kept]


def pairs_steerability_data(
    dataset_name: str,
    dataset_config: str | None = None,
    dataset_train_split: str = "train",
    dataset_test_split: str | None = "test",
    demonstration_fraction: float = 0.5,
    max_eval_pairs: int | None = None,
    seed: int = 0,
    group_column: str = "group",
) -> SteerabilityData:
    """Your own preference pairs with a group column (any format `trl-icrm train` reads:
    [`~trl_icrm.data.loading.load_preference_splits`]) as [`SteerabilityData`]. The evaluated pairs are the test split
    where there is one (e.g. `trl-icrm build-hh-objectives`'s held-out prompts), else the training split; their
    prompts are split (seeded) into demonstration prompts and evaluation prompts ([`benchmark_eval_sets`]). With a
    test split, the evaluation pairs form a `seen` set (groups the training split has) and a `held_out` set (groups
    only the test split has); without one, a single `benchmark` set. Each group keeps at most `max_eval_pairs` pairs,
    chosen by source pair (`pair_id`) so that a pair's twins under other objectives stay together. No pair is trained
    on here."""
    from ..data.loading import load_preference_splits

    train, test = load_preference_splits(dataset_name, dataset_config, dataset_train_split, dataset_test_split)
    pairs = test if test is not None else train
    if group_column not in pairs.column_names:
        raise ValueError(
            f"Steerability is measured per group: {dataset_name!r} has no {group_column!r} column (its columns are "
            f"{sorted(pairs.column_names)}); or name a benchmark with --benchmark."
        )
    keep = [c for c in ("prompt", "chosen", "rejected", "pair_id") if c in pairs.column_names]
    rows = [{**{c: row[c] for c in keep}, "group": str(row[group_column])} for row in pairs]
    evaluation, pools = benchmark_eval_sets(rows, demonstration_fraction, None, seed)["benchmark"]
    if test is None:
        sets = {"benchmark": evaluation}
    else:
        seen_groups = {str(g) for g in train.unique(group_column)} if group_column in train.column_names else set()
        sets = {
            "seen": [p for p in evaluation if p["group"] in seen_groups],
            "held_out": [p for p in evaluation if p["group"] not in seen_groups],
        }
    eval_sets = {
        name: (_sample_sources(subset, max_eval_pairs, seed), pools) for name, subset in sets.items() if subset
    }
    summary: dict[str, Any] = {
        name: {"pairs": len(rows), "groups": sorted({p["group"] for p in rows})}
        for name, (rows, _) in eval_sets.items()
    }
    summary["demonstrations"] = {group: len(rows) for group, rows in sorted(pools.items())}
    conflict_set = "seen" if "seen" in eval_sets else next(iter(eval_sets))
    return SteerabilityData(eval_sets=eval_sets, conflict_set=conflict_set, summary=summary)


def drop_overlong_pairs(reward, data: SteerabilityData) -> dict[str, int]:
    """Drop from `data.eval_sets` the pairs whose query alone (prompt + either response) is longer than the ICRM
    `reward`'s `max_length` (a query is never cut), as `overlong_query="skip"` does in training; returns the number
    dropped per set."""
    if reward.max_length is None:
        return {}
    dropped = {}
    for name, (pairs, pools) in list(data.eval_sets.items()):
        kept = [
            pair
            for pair in pairs
            if all(
                len(reward.renderer.encode_query(pair["prompt"], pair[side])) <= reward.max_length
                for side in ("chosen", "rejected")
            )
        ]
        dropped[name] = len(pairs) - len(kept)
        data.eval_sets[name] = (kept, pools)
    return dropped


def _common_training_values(args: SteerableTrainingArguments) -> dict[str, Any]:
    return {
        "max_steps": args.max_steps,
        "per_device_train_batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "lr_scheduler_type": "constant",
        "gradient_checkpointing": False,
        "logging_steps": 10,
        "logging_first_step": True,
        "save_strategy": "no",
        "report_to": list(args.report_to),
        "seed": args.seed,
        "max_length": args.max_length,
    }


def _peft_config(args: SteerableTrainingArguments):
    if args.lora_r == 0:
        return None
    from peft import LoraConfig

    from ..models import LORA_TARGET_MODULES

    layers = None
    if args.lora_last_layers:
        from ..models import read_model_config

        total = read_model_config(args.model_name_or_path).get_text_config().num_hidden_layers
        layers = list(range(max(0, total - args.lora_last_layers), total))
    return LoraConfig(
        r=args.lora_r,
        lora_alpha=2 * args.lora_r,
        target_modules=LORA_TARGET_MODULES,
        task_type="SEQ_CLS",
        layers_to_transform=layers,
    )


def train_steerable_icrm(train_dataset, output_dir: str, args: SteerableTrainingArguments) -> dict[str, Any]:
    """Train the ICRM model into `output_dir` (twin batches with `args.batch_twins`, checkpoints every
    `args.save_steps`); returns its path, training time and log."""
    from ..trainer.icrm_config import ICRMConfig
    from ..trainer.icrm_trainer import ICRMRewardTrainer

    checkpoints = {"save_strategy": "steps", "save_steps": args.save_steps} if args.save_steps else {}
    config = ICRMConfig(
        output_dir=output_dir,
        min_demonstrations=args.min_demonstrations,
        max_demonstrations=args.max_demonstrations,
        batch_together_column="twin" if args.batch_twins else None,
        **{**_common_training_values(args), **checkpoints},
    )
    start = time.perf_counter()
    data = add_twin_column(train_dataset) if args.batch_twins else train_dataset
    trainer = ICRMRewardTrainer(
        args.model_name_or_path, args=config, train_dataset=data, peft_config=_peft_config(args)
    )
    return _train_and_save(trainer, output_dir, start)


def _train_and_save(trainer, output_dir: str, start: float, save: Callable | None = None) -> dict[str, Any]:
    """Train, save to `output_dir` (`save(trainer, output_dir)`; default: `trainer.save_model`), and return
    `{path, seconds, log_history}` (seconds since `start`)."""
    trainer.train()
    if save is None:
        trainer.save_model(output_dir)
    else:
        save(trainer, output_dir)
    return {
        "path": output_dir,
        "seconds": round(time.perf_counter() - start, 1),
        "log_history": trainer.state.log_history,
    }


def train_steerable_bt(train_dataset, output_dir: str, args: SteerableTrainingArguments) -> dict[str, Any]:
    """Train the BT model (`trl.RewardTrainer`) into `output_dir`, merged; returns its path, training time and log."""
    from trl import RewardTrainer

    from ..trainer import bt_config_from, save_reward_model
    from ..trainer.icrm_config import ICRMConfig

    config = bt_config_from(ICRMConfig(output_dir=output_dir, **_common_training_values(args)))
    start = time.perf_counter()
    trainer = RewardTrainer(
        resolve_model_name_or_path(args.model_name_or_path),
        args=config,
        train_dataset=train_dataset.select_columns(["prompt", "chosen", "rejected"]),
        peft_config=_peft_config(args),
    )
    return _train_and_save(trainer, output_dir, start, save=save_reward_model)


def train_steerable_vrm(
    train_dataset, output_dir: str, args: SteerableTrainingArguments, **vrm_values: Any
) -> dict[str, Any]:
    """Train a VRM model (`VRMRewardTrainer`) into `output_dir` with the budget, schedule, LoRA and seed of the ICRM
    and BT models, and the VRM settings `vrm_values` (e.g. `num_objectives`); returns its path, time and log."""
    from ..trainer import VRMConfig, VRMRewardTrainer, bt_config_from
    from ..trainer.icrm_config import ICRMConfig

    config = bt_config_from(
        ICRMConfig(output_dir=output_dir, **_common_training_values(args)), VRMConfig, **vrm_values
    )
    start = time.perf_counter()
    trainer = VRMRewardTrainer(
        args.model_name_or_path,
        args=config,
        train_dataset=train_dataset.select_columns(["prompt", "chosen", "rejected"]),
        peft_config=_peft_config(args),
    )
    return _train_and_save(trainer, output_dir, start)


def train_steerable_models(
    train_dataset,
    output_dir: str,
    args: SteerableTrainingArguments | None = None,
    train_icrm: bool = True,
    train_bt: bool = True,
) -> dict[str, Any]:
    """Train an ICRM model (`<output_dir>/icrm`, with `train_icrm`) and a BT model (`<output_dir>/bt`, merged, with
    `train_bt`) on the same pairs with the same [`SteerableTrainingArguments`] (`lora_r=0`: all weights). With
    `batch_twins` each ICRM batch holds pairs next to their flipped twins ([`add_twin_column`]); `save_steps` keeps
    ICRM checkpoints. Returns `{"icrm": ..., "bt": ...}`: paths, times and the training logs."""
    args = args or SteerableTrainingArguments()
    out: dict[str, Any] = {}
    if train_icrm:
        out["icrm"] = train_steerable_icrm(train_dataset, os.path.join(output_dir, "icrm"), args)
    if train_bt:
        out["bt"] = train_steerable_bt(train_dataset, os.path.join(output_dir, "bt"), args)
    return out


class SteerabilityModelError(ValueError):
    """A given model of the wrong kind, or a model to train without training pairs (a benchmark)."""


def steerability_models(
    icrm_path: str | None,
    bt_path: str | None,
    with_bt: bool,
    data: SteerabilityData,
    output_dir: str,
    training_args: SteerableTrainingArguments,
    record: dict[str, Any],
) -> tuple[str, str | None]:
    """(ICRM model, BT model or None without `with_bt`): those given, checked to be of their kind before any training,
    and the others trained on `data.train_dataset` ([`train_steerable_models`]; their logs go to `record["training"]`).

    Raises:
        SteerabilityModelError: A given model of the wrong kind, or a model to train without training pairs.
    """
    from ..rewards import reward_model_kind

    for path, kind in ((icrm_path, "icrm"), (bt_path, "bt")):  # a typo fails now, not after minutes of training
        if path is not None and reward_model_kind(path) != kind:
            raise SteerabilityModelError(
                f"{path} is a {reward_model_kind(path)!r} reward model, not the {kind!r} model expected."
            )
    need_icrm, need_bt = icrm_path is None, bt_path is None and with_bt
    if need_icrm or need_bt:
        if data.train_dataset is None:
            raise SteerabilityModelError(
                "Pass --icrm_model_name_or_path (and --bt_model_name_or_path or --no_bt) to evaluate on a benchmark or "
                "your own pairs (--dataset_name): they hold no training pairs."
            )
        record["training"] = train_steerable_models(
            data.train_dataset, output_dir, training_args, train_icrm=need_icrm, train_bt=need_bt
        )
        icrm_path = record["training"]["icrm"]["path"] if need_icrm else icrm_path
        bt_path = record["training"]["bt"]["path"] if need_bt else bt_path
    return icrm_path, bt_path


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
        conflicting = result.get("intervals", {}).get("conflicting")
        if conflicting:
            out[name]["conflicting"] = {
                str(k): [round(v["mean"], 3), round(v["low"], 3), round(v["high"], 3)] for k, v in conflicting.items()
            }
    if "conflict" in results:
        out["conflict_hypervolume"] = {
            "icrm": round(results["conflict"]["hypervolume"], 3),
            "bt": round(results["conflict"].get("bt_hypervolume", float("nan")), 3),
        }
    return out


__all__ = [
    "SteerabilityData",
    "SteerabilityModelError",
    "SteerableTrainingArguments",
    "benchmark_eval_sets",
    "benchmark_steerability_data",
    "builtin_eval_sets",
    "builtin_steerability_data",
    "drop_overlong_pairs",
    "headline",
    "pairs_steerability_data",
    "steerability_models",
    "train_steerable_bt",
    "train_steerable_icrm",
    "train_steerable_models",
    "train_steerable_vrm",
]

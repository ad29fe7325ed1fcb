# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""`trl-icrm steer-eval`: steerability of ICRM vs a BT reward model, on the steerable data set made with the embedded
model or on a public preference benchmark.

Trains (unless given) an ICRM model and a BT model with LoRA on the *seen* objectives (length, tone and compliance;
with `--cross_style_pairs`, cross-style preferences too), then measures, on held-out prompts:

- accuracy vs K demonstrations (`--ks`) on the *unseen* objectives (bullets vs prose) and the seen ones, with 95%
  confidence intervals over draws of demonstrations, next to the BT model;
- calibration of the posterior mean (ECE, reliability diagram);
- the conflict between two objectives (`--conflict`, concise vs detailed by default): contexts mixing their
  demonstrations at the weights `--ratios`, traced as (accuracy on one, accuracy on the other) with the hypervolume
  of the front, ICRM vs BT.

    trl-icrm steer-eval --output_dir outputs/steerability-twins --max_steps 360 --learning_rate 5e-4 \\
        --min_demonstrations 1 --max_demonstrations 4 --batch_twins --save_steps 40
    trl-icrm steer-eval --icrm_model_name_or_path outputs/steerability/icrm \\
        --bt_model_name_or_path outputs/steerability/bt                       # evaluate trained models only
    trl-icrm steer-eval --benchmark pku_saferlhf --dataset_name data/pku.jsonl \\
        --icrm_model_name_or_path my-icrm --no_bt --conflict helpfulness harmlessness
    trl-icrm steer-eval --dataset_name my_pairs.jsonl --icrm_model_name_or_path my-icrm --no_bt --conflict a b

The data: the steerable data set (trained on, then evaluated), a benchmark (`--benchmark`; `--dataset_name` names your
copy of it, default its hub id), or your own preference pairs with a `group` column (`--dataset_name` alone: any format
`trl-icrm train` reads, its `--dataset_test_split` where it has one), evaluated like a benchmark: each group's pairs
split into demonstrations and evaluation pairs.

Writes `steerability.json`, `accuracy_vs_k.csv`, the plots and `run.json` (arguments, data, training logs) to
`--output_dir`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from trl import ScriptArguments

from ..data.steerable import DEFAULT_SEEN_OBJECTIVES
from ..experiments.steerability import SteerabilityData, SteerableTrainingArguments
from ._common import command_parser


@dataclass
class SteerEvalArguments(ScriptArguments):
    """Arguments of `trl-icrm steer-eval` (besides the [`SteerableTrainingArguments`] of the models trained here): the
    data (TRL's data set arguments `--dataset_name`, `--dataset_config`, `--dataset_train_split`,
    `--dataset_test_split`), the models and the evaluation."""

    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "With --benchmark: your copy of the benchmark (hub id, folder or file; default: its hub id). "
            "Alone: your own preference pairs with a 'group' column (as `trl-icrm train` reads them), evaluated like "
            "a benchmark (needs --icrm_model_name_or_path)."
        },
    )
    dataset_test_split: str | None = field(
        default=None,
        metadata={"help": "Split evaluated (default: the benchmark's own; your pairs: 'test' where there is one)."},
    )

    output_dir: str = field(default="outputs/steerability", metadata={"help": "Folder of the models and results."})
    responses: str | None = field(
        default=None, metadata={"help": "Steerable responses (JSON lines; none: the bundled set)."}
    )
    seen_objectives: list[str] = field(
        default_factory=lambda: list(DEFAULT_SEEN_OBJECTIVES), metadata={"help": "Objectives the models train on."}
    )
    cross_style_pairs: int = field(
        default=0,
        metadata={
            "help": "Also train on cross-style objectives 's>t' between seen styles, this many pairs each (0: none)."
        },
    )
    benchmark: str | None = field(
        default=None,
        metadata={
            "help": "Evaluate on a public benchmark instead: pku_saferlhf, rm_bench, reward_bench_2 or vpl_hh_rlhf "
            "(needs --icrm_model_name_or_path)."
        },
    )
    benchmark_path: str | None = field(default=None, metadata={"help": "Deprecated: use --dataset_name."})
    demonstration_fraction: float = field(
        default=0.5, metadata={"help": "With --benchmark: share of each group's pairs used as demonstrations."}
    )
    max_eval_pairs: int = field(default=12, metadata={"help": "At most this many evaluation pairs per group."})
    seen_groups: list[str] | None = field(
        default=None,
        metadata={"help": "Seen objectives to evaluate (none: the --conflict pair; 'all': every seen objective)."},
    )
    icrm_model_name_or_path: str | None = field(
        default=None, metadata={"help": "Trained ICRM model; trained here (LoRA) when not given."}
    )
    bt_model_name_or_path: str | None = field(
        default=None, metadata={"help": "Trained BT model; trained here (LoRA) when not given."}
    )
    no_bt: bool = field(default=False, metadata={"help": "Skip the BT comparison."})
    ks: list[int] = field(
        default_factory=lambda: [0, 1, 2, 4, 8], metadata={"help": "Numbers of demonstrations K to evaluate."}
    )
    num_draws: int = field(default=2, metadata={"help": "Draws of demonstrations per K > 0."})
    conflict: list[str] = field(
        default_factory=lambda: ["concise", "detailed"],
        metadata={"help": "Two conflicting groups for the mixing front."},
    )
    ratios: list[float] = field(
        default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0],
        metadata={"help": "Shares of the first conflicting group's demonstrations in the mixed contexts."},
    )
    mix_k: int = field(default=8, metadata={"help": "Demonstrations per mixed context."})
    mix_draws: int = field(default=1, metadata={"help": "Draws of mixed contexts per ratio."})


def load_data(args: SteerEvalArguments, seed: int = 0) -> SteerabilityData:
    """The evaluation sets (and training pairs) of the run: the benchmark's or the steerable data set's."""
    from ..experiments.steerability import (
        benchmark_steerability_data,
        builtin_steerability_data,
        pairs_steerability_data,
    )

    split = {
        "demonstration_fraction": args.demonstration_fraction,
        "max_eval_pairs": args.max_eval_pairs,
        "seed": seed,
    }
    if args.benchmark:
        source = {"split": args.dataset_test_split, "config": args.dataset_config}
        return benchmark_steerability_data(args.benchmark, args.dataset_name, **split, **source)
    if args.dataset_name:
        test_split = args.dataset_test_split or "test"
        source = (args.dataset_name, args.dataset_config, args.dataset_train_split, test_split)
        return pairs_steerability_data(*source, **split)
    objectives = (args.seen_objectives, args.conflict)
    sizes = {"cross_style_pairs": args.cross_style_pairs, "max_eval_pairs": args.max_eval_pairs}
    return builtin_steerability_data(*objectives, args.responses, **sizes, seen_groups=args.seen_groups, seed=seed)


def trained_models(
    args: SteerEvalArguments,
    training_args: SteerableTrainingArguments,
    data: SteerabilityData,
    record: dict[str, Any],
) -> tuple[str, str | None]:
    """(ICRM model, BT model or None): those given, the others trained here
    (`trl_icrm.experiments.steerability.steerability_models`). Exits when a given model is of the wrong kind or a
    benchmark run lacks a model it cannot train."""
    from ..experiments.steerability import SteerabilityModelError, steerability_models

    bt_path = None if args.no_bt else args.bt_model_name_or_path
    try:
        return steerability_models(
            args.icrm_model_name_or_path, bt_path, not args.no_bt, data, args.output_dir, training_args, record
        )
    except SteerabilityModelError as error:
        raise SystemExit(str(error)) from error


def main(script_args: SteerEvalArguments, training_args: SteerableTrainingArguments) -> dict[str, Any]:
    from tqdm.auto import tqdm

    from ..experiments.steerability import drop_overlong_pairs, headline
    from ..experiments.steerability_report import evaluate_steerability
    from ..rewards import load_reward
    from ..utils.io import write_json

    if len(script_args.conflict) != 2:
        raise SystemExit(f"--conflict takes two groups, got {script_args.conflict}.")
    if script_args.benchmark_path:
        warnings.warn("--benchmark_path is deprecated: use --dataset_name.", FutureWarning, stacklevel=2)
        script_args.dataset_name = script_args.dataset_name or script_args.benchmark_path
    os.makedirs(script_args.output_dir, exist_ok=True)
    record: dict[str, Any] = {"args": {**dataclasses.asdict(script_args), **dataclasses.asdict(training_args)}}
    try:
        data = load_data(script_args, training_args.seed)
    except ValueError as error:  # a data set in no format steer-eval reads, or without groups
        raise SystemExit(f"trl-icrm steer-eval: {error}") from error
    if data.summary is not None:
        record["data"] = data.summary
    icrm_path, bt_path = trained_models(script_args, training_args, data, record)
    reward = load_reward(icrm_path, kind="icrm", allow_zero_shot=True, max_length=training_args.max_length)
    bt_reward = None if bt_path is None else load_reward(bt_path, kind="bt", name="bt")
    record["overlong_pairs_dropped"] = drop_overlong_pairs(reward, data)
    start = time.perf_counter()
    results = evaluate_steerability(
        reward,
        data.eval_sets,
        script_args.output_dir,
        bt_reward=bt_reward,
        ks=script_args.ks,
        num_draws=script_args.num_draws,
        conflict=tuple(script_args.conflict),
        conflict_set=data.conflict_set,
        ratios=script_args.ratios,
        mix_k=script_args.mix_k,
        mix_draws=script_args.mix_draws,
        seed=training_args.seed,
        progress=lambda jobs: tqdm(jobs, desc="Evaluating (K, draw)", unit="draw"),
    )
    record["evaluation_seconds"] = round(time.perf_counter() - start, 1)
    write_json(record, os.path.join(script_args.output_dir, "run.json"))
    print(json.dumps(headline(results), indent=2))
    print(f"Results and plots: {script_args.output_dir}")
    return results


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    dataclass_types = (SteerEvalArguments, SteerableTrainingArguments)
    return command_parser("steer-eval", "Steerability benchmark", dataclass_types, __doc__, subparsers, prog)


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())

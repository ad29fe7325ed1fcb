# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""`trl-icrm compare-rewards`: ICRM, BT and the verifier as GRPO rewards on math, with equal budgets and seeds; one
table and one plot.

Runs `trl-icrm grpo` once per reward (in this process, one after the other) with the same training arguments (steps,
batch, learning rate, seed) and the same problems, evaluating held-out greedy accuracy every `--eval_every` steps,
then writes `comparison.md` (markdown table), `comparison.png` (held-out accuracy vs step) and `comparison.json` to
`--output_dir`; each run's own results are in `<output_dir>/<reward>/results.json`. Every option of `trl-icrm grpo`
applies; `--reward` and `--reward_model_name_or_path` are set per run.

The reward models come first (about the exact commands, see `trl-icrm grpo --reward icrm` without a model):

    trl-icrm build-math-preferences --output_dir outputs/math-preferences
    trl-icrm train --method icrm --output_dir outputs/math-icrm
    trl-icrm train --method bt --output_dir outputs/math-bt
    trl-icrm compare-rewards --output_dir outputs/compare-rewards --max_steps 30 --eval_every 5

`--report_only` rebuilds the table and plot from existing `<output_dir>/<reward>/results.json` files.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
from dataclasses import dataclass, field

from ..experiments.math_grpo import DEFAULT_REWARD_MODEL_DIRS
from ._common import command_parser
from .grpo import GRPOScriptArguments, grpo_defaults
from .grpo import main as grpo_main


@dataclass
class CompareRewardsArguments:
    """Arguments of `trl-icrm compare-rewards` (besides those of `trl-icrm grpo`)."""

    rewards: list[str] = field(
        default_factory=lambda: ["icrm", "bt", "verifier"],
        metadata={"help": "Rewards to compare, in order (among icrm, bt, verifier)."},
    )
    icrm_model_name_or_path: str = field(
        default=DEFAULT_REWARD_MODEL_DIRS["icrm"], metadata={"help": "ICRM reward model (folder or hub id)."}
    )
    bt_model_name_or_path: str = field(
        default=DEFAULT_REWARD_MODEL_DIRS["bt"], metadata={"help": "BT reward model (folder or hub id)."}
    )
    report_only: bool = field(default=False, metadata={"help": "Only rebuild the report from existing results."})


def write_report(results: dict, output_dir: str) -> dict[str, str]:
    """Write comparison.md, comparison.png and comparison.json (`trl_icrm.experiments.math_grpo_report`), print the
    table and return the files' paths."""
    from ..experiments.math_grpo_report import comparison_table, write_comparison

    paths = write_comparison(results, output_dir)
    print(comparison_table(results))
    return paths


def _read_results(rewards: list[str], base_dir: str, results_file: str) -> dict:
    results = {}
    for reward in rewards:
        with open(os.path.join(base_dir, reward, results_file), encoding="utf-8") as handle:
            results[reward] = json.load(handle)
    return results


def _resume_each_run(resume_from_checkpoint: str | bool | None) -> bool:
    """`--resume_from_checkpoint true`: finished runs are read back and the others resume from their own last
    checkpoint. A single checkpoint path cannot serve several runs."""
    from ..utils.io import RESUME_LAST, RESUME_NONE

    text = str(resume_from_checkpoint).strip().lower()
    if resume_from_checkpoint in (None, False) or text in RESUME_NONE:
        return False
    if resume_from_checkpoint is True or text in RESUME_LAST:
        return True
    raise SystemExit(
        "compare-rewards runs one GRPO run per reward: pass --resume_from_checkpoint true to resume each from its "
        "own last checkpoint (or resume a single run with `trl-icrm grpo --resume_from_checkpoint PATH`)."
    )


def _last_checkpoint(run_dir: str) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(run_dir) if os.path.isdir(run_dir) else None


def main(compare_args: CompareRewardsArguments, script_args: GRPOScriptArguments, training_args, model_args) -> dict:
    from ..experiments.math_grpo import how_to_make_reward_model

    base_dir = training_args.output_dir
    model_paths = {
        "icrm": compare_args.icrm_model_name_or_path,
        "bt": compare_args.bt_model_name_or_path,
        "verifier": None,
    }
    unknown = [r for r in compare_args.rewards if r not in model_paths]
    if unknown:
        raise SystemExit(f"Unknown reward(s) {unknown}; choose among {sorted(model_paths)}.")
    if compare_args.report_only:
        results = _read_results(compare_args.rewards, base_dir, script_args.results_file)
        write_report(results, base_dir)
        return results
    for reward in compare_args.rewards:  # check every model before spending time on any run
        path = model_paths[reward]
        if path is not None and not os.path.exists(path):
            raise SystemExit(how_to_make_reward_model(reward, path))
    resume = _resume_each_run(training_args.resume_from_checkpoint)
    results = {}
    for reward in compare_args.rewards:
        run_dir = os.path.join(base_dir, reward)
        if resume and os.path.isfile(os.path.join(run_dir, script_args.results_file)):
            results.update(_read_results([reward], base_dir, script_args.results_file))  # finished before
            continue
        run_script_args = dataclasses.replace(
            script_args, reward=reward, reward_model_name_or_path=model_paths[reward]
        )
        run_training_args = copy.deepcopy(training_args)
        run_training_args.output_dir = run_dir
        run_training_args.reward_weights = copy.deepcopy(training_args.reward_weights)
        run_training_args.resume_from_checkpoint = _last_checkpoint(run_dir) if resume else None
        results[reward] = grpo_main(run_script_args, run_training_args, model_args)
    if int(os.environ.get("RANK", "0")) == 0:
        write_report(results, base_dir)
    return results


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    from trl import GRPOConfig, ModelConfig

    dataclass_types = (CompareRewardsArguments, GRPOScriptArguments, GRPOConfig, ModelConfig)
    parser = command_parser("compare-rewards", "Compare GRPO rewards", dataclass_types, __doc__, subparsers, prog)
    parser.set_defaults(
        **{**grpo_defaults(), "output_dir": "outputs/compare-rewards", "eval_every": 5, "max_steps": 30}
    )
    return parser


if __name__ == "__main__":
    from trl_icrm.utils.distributed import destroy_process_group

    main(*make_parser().parse_args_and_config())
    destroy_process_group()

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Compare ICRM, BT and the verifier as GRPO rewards on math: equal budgets and seeds, one table and one plot.

Runs `recipes/grpo_math.py` once per reward (in this process, one after the other) with the same training arguments
(steps, batch, learning rate, seed) and the same problems, evaluating held-out greedy accuracy every `--eval_every`
steps, then writes `comparison.md` (markdown table), `comparison.png` (held-out accuracy vs step) and
`comparison.json` to `--output_dir`; each run's own results are in `<output_dir>/<reward>/results.json`.

The reward models come first (about the exact commands, see `recipes/grpo_math.py --reward icrm` without a model):

    python recipes/build_math_preferences.py --output_dir outputs/math-preferences
    python recipes/train_reward_model.py --objective icrm --output_dir outputs/math-icrm
    python recipes/train_reward_model.py --objective bt --output_dir outputs/math-bt
    python recipes/compare_rewards.py --output_dir outputs/compare-rewards --max_steps 30 --eval_every 5

`--report_only` rebuilds the table and plot from existing `<output_dir>/<reward>/results.json` files.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import sys
from dataclasses import dataclass, field

from trl import GRPOConfig, ModelConfig


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling recipe grpo_math.py

from grpo_math import ScriptArguments  # noqa: E402
from grpo_math import main as grpo_main  # noqa: E402
from grpo_math import make_parser as grpo_parser  # noqa: E402

from trl_icrm.experiments.math_grpo import (  # noqa: E402
    DEFAULT_REWARD_MODEL_DIRS,
    comparison_table,
    how_to_make_reward_model,
    plot_accuracy_curves,
    write_json,
)
from trl_icrm.utils.distributed import destroy_process_group  # noqa: E402


@dataclass
class CompareArguments:
    """Arguments of `recipes/compare_rewards.py` (besides those of `recipes/grpo_math.py`)."""

    rewards: list[str] = field(
        default_factory=lambda: ["icrm", "bt", "verifier"], metadata={"help": "Rewards to compare, in order."}
    )
    icrm_model_name_or_path: str = field(default=DEFAULT_REWARD_MODEL_DIRS["icrm"], metadata={"help": "ICRM model."})
    bt_model_name_or_path: str = field(default=DEFAULT_REWARD_MODEL_DIRS["bt"], metadata={"help": "BT model."})
    report_only: bool = field(default=False, metadata={"help": "Only rebuild the report from existing results."})


def write_report(results: dict, output_dir: str) -> dict[str, str]:
    """Write comparison.md, comparison.png and comparison.json; return their paths."""
    os.makedirs(output_dir, exist_ok=True)
    table = comparison_table(results)
    paths = {
        "markdown": os.path.join(output_dir, "comparison.md"),
        "plot": plot_accuracy_curves(results, os.path.join(output_dir, "comparison.png")),
        "json": write_json(
            {name: {k: v for k, v in result.items() if k != "log_history"} for name, result in results.items()},
            os.path.join(output_dir, "comparison.json"),
        ),
    }
    with open(paths["markdown"], "w", encoding="utf-8") as handle:
        handle.write("# Held-out accuracy of GRPO with each reward (greedy, math-verify)\n\n" + table)
    print(table)
    return paths


def main(
    compare_args: CompareArguments, script_args: ScriptArguments, training_args: GRPOConfig, model_args: ModelConfig
) -> dict:
    base_dir = training_args.output_dir
    model_paths = {
        "icrm": compare_args.icrm_model_name_or_path,
        "bt": compare_args.bt_model_name_or_path,
        "verifier": None,
    }
    unknown = [r for r in compare_args.rewards if r not in model_paths]
    if unknown:
        raise SystemExit(f"Unknown reward(s) {unknown}; choose among {sorted(model_paths)}.")
    results = {}
    if compare_args.report_only:
        for reward in compare_args.rewards:
            with open(os.path.join(base_dir, reward, script_args.results_file), encoding="utf-8") as handle:
                results[reward] = json.load(handle)
        write_report(results, base_dir)
        return results
    for reward in compare_args.rewards:  # check every model before spending time on any run
        path = model_paths[reward]
        if path is not None and not os.path.exists(path):
            raise SystemExit(how_to_make_reward_model(reward, path))
    for reward in compare_args.rewards:
        run_script_args = dataclasses.replace(
            script_args, reward=reward, reward_model_name_or_path=model_paths[reward]
        )
        run_training_args = copy.deepcopy(training_args)
        run_training_args.output_dir = os.path.join(base_dir, reward)
        run_training_args.reward_weights = copy.deepcopy(training_args.reward_weights)
        results[reward] = grpo_main(run_script_args, run_training_args, model_args)
    if int(os.environ.get("RANK", "0")) == 0:
        write_report(results, base_dir)
    return results


def make_parser():
    parser = grpo_parser(CompareArguments)
    parser.set_defaults(output_dir="outputs/compare-rewards", eval_every=5, max_steps=30)
    return parser


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
    destroy_process_group()

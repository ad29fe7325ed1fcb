# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""`trl-icrm build-hh-objectives`: a multi-objective preference set from HH-RLHF dialogues, for steering on real text.

Reads HH-RLHF pairs (any data set in its format: `chosen` / `rejected` transcripts, by TRL's `--dataset_name`), splits
each into a prompt and two answers, and labels every pair once per objective by a documented rule
(`trl_icrm.data.hh_objectives`): `harmless` (the annotators' label), `compliant` (its opposite), `concise`, `verbose`,
`clarifying` and `no_refusal`. Ties are dropped; the prompts are split into train and held-out (`--held_out_fraction`,
seeded); the `--held_out_objectives` appear only in the held-out split. The result is saved with
`datasets.DatasetDict.save_to_disk` (`train`, `test`; columns `prompt`, `chosen`, `rejected`, `group`, `pair_id`)
with a `summary.json`, where `trl-icrm train --dataset_name` and `trl-icrm steer-eval` read it. The same file and seed
give the same set.

    trl-icrm build-hh-objectives --dataset_name harmless-base-test.jsonl.gz --output_dir outputs/hh-objectives
    trl-icrm build-hh-objectives --dataset_name harmless-base-test.jsonl.gz --objectives harmless \
        --output_dir outputs/hh-harmless       # the original labels only, on the same prompt split
    trl-icrm build-hh-objectives --dataset_name Anthropic/hh-rlhf --dataset_config harmless-base \\
        --dataset_train_split test --held_out_objectives clarifying
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field

from trl import ScriptArguments

from ..data.hh_objectives import DEFAULT_HELD_OUT_OBJECTIVES
from ._common import command_parser


DEFAULT_HH_OBJECTIVES_DIR = "outputs/hh-objectives"


@dataclass
class BuildHHObjectivesArguments(ScriptArguments):
    """Arguments of `trl-icrm build-hh-objectives`: TRL's data set arguments (`--dataset_name` and its config and
    split: the HH-RLHF pairs to relabel) and the objectives."""

    output_dir: str = field(default=DEFAULT_HH_OBJECTIVES_DIR, metadata={"help": "Folder of the saved set."})
    objectives: list[str] = field(
        default_factory=lambda: ["harmless", "compliant", "concise", "verbose", "clarifying", "no_refusal"],
        metadata={"help": "Objectives to label the pairs with."},
    )
    held_out_objectives: list[str] = field(
        default_factory=lambda: list(DEFAULT_HELD_OUT_OBJECTIVES),
        metadata={
            "help": "Objectives left out of the training split (they appear only in the held-out split); those not "
            "among --objectives are ignored."
        },
    )
    held_out_fraction: float = field(default=0.25, metadata={"help": "Share of the prompts held out."})
    seed: int = field(default=0, metadata={"help": "Seed of the prompt split."})


def main(script_args: BuildHHObjectivesArguments):
    from ..data.hh_objectives import OBJECTIVES, build_hh_objectives, objective_summary
    from ..data.loading import load_dataset_splits
    from ..utils.io import write_json

    if not script_args.dataset_name:
        raise SystemExit("Give --dataset_name: the HH-RLHF pairs (a hub id, a folder or a .jsonl[.gz] file).")
    unknown = sorted((set(script_args.objectives) | set(script_args.held_out_objectives)) - set(OBJECTIVES))
    if unknown:
        raise SystemExit(f"Unknown objective(s) {unknown}; choose from {sorted(OBJECTIVES)}.")
    held_out = [name for name in script_args.held_out_objectives if name in script_args.objectives]
    dataset, _ = load_dataset_splits(
        script_args.dataset_name, script_args.dataset_config, script_args.dataset_train_split, None
    )
    splits = build_hh_objectives(
        dataset,
        objectives=script_args.objectives,
        held_out_objectives=held_out,
        held_out_fraction=script_args.held_out_fraction,
        seed=script_args.seed,
    )
    splits.save_to_disk(script_args.output_dir)
    summary = {"num_source_pairs": len(dataset), "pairs": objective_summary(splits), "args": vars(script_args)}
    write_json(summary, os.path.join(script_args.output_dir, "summary.json"))
    print(f"Saved the objective set to {script_args.output_dir}: {json.dumps(summary['pairs'])}")
    return splits


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    dataclass_types = (BuildHHObjectivesArguments,)
    return command_parser(
        "build-hh-objectives", "Build the multi-objective HH-RLHF set", dataclass_types, __doc__, subparsers, prog
    )


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())

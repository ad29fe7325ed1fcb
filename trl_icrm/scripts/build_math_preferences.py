# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""`trl-icrm build-math-preferences`: math preference pairs for reward-model training, sampled from the policy and
labelled by math-verify.

For each training problem, `num_samples` solutions are sampled from the policy (`model_name_or_path`, the embedded
SmolLM2-135M-Instruct by default) and labelled by the math-verify correctness reward. Pairs put a correct solution
(chosen) against an incorrect one (rejected) of the same problem; when no sample of a problem is correct, a short
reference solution written from the answer is chosen instead (`--reference_fallback`, on by default: a small policy
rarely solves a problem). Each pair keeps a `group` column (the problem family, difficulty, or both: `--group_by`),
from which ICRM draws its demonstrations. The pairs are saved with `datasets.Dataset.save_to_disk`, with a
`summary.json` next to them.

Problems come from the built-in generator (held-out "test" problems are never used here) or, with `--dataset_name`,
from a dataset with GSM8K's schema (its `--dataset_split`).

    trl-icrm build-math-preferences                                  # embedded model, CPU
    trl-icrm build-math-preferences --num_problems 256 --num_samples 8 --output_dir outputs/math-preferences
    trl-icrm build-math-preferences --dataset_name openai/gsm8k --model_name_or_path Qwen/Qwen2.5-0.5B-Instruct
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from dataclasses import dataclass, field

from ..data.math_preferences import DEFAULT_PREFERENCES_DIR
from ..utils.default_model import DEFAULT_MODEL
from ._common import MathProblemArguments, command_parser


@dataclass
class BuildMathPreferencesArguments(MathProblemArguments):
    """Arguments of `trl-icrm build-math-preferences`."""

    model_name_or_path: str = field(default=DEFAULT_MODEL, metadata={"help": "Policy that samples the solutions."})
    output_dir: str = field(default=DEFAULT_PREFERENCES_DIR, metadata={"help": "Folder of the saved pairs."})
    dataset_split: str = field(default="train", metadata={"help": "Split of `dataset_name` to use."})
    num_problems: int = field(default=64, metadata={"help": "Training problems to sample solutions for."})
    num_samples: int = field(default=8, metadata={"help": "Solutions sampled per problem."})
    max_new_tokens: int = field(default=128, metadata={"help": "Most tokens per sampled solution."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature."})
    max_pairs_per_problem: int = field(default=4, metadata={"help": "Most pairs per problem."})
    reference_fallback: bool = field(
        default=True, metadata={"help": "Choose a reference solution when no sample of a problem is correct."}
    )
    generation_batch_size: int = field(default=64, metadata={"help": "Most sequences per generate call."})
    seed: int = field(default=0, metadata={"help": "Seed of problems, sampling and pair draws."})


def load_problems(args: BuildMathPreferencesArguments):
    """The training problems, with a `group` column."""
    from ..data.math_preferences import add_group_column, load_math_problems
    from ..data.math_problems import load_gsm8k_like

    if args.dataset_name:
        problems = load_gsm8k_like(
            args.dataset_name, split=args.dataset_split, name=args.dataset_config, num_rows=args.num_problems
        )
        return add_group_column(problems, args.group_by)
    return load_math_problems(
        num_train=args.num_problems,
        num_test=0,
        difficulties=args.difficulties,
        plain_fraction=args.plain_fraction,
        group_by=args.group_by,
        seed=args.seed,
    )["train"]


def sample_and_label(args: BuildMathPreferencesArguments, problems) -> tuple[list, list]:
    """(completions, rewards): `num_samples` sampled solutions per problem and their math-verify rewards."""
    from ..best_of_n import BestOfNSampler
    from ..rewards import load_reward

    verifier = load_reward("verifier", log_metrics=False)
    sampler = BestOfNSampler(
        args.model_name_or_path,
        reward_funcs=verifier,
        n=args.num_samples,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        generation_batch_size=args.generation_batch_size,
        seed=args.seed,
        progress_bar=True,
    )
    completions, _ = sampler.generate(problems["prompt"])
    rewards = [
        verifier(completions=samples, solution=[row["solution"]] * len(samples))
        for row, samples in zip(problems, completions, strict=True)
    ]
    return completions, rewards


def main(script_args: BuildMathPreferencesArguments):
    from datasets import Dataset

    from ..data.math_preferences import build_preference_pairs
    from ..utils.io import write_json

    problems = load_problems(script_args)
    completions, rewards = sample_and_label(script_args, problems)
    pairs = build_preference_pairs(
        list(problems),
        completions,
        rewards,
        max_pairs_per_problem=script_args.max_pairs_per_problem,
        reference_fallback=script_args.reference_fallback,
        seed=script_args.seed,
    )
    scored = [r for rs in rewards for r in rs if r is not None]
    summary = {
        "policy": script_args.model_name_or_path,
        "num_problems": len(problems),
        "num_samples": len(scored),
        "sample_accuracy": sum(scored) / len(scored) if scored else None,
        "problems_with_a_correct_sample": sum(any(r == 1.0 for r in rs) for rs in rewards),
        "num_pairs": len(pairs),
        "pairs_by_source": dict(Counter(p["chosen_source"] for p in pairs)),
        "pairs_by_group": dict(sorted(Counter(p["group"] for p in pairs).items())),
    }
    if not pairs:
        raise SystemExit(
            f"No preference pairs: every problem's samples were all correct or all unscored. Summary: {summary}"
        )
    dataset = Dataset.from_list(pairs)
    dataset.save_to_disk(script_args.output_dir)
    write_json({**summary, "args": vars(script_args)}, os.path.join(script_args.output_dir, "summary.json"))
    print(f"Saved {len(pairs)} pairs to {script_args.output_dir}: {summary}")
    return dataset


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    dataclass_types = (BuildMathPreferencesArguments,)
    return command_parser(
        "build-math-preferences", "Build math preference pairs", dataclass_types, __doc__, subparsers, prog
    )


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())

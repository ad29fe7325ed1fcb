# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Build math preference pairs for reward-model training: sample solutions from the policy, label them with math-verify.

For each training problem, `num_samples` solutions are sampled from the policy (the embedded SmolLM2-135M-Instruct by
default) and labelled by the math-verify correctness reward. Pairs put a correct solution (chosen) against an incorrect
one (rejected) of the same problem; when no sample of a problem is correct, a short reference solution written from
the answer is chosen instead (`--reference_fallback`, on by default: a small policy rarely solves a problem). Each pair
keeps a `group` column (the problem family, difficulty, or both: `--group_by`), from which ICRM draws its
demonstrations. The pairs are saved with `datasets.Dataset.save_to_disk`, with a `summary.json` next to them.

Problems come from the built-in generator (held-out "test" problems are never used here) or, with `--dataset_name`,
from a dataset with GSM8K's schema (its `--dataset_split`).

    python recipes/build_math_preferences.py                                 # embedded model, CPU
    python recipes/build_math_preferences.py --num_problems 256 --num_samples 8 --output_dir outputs/math-preferences
    python recipes/build_math_preferences.py --dataset_name openai/gsm8k --policy_name_or_path Qwen/Qwen2.5-0.5B-Instruct
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

from datasets import Dataset
from trl import TrlParser

from trl_icrm import DEFAULT_MODEL
from trl_icrm.best_of_n import BestOfNSampler
from trl_icrm.data.math_problems import load_gsm8k_like
from trl_icrm.experiments.math_grpo import (
    DEFAULT_PREFERENCES_DIR,
    MathProblemArguments,
    add_group_column,
    build_preference_pairs,
    load_math_problems,
    write_json,
)
from trl_icrm.rewards.math_verify import MathVerifyReward


@dataclass
class ScriptArguments(MathProblemArguments):
    """Arguments of `recipes/build_math_preferences.py`."""

    policy_name_or_path: str = field(default=DEFAULT_MODEL, metadata={"help": "Policy that samples the solutions."})
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


def load_problems(args: ScriptArguments):
    """The training problems, with a `group` column."""
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


def main(args: ScriptArguments) -> Dataset:
    problems = load_problems(args)
    verifier = MathVerifyReward(log_metrics=False)
    sampler = BestOfNSampler(
        args.policy_name_or_path,
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
        for row, samples in zip(problems, completions, strict=False)
    ]
    pairs = build_preference_pairs(
        list(problems),
        completions,
        rewards,
        max_pairs_per_problem=args.max_pairs_per_problem,
        reference_fallback=args.reference_fallback,
        seed=args.seed,
    )
    scored = [r for rs in rewards for r in rs if r is not None]
    summary = {
        "policy": args.policy_name_or_path,
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
    dataset.save_to_disk(args.output_dir)
    write_json({**summary, "args": vars(args)}, os.path.join(args.output_dir, "summary.json"))
    print(f"Saved {len(pairs)} pairs to {args.output_dir}: {summary}")
    return dataset


def make_parser() -> TrlParser:
    return TrlParser((ScriptArguments,))


if __name__ == "__main__":
    (script_args,) = make_parser().parse_args_and_config()
    main(script_args)

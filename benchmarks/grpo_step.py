# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""One GRPO step end to end (generation + reward + update) with the ICRM reward, a BT reward and the verifier.

The policy is the embedded model (full fine-tuning, fp32) on the built-in math problems of the GRPO recipe. The three
runs start from the same policy and seed and differ only in the reward: the math-verify verifier, a BT reward model
(`SequenceClassifierReward`) and an ICRM reward (`ICRMReward`) steered by K demonstrations per prompt (a
`demonstrations` column holding one set per problem group, as a bank keyed by group gives). Both reward models are the
embedded backbone with a new, random-initialized score head: they are the size of real ones and cost what real ones
cost, but their rewards mean nothing (this measures time only). Each run trains `--steps` steps; the first step
(warm-up) is left out, and the report gives the median time of the others, the reward's own time per step, and ICRM's
step time relative to BT's (target <= 1.15).

    python benchmarks/grpo_step.py --output docs/results/grpo_step.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch
from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from trl_icrm import DEFAULT_MODEL, ICRMReward, SequenceClassifierReward
from trl_icrm.data.math_preferences import load_math_problems, reference_completion
from trl_icrm.icrm.modeling import ICRMSettings, load_icrm_model
from trl_icrm.rewards.math_verify import MathVerifyReward
from trl_icrm.utils.default_model import resolve_model_name_or_path


class StepTimer(TrainerCallback):
    def __init__(self):
        self.starts, self.seconds = [], []

    def on_step_begin(self, args, state, control, **kwargs):
        self.starts.append(time.perf_counter())

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self.starts[-1])


class TimedReward:
    """A reward function that records the seconds it spends (TRL reads its `__name__`)."""

    def __init__(self, reward):
        self.reward, self.__name__, self.seconds = reward, reward.__name__, []

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        values = self.reward(*args, **kwargs)
        self.seconds.append(time.perf_counter() - start)
        return values


def with_demonstrations(dataset, k: int):
    """Each problem gets k demonstration pairs of its group (the same set for a group), never of itself where the
    group has more: a correct reference solution chosen over a wrong one."""
    by_group: dict[str, list[dict]] = {}
    for row in dataset:
        by_group.setdefault(row["group"], []).append(row)

    def pairs(group: str, question: str) -> list[dict]:
        rows = [r for r in by_group[group] if r["question"] != question] or by_group[group]
        chosen = [
            {
                "prompt": r["prompt"],
                "chosen": reference_completion(r["solution"]),
                "rejected": reference_completion(f"{r['solution']}1"),
            }
            for r in rows
        ]
        return chosen[:k]

    sets = {g: pairs(g, None) for g in by_group}
    return dataset.map(lambda row: {"demonstrations": sets[row["group"]]})


def make_reward(kind: str, k: int):
    if kind == "verifier":
        return MathVerifyReward()
    if kind == "bt":
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = resolve_model_name_or_path(DEFAULT_MODEL)
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=torch.float32)
        return SequenceClassifierReward(model, AutoTokenizer.from_pretrained(path), name="bt")
    model, tokenizer = load_icrm_model(DEFAULT_MODEL, settings=ICRMSettings())  # new random head: timing only
    return ICRMReward(model, tokenizer, num_demonstrations=k)


def run(kind: str, args, dataset) -> dict:
    torch.manual_seed(0)
    reward = TimedReward(make_reward(kind, args.demonstrations))
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as scratch:
        config = GRPOConfig(
            output_dir=scratch,
            per_device_train_batch_size=args.prompts * args.num_generations,
            num_generations=args.num_generations,
            max_completion_length=args.max_completion_length,
            max_steps=args.steps,
            learning_rate=1e-6,
            logging_steps=1,
            report_to=[],
            save_strategy="no",
            seed=0,
            bf16=False,
            use_cpu=not torch.cuda.is_available(),
            disable_tqdm=True,
        )
        trainer = GRPOTrainer(
            model=resolve_model_name_or_path(DEFAULT_MODEL),
            reward_funcs=[reward],
            args=config,
            train_dataset=dataset,
            callbacks=[timer],
        )
        trainer.train()
    steps, rewards = timer.seconds[1:], reward.seconds[1:]
    return {
        "reward": kind,
        "step_seconds": timer.seconds,
        "reward_seconds": reward.seconds,
        "median_step_seconds": statistics.median(steps),
        "median_reward_seconds": statistics.median(rewards),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demonstrations", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=4, help="Prompts per step.")
    parser.add_argument("--num_generations", type=int, default=8, help="G completions per prompt.")
    parser.add_argument("--max_completion_length", type=int, default=48)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
    parser.add_argument("--output", default=None, help="Write the results as JSON here (and a table beside it).")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    problems = load_math_problems(num_train=64, num_test=1)["train"]
    dataset = with_demonstrations(problems, args.demonstrations)
    results = {"args": vars(args), "runs": []}
    for kind in ("verifier", "bt", "icrm"):
        results["runs"].append(run(kind, args, dataset))
        print(json.dumps(results["runs"][-1]), flush=True)
    by_kind = {r["reward"]: r for r in results["runs"]}
    results["icrm_over_bt_step"] = by_kind["icrm"]["median_step_seconds"] / by_kind["bt"]["median_step_seconds"]
    results["icrm_over_bt_reward"] = by_kind["icrm"]["median_reward_seconds"] / by_kind["bt"]["median_reward_seconds"]
    table = ["| reward | median step (s) | median reward time per step (s) |", "| --- | --- | --- |"]
    table += [
        f"| {r['reward']} | {r['median_step_seconds']:.2f} | {r['median_reward_seconds']:.2f} |"
        for r in results["runs"]
    ]
    table.append(
        f"\nICRM (K = {args.demonstrations}) step time / BT step time: **{results['icrm_over_bt_step']:.2f}x**; "
        f"reward time alone: {results['icrm_over_bt_reward']:.2f}x."
    )
    print("\n".join(table))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
        with open(args.output.rsplit(".", 1)[0] + "_table.md", "w", encoding="utf-8") as handle:
            handle.write("\n".join(table) + "\n")


if __name__ == "__main__":
    main()

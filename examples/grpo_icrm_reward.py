# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""A short GRPO run whose reward is an ICRM model steered per prompt by its own demonstrations.

Half of the prompts carry demonstrations of the objective `concise`, the other half of `detailed` (from the built-in
concise-vs-detailed data set): one reward model, two preferences, chosen per row of the dataset through its
`demonstrations` column. TRL logs the reward as `rewards/icrm/mean` next to the other reward functions, and the
reward's own metrics (`icrm/confidence`, `icrm/num_demonstrations`, `icrm/dropped_demonstrations`).

First train the reward model (about 10 minutes on CPU), then run GRPO:

    python examples/train_icrm.py --output_dir outputs/icrm-concise-vs-detailed
    python examples/grpo_icrm_reward.py --reward_model_name_or_path outputs/icrm-concise-vs-detailed
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer, ModelConfig, TrlParser

from trl_icrm import DEFAULT_MODEL, ICRMReward, resolve_model_name_or_path
from trl_icrm.data.builtin import concise_vs_detailed


@dataclass
class ScriptArguments:
    reward_model_name_or_path: str = field(
        default="outputs/icrm-concise-vs-detailed",
        metadata={"help": "A trained ICRM model (folder, adapter, hub id)."},
    )
    num_demonstrations: int = field(default=4, metadata={"help": "Demonstrations carried by each prompt."})


def build_dataset(num_demonstrations: int, seed: int) -> Dataset:
    """Held-out questions as conversational prompts, each with demonstrations of one objective (alternating)."""
    data = concise_vs_detailed(seed=seed)
    bank = {
        group: [
            {k: row[k] for k in ("prompt", "chosen", "rejected")} for row in data["train"] if row["group"] == group
        ]
        for group in ("concise", "detailed")
    }
    questions = sorted(set(data["test"]["prompt"]))
    rows = []
    for i, question in enumerate(questions):
        objective = ("concise", "detailed")[i % 2]
        rows.append(
            {
                "prompt": [{"role": "user", "content": question.strip()}],
                "objective": objective,
                "demonstrations": bank[objective][i % 3 : i % 3 + num_demonstrations],
            }
        )
    return Dataset.from_list(rows)


def length_in_words(completions, **kwargs) -> list[float]:
    """A plain reward function beside ICRM, for comparison in the logs: the completion's length in words / 100."""
    return [len(completion[0]["content"].split()) / 100 for completion in completions]


def main(script_args: ScriptArguments, training_args: GRPOConfig, model_args: ModelConfig) -> None:
    if not os.path.exists(script_args.reward_model_name_or_path):
        raise SystemExit(
            f"No ICRM reward model at {script_args.reward_model_name_or_path}. Train one first:\n\n"
            f"    python examples/train_icrm.py --output_dir {script_args.reward_model_name_or_path}\n"
        )
    reward = ICRMReward(script_args.reward_model_name_or_path)
    trainer = GRPOTrainer(
        model=resolve_model_name_or_path(model_args.model_name_or_path),
        reward_funcs=[reward, length_in_words],
        args=training_args,
        train_dataset=build_dataset(script_args.num_demonstrations, training_args.seed),
    )
    trainer.train()
    print("\nRewards logged by TRL:")
    for entry in trainer.state.log_history:
        if "rewards/icrm/mean" in entry:
            columns = {k: round(v, 4) for k, v in entry.items() if k.startswith(("rewards/", "icrm/", "reward"))}
            print(f"step {entry.get('step', '?')}: {columns}")


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None) -> TrlParser:
    dataclass_types = (ScriptArguments, GRPOConfig, ModelConfig)
    if subparsers is not None:
        parser = subparsers.add_parser(
            "grpo-icrm-reward", help="GRPO with a steered ICRM reward", dataclass_types=dataclass_types
        )
    else:
        parser = TrlParser(dataclass_types, prog=prog)
    parser.set_defaults(
        model_name_or_path=DEFAULT_MODEL,
        output_dir="outputs/grpo-icrm-reward",
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=48,
        max_steps=3,
        learning_rate=1e-6,
        logging_steps=1,
        bf16=False,
        report_to=[],
        save_strategy="no",
        seed=0,
    )
    return parser


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())

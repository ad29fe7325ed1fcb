# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Training speed of `ICRMRewardTrainer`: batched pairs vs each pair's demonstration prefix encoded once.

The batched path runs TRL's preference batch as it is: 2 x batch rows, each the full demonstrations + query, padded to
the longest row. The shared-prefix path (`ICRMConfig.share_demonstration_prefix`) encodes each pair's demonstrations
once, reads both responses after them from the key-value cache, and pads nothing across pairs. For K demonstrations per
pair in `--demonstrations`, this trains the same model from the same seed with each path for `--steps` steps on the
steerable preference set (LoRA, fp32) and reports pairs/s, the speed-up, and the largest difference of the logged
training losses (the two paths compute the same loss). Each row is written to `--output` as soon as it is measured,
so a run stopped part-way (e.g. the batched path running out of memory at large K) keeps the rows before it.

    python benchmarks/icrm_training_step.py --output docs/results/icrm_training_step.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from peft import LoraConfig

from trl_icrm import DEFAULT_MODEL, ICRMConfig, ICRMRewardTrainer
from trl_icrm.data.steerable import DEFAULT_SEEN_OBJECTIVES, build_steerable_splits, load_responses
from trl_icrm.modeling import LORA_TARGET_MODULES


def train_once(args, train_dataset, k: int, share: bool, output_dir: str) -> dict[str, float]:
    config = ICRMConfig(
        output_dir=output_dir,
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=5e-4,
        lr_scheduler_type="constant",
        gradient_checkpointing=False,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        seed=0,
        max_length=2048,
        min_demonstrations=k,
        max_demonstrations=k,
        share_demonstration_prefix=share,
    )
    lora = LoraConfig(r=16, lora_alpha=32, target_modules=LORA_TARGET_MODULES, task_type="SEQ_CLS")
    trainer = ICRMRewardTrainer(args.model_name_or_path, args=config, train_dataset=train_dataset, peft_config=lora)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {"seconds": seconds, "pairs_per_second": args.steps * args.batch_size / seconds, "losses": losses}


def write_results(args, rows: list[dict]) -> None:
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump({"args": vars(args), "results": rows}, handle, indent=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", default=DEFAULT_MODEL)
    parser.add_argument("--demonstrations", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--output", default=None, help="Write the results as JSON here.")
    args = parser.parse_args()

    train_dataset = build_steerable_splits(load_responses(), DEFAULT_SEEN_OBJECTIVES, seed=0)["train"].shuffle(seed=0)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for k in args.demonstrations:
            runs = {
                share: train_once(args, train_dataset, k, share, os.path.join(scratch, f"{k}-{share}"))
                for share in (False, True)
            }
            batched, shared = runs[False], runs[True]
            rows.append(
                {
                    "k": k,
                    "batched_pairs_per_second": batched["pairs_per_second"],
                    "shared_prefix_pairs_per_second": shared["pairs_per_second"],
                    "speedup": shared["pairs_per_second"] / batched["pairs_per_second"],
                    "max_loss_difference": max(
                        abs(a - b) for a, b in zip(batched["losses"], shared["losses"], strict=True)
                    ),
                }
            )
            print(json.dumps(rows[-1]))
            if args.output:
                write_results(args, rows)
    print("| K | batched pairs/s | shared-prefix pairs/s | speed-up | max loss difference |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row['k']} | {row['batched_pairs_per_second']:.3f} | {row['shared_prefix_pairs_per_second']:.3f} | "
            f"{row['speedup']:.2f}x | {row['max_loss_difference']:.1e} |"
        )


if __name__ == "__main__":
    main()

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Training speed and peak memory of `ICRMRewardTrainer`: batched pairs vs each pair's demonstration prefix encoded
once, with and without gradient checkpointing.

The batched path runs TRL's preference batch as it is: 2 x batch rows, each the full demonstrations + query, padded to
the longest row. The shared-prefix path (`ICRMConfig.share_demonstration_prefix`) encodes each pair's demonstrations
once and pads nothing across pairs: without gradient checkpointing both responses read the prefix's key-value cache;
with it (TRL's default), each pair is one sequence prefix + chosen + rejected under an attention mask that keeps the
rejected response from seeing the chosen one. For K demonstrations per pair in `--demonstrations`, this trains the same
model from the same seed with each path for `--steps` steps on the steerable preference set (LoRA, fp32), each run in
its own process, and reports pairs/s, the process's peak resident memory and the largest difference of the logged
training losses from the reference run (shared prefix, checkpointing on). The batched path without checkpointing is
skipped at K >= `--batched_max_k_without_checkpointing` (it held 24 GB at K = 8 and was killed). Each row is written to
`--output` as soon as it is measured.

    python benchmarks/icrm_training_step.py --output docs/results/icrm_training_step.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from peft import LoraConfig

from trl_icrm import DEFAULT_MODEL, ICRMConfig, ICRMRewardTrainer
from trl_icrm.data.steerable import DEFAULT_SEEN_OBJECTIVES, build_steerable_splits, load_responses
from trl_icrm.models import LORA_TARGET_MODULES


def train_once(args, train_dataset, k: int, share: bool, output_dir: str, checkpointing: bool) -> dict[str, float]:
    config = ICRMConfig(
        output_dir=output_dir,
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=5e-4,
        lr_scheduler_type="constant",
        gradient_checkpointing=checkpointing,
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


def run_isolated(args, k: int, share: bool, checkpointing: bool) -> dict:
    """One training run in a fresh process (so its peak memory is its own): pairs/s, losses, peak RSS."""
    command = [sys.executable, os.path.abspath(__file__), "--single", str(k), str(int(share)), str(int(checkpointing))]
    command += ["--steps", str(args.steps), "--batch_size", str(args.batch_size)]
    command += ["--model_name_or_path", args.model_name_or_path]
    command += ["--threads", str(args.threads)] if args.threads else []
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"error": f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"}
    return json.loads(lines[-1])


def single(args) -> None:
    k, share, checkpointing = (int(v) for v in args.single)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    train_dataset = build_steerable_splits(load_responses(), DEFAULT_SEEN_OBJECTIVES, seed=0)["train"].shuffle(seed=0)
    with tempfile.TemporaryDirectory() as scratch:
        result = train_once(args, train_dataset, k, bool(share), scratch, bool(checkpointing))
    result["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(json.dumps(result))


def write_results(args, rows: list[dict]) -> None:
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump({"args": vars(args), "results": rows}, handle, indent=2)
    with open(args.output.rsplit(".", 1)[0] + "_table.md", "w", encoding="utf-8") as handle:
        handle.write(markdown_table(rows))


PATHS = {  # name: (share_demonstration_prefix, gradient_checkpointing)
    "shared_gc": (True, True),
    "shared": (True, False),
    "batched_gc": (False, True),
    "batched": (False, False),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", default=DEFAULT_MODEL)
    parser.add_argument("--demonstrations", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--batched_max_k_without_checkpointing", type=int, default=8)
    parser.add_argument("--paths", nargs="+", default=list(PATHS), choices=list(PATHS), help="Paths to run.")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
    parser.add_argument("--single", nargs=3, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--output", default=None, help="Write the results as JSON here (and a table beside it).")
    args = parser.parse_args()
    if args.single:
        return single(args)
    rows = []
    for k in args.demonstrations:
        row = {"k": k}
        for name, (share, checkpointing) in PATHS.items():
            if name not in args.paths:
                row[name] = {"skipped": "not run (--paths)"}
                continue
            if name == "batched" and k >= args.batched_max_k_without_checkpointing:
                row[name] = {"skipped": "does not fit in memory (24 GB) at this K"}
                continue
            row[name] = run_isolated(args, k, share, checkpointing)
            print(json.dumps({"k": k, name: row[name]}), flush=True)
        reference = row["shared_gc"].get("losses") or row["batched_gc"].get("losses")
        for name in PATHS:
            losses = row[name].get("losses")
            if reference and losses:
                row[name]["max_loss_difference"] = max(abs(a - b) for a, b in zip(losses, reference, strict=True))
        rows.append(row)
        if args.output:
            write_results(args, rows)


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| K | path | gradient checkpointing | pairs/s | peak memory (GiB) | vs batched (same checkpointing) "
        "| max loss difference |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        for name, (share, checkpointing) in PATHS.items():
            run = row[name]
            base = row["batched_gc" if checkpointing else "batched"]
            if "pairs_per_second" not in run:
                reason = run.get("skipped") or run.get("error")
                lines.append(
                    f"| {row['k']} | {'shared prefix' if share else 'batched'} | {checkpointing} | {reason} | - | - | - |"
                )
                continue
            speedup = (
                f"{run['pairs_per_second'] / base['pairs_per_second']:.2f}x" if "pairs_per_second" in base else "-"
            )
            lines.append(
                f"| {row['k']} | {'shared prefix' if share else 'batched'} | {checkpointing} "
                f"| {run['pairs_per_second']:.3f} | {run['peak_rss_gib']:.1f} | {speedup} "
                f"| {run.get('max_loss_difference', float('nan')):.1e} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

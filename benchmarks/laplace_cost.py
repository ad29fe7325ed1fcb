# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Cost of Laplace-penalized rewards against the MAP reward, and the cost of fitting the posterior (CPU or GPU).

On the embedded SmolLM2-135M (or random weights of its shape) as a BT LoRA reward model (r = 16 on every linear layer
of the backbone, the recipe's; random nonzero LoRA weights), this measures:

1. scoring one batch of completions (`--batch` of them: the longer answer of built-in pairs): the MAP reward
   (`SequenceClassifierReward`, one forward pass), the last-layer Laplace reward and the LoRA-KFAC Laplace reward
   (`LaplaceReward`: mean and variance, then the `lcb` penalty); best of `--repeats` wall-clock times, and their ratio
   to the MAP time (targets: last layer <= 1.3x, LoRA-KFAC <= 4x);
2. fitting each posterior on `--num_pairs` preference pairs (curvature + marginal-likelihood tuning of the prior):
   wall-clock time and the peak resident memory of a fresh process doing only that fit.

    python benchmarks/laplace_cost.py                                  # embedded model, CPU
    python benchmarks/laplace_cost.py --output docs/results/laplace_performance.json
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

import torch


def build_model(folder: str, seed: int = 0, model_name_or_path: str | None = None) -> str:
    """Save the embedded model as a one-output BT classifier with a LoRA adapter (random nonzero LoRA B) to
    `folder`; returns the adapter folder."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from trl_icrm import default_model_path
    from trl_icrm.models import LORA_TARGET_MODULES

    path = model_name_or_path or default_model_path()
    torch.manual_seed(seed)
    base = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path)
    base.config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    lora = LoraConfig(task_type="SEQ_CLS", r=16, lora_alpha=32, target_modules=LORA_TARGET_MODULES)
    model = get_peft_model(base, lora)
    for name, parameter in model.named_parameters():
        if ".lora_B." in name:
            torch.nn.init.normal_(parameter, std=0.01)
    adapter = os.path.join(folder, "bt-lora")
    model.save_pretrained(adapter)
    tokenizer.save_pretrained(adapter)
    model.get_base_model().config.save_pretrained(adapter)
    return adapter


def pairs(n: int) -> list[dict]:
    from trl_icrm.data.builtin import concise_vs_detailed

    data = concise_vs_detailed()["train"]
    return [data[i % len(data)] for i in range(n)]


def fit_in_subprocess(adapter: str, subset: str, num_pairs: int) -> dict:
    """Fit and save one posterior in a fresh process; its time and peak resident memory."""
    code = (
        "import json, resource, sys, time, torch\n"
        "sys.path.insert(0, 'benchmarks')\n"
        "from laplace_cost import pairs\n"
        "from trl_icrm.laplace import fit_laplace, load_bt_model\n"
        f"model, tokenizer = load_bt_model({adapter!r})\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "start = time.perf_counter()\n"
        f"posterior = fit_laplace(model, tokenizer, pairs({num_pairs}), subset={subset!r}, progress_bar=False)\n"
        "seconds = time.perf_counter() - start\n"
        f"posterior.save({adapter!r})\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(json.dumps({'fit_seconds': seconds, 'peak_rss_mib': peak / 1024, 'model_loaded_rss_mib': base / 1024,"
        " 'prior_precision': posterior.prior_precision}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def best_time(function, repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def scoring_costs(adapter: str, batch: int, repeats: int, chunk_size: int | None) -> dict:
    from trl_icrm.laplace import load_bt_model
    from trl_icrm.rewards import SequenceClassifierReward
    from trl_icrm.rewards.laplace import LaplaceReward

    rows = pairs(batch)
    prompts = [r["prompt"] for r in rows]
    completions = [max(r["chosen"], r["rejected"], key=lambda side: len(str(side))) for r in rows]  # the longer
    model, tokenizer = load_bt_model(adapter)
    rewards = {
        "map": SequenceClassifierReward(model, tokenizer, batch_size=batch),
        "laplace_last_layer": LaplaceReward(adapter, subset="last_layer", chunk_size=batch, penalty="lcb"),
        "laplace_lora_kfac": LaplaceReward(adapter, subset="lora", chunk_size=chunk_size or batch, penalty="lcb"),
    }
    renderer = rewards["laplace_last_layer"].renderer
    lengths = [len(renderer.encode_query(p, c)) for p, c in zip(prompts, completions, strict=True)]
    results = {"batch": batch, "mean_tokens": sum(lengths) / len(lengths), "chunk_size_lora": chunk_size or batch}
    with torch.inference_mode():
        results["map_seconds"] = best_time(lambda: rewards["map"](prompts, completions), repeats)
    for name in ("laplace_last_layer", "laplace_lora_kfac"):
        results[f"{name}_seconds"] = best_time(lambda name=name: rewards[name](prompts, completions), repeats)
        results[f"{name}_ratio"] = results[f"{name}_seconds"] / results["map_seconds"]
    map_scores = rewards["map"].score(prompts, completions).mean
    for name in ("laplace_last_layer", "laplace_lora_kfac"):
        posterior = rewards[name].score(prompts, completions)
        results[f"{name}_max_mean_difference_vs_map"] = float(abs(posterior.mean - map_scores).max())
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16, help="Completions per scored batch.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--chunk_size", type=int, default=None, help="Completions per pass of the LoRA-KFAC reward (default: --batch)."
    )
    parser.add_argument("--num_pairs", type=int, default=64, help="Pairs the posteriors are fitted on.")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--model_name_or_path", default=None, help="Base model (default: the embedded 135M).")
    parser.add_argument("--output", default=None, help="Write the results as JSON here.")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        adapter = build_model(folder, model_name_or_path=args.model_name_or_path)
        results = {"threads": torch.get_num_threads(), "num_pairs": args.num_pairs}
        for subset in ("last_layer", "lora"):
            results[f"fit_{subset}"] = fit_in_subprocess(adapter, subset, args.num_pairs)
            print(subset, results[f"fit_{subset}"], flush=True)
        results["scoring"] = scoring_costs(adapter, args.batch, args.repeats, args.chunk_size)
    print(json.dumps(results, indent=2))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    main()

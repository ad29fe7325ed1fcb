# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Throughput of `ICRMReward`: completions scored per second, full-sequence vs shared-prefix cached scoring.

GRPO scores G completions per prompt with the same demonstrations. The cached path encodes each prompt's demonstration
prefix once and runs only the G suffixes against its key-value cache. For K demonstrations in {0, 2, 4, 8} and G = 8,
this measures completions/s of both paths (best of `--repeats`), checks they agree, and reports the achieved FLOP/s
(2 x non-embedding parameters x tokens actually processed, plus attention) as a fraction of a plain fp32 matmul's
FLOP/s measured in the same run.

    python benchmarks/reward_throughput.py                       # embedded model, CPU
    python benchmarks/reward_throughput.py --random_model_size 1b --device cuda   # realistic size, random weights
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from trl_icrm import DEFAULT_MODEL, ICRMReward
from trl_icrm.data.builtin import concise_vs_detailed
from trl_icrm.modeling import ICRMSettings, load_icrm_model


RANDOM_SIZES = {  # Llama-style shapes of realistic size, random weights (for machines the 135M weights cannot reach)
    "135m": {
        "hidden_size": 576,
        "intermediate_size": 1536,
        "num_hidden_layers": 30,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
    },
    "1b": {
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
    },
}


def matmul_flops_per_second(device: str, dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def model_flops(config, sequences: list[tuple[int, int]], non_embedding_params: int) -> float:
    """Forward FLOPs of processing `(new_tokens, context_before)` per sequence: 2 * params per token + attention."""
    layers, hidden = config.num_hidden_layers, config.hidden_size
    total = 0.0
    for new, before in sequences:
        total += 2 * non_embedding_params * new
        total += 4 * layers * hidden * new * (before + (new + 1) / 2)  # QK^T and AV over the causal context
    return total


def load_model(args):
    if args.random_model_size:
        from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

        from trl_icrm import default_model_path
        from trl_icrm.modeling import prepare_tokenizer
        from trl_icrm.utils.testing import random_llama_config

        tokenizer = AutoTokenizer.from_pretrained(default_model_path())
        config = random_llama_config(tokenizer, **RANDOM_SIZES[args.random_model_size], max_position_embeddings=8192)
        config = LlamaConfig.from_dict({**config.to_dict(), "num_labels": 2})
        ICRMSettings().save_to_config(config)
        torch.manual_seed(0)
        model = LlamaForSequenceClassification(config).eval()
        prepare_tokenizer(tokenizer, model)
        return model, tokenizer
    return load_icrm_model(args.model_name_or_path, settings=ICRMSettings())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", default=DEFAULT_MODEL)
    parser.add_argument("--random_model_size", choices=sorted(RANDOM_SIZES), default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--num_prompts", type=int, default=4)
    parser.add_argument("--group_size", type=int, default=8, help="G completions per prompt")
    parser.add_argument("--demonstrations", type=int, nargs="+", default=[0, 2, 4, 8])
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", default=None, help="Write the results as JSON here.")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)

    model, tokenizer = load_model(args)
    model.to(device=args.device, dtype=dtype)
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    non_embedding = sum(p.numel() for n, p in inner.named_parameters() if "embed_tokens" not in n)
    data = concise_vs_detailed()["train"]
    pool = [{k: row[k] for k in ("prompt", "chosen", "rejected")} for row in data]
    test = concise_vs_detailed()["test"]
    prompts, completions = [], []
    for p in range(args.num_prompts):
        row = test[p % len(test)]
        for g in range(args.group_size):
            prompts.append(row["prompt"])
            completions.append((row["chosen"] if g % 2 else row["rejected"]) + f" (variant {g})")

    matmul = matmul_flops_per_second(args.device, dtype)
    results = {"device": args.device, "dtype": args.dtype, "matmul_flops_per_s": matmul, "rows": []}
    print(f"plain {args.dtype} matmul: {matmul / 1e9:.1f} GFLOP/s on {args.device}")
    print(
        f"{'K':>3} {'naive c/s':>10} {'cached c/s':>11} {'speed-up':>9} {'naive MFU':>10} {'cached MFU':>11} {'max |diff|':>11}"
    )
    for k in args.demonstrations:
        demos = [[pool[(p * 7 + j) % len(pool)] for j in range(k)] for p in range(args.num_prompts)]
        columns = {"demonstrations": [demos[i // args.group_size] for i in range(len(prompts))]}
        row = {"k": k}
        scores = {}
        for name, cached in (("naive", False), ("cached", True)):
            reward = ICRMReward(
                model, tokenizer, use_prefix_cache=cached, batch_size=args.batch_size, allow_zero_shot=True
            )
            encoded = reward.encode(prompts, completions, **columns)
            reward(prompts, completions, **columns)  # warm-up
            best = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                scores[name] = reward(prompts, completions, **columns)
                if args.device == "cuda":
                    torch.cuda.synchronize()
                best = min(best, time.perf_counter() - start)
            if cached and k > 0:
                prefixes = {tuple(e.prefix_ids) for e in encoded}
                work = [(len(p), 0) for p in prefixes] + [(len(e.query_ids), len(e.prefix_ids)) for e in encoded]
            else:
                work = [(len(e.input_ids), 0) for e in encoded]
            flops = model_flops(inner.config, work, non_embedding)
            row[f"{name}_completions_per_s"] = len(prompts) / best
            row[f"{name}_mfu"] = flops / best / matmul
            row["tokens_per_sequence"] = sum(len(e.input_ids) for e in encoded) / len(encoded)
        row["speedup"] = row["cached_completions_per_s"] / row["naive_completions_per_s"]
        row["max_abs_diff"] = max(abs(a - b) for a, b in zip(scores["naive"], scores["cached"], strict=True))
        results["rows"].append(row)
        print(
            f"{k:>3} {row['naive_completions_per_s']:>10.2f} {row['cached_completions_per_s']:>11.2f} "
            f"{row['speedup']:>8.2f}x {row['naive_mfu']:>10.1%} {row['cached_mfu']:>11.1%} {row['max_abs_diff']:>11.2e}"
        )
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()

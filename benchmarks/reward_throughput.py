# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Cost of steering: `ICRMReward` throughput relative to a plain reward model on the same completions.

GRPO scores G completions per prompt. A plain (BT) reward model of the same size runs each prompt + completion once;
ICRM also reads K demonstrations. `ICRMReward` scores rows as a prefix tree (demonstrations -> prompt -> completions)
and keeps demonstration key-value caches across calls, so that steering costs close to nothing more. For K in
`--demonstrations` and three demonstration modes, on `--num_prompts` x G completions, this measures in one run,
interleaved (best of `--repeats` each):

- `plain`: the same model with no demonstrations, as `SequenceClassifierReward` scores by default (a conventional
  reward model's cost: each prompt + completion, rows packed without padding, a prompt shared by G completions
  encoded once where it is long enough);
- `plain_full` (K = 0 only): the same, every full sequence in padded batches (`use_prefix_cache=False`);
- `icrm`: ICRM with the default fast path, its cross-call cache kept (as across GRPO steps) in three modes: `column`
  (a distinct demonstration set per prompt, in a dataset column), `bank` (a bank keyed by group, 4 groups, one set per
  key: `bank_draw="per_key"`) and `fixed` (one set for every prompt);
- `icrm_cold`: the same with the cross-call cache emptied before every call: every distinct set is encoded once per
  call. This is the headline of `column` mode (distinct sets are not assumed to recur), `icrm` that of the others;
- `naive`: ICRM scoring every full sequence (`use_prefix_cache=False`), on the first `--naive_prompts` prompts, at
  the largest K (its cost per completion does not depend on the mode).

It reports completions/s, the ratio plain / icrm (the cost of steering; target <= 1.3 for bank and fixed, <= 2 for
column at K = 8), the speed-up over naive (target >= 10x at K = 8), the largest score difference from naive scoring,
and the achieved FLOP/s of each path (2 x non-embedding parameters per processed token plus causal attention over its
context) as a fraction of a plain matmul measured in the same run.

    python benchmarks/reward_throughput.py --output docs/results/reward_throughput.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from trl_icrm import DEFAULT_MODEL, ICRMReward
from trl_icrm.data.builtin import concise_vs_detailed
from trl_icrm.icrm.modeling import ICRMSettings, load_icrm_model
from trl_icrm.rewards.scoring import group_by_prefix


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
MODES = ("column", "bank", "fixed")
NUM_GROUPS = 4


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


def tree_work(encoded, share: bool, encode_prefixes: bool, pad_token_id: int | None) -> list[tuple[int, int]]:
    """`(new tokens, context)` of each forward piece of the prefix-tree path (demonstrations only when encoded), the
    tree the scorer builds."""
    work = []
    seen = set()
    for (prefix, shared), rows in group_by_prefix(encoded, share, pad_token_id).items():
        if prefix and prefix not in seen and encode_prefixes:
            work.append((len(prefix), 0))
        seen.add(prefix)
        if shared:
            work.append((len(shared), len(prefix)))
        context = len(prefix) + len(shared)
        naive = not prefix and not shared
        work += [(len(encoded[i].input_ids) - (0 if naive else context), 0 if naive else context) for i in rows]
    return work


def load_model(args):
    if args.random_model_size:
        from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

        from trl_icrm import default_model_path
        from trl_icrm.models import prepare_tokenizer
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


def make_batch(args):
    """Prompts, completions (G per prompt), each row's group, and the demonstration pool."""
    data = concise_vs_detailed()
    pool = [{k: row[k] for k in ("prompt", "chosen", "rejected")} for row in data["train"]]
    test = data["test"]
    prompts, completions, groups = [], [], []
    for p in range(args.num_prompts):
        row = test[p % len(test)]
        for g in range(args.group_size):
            prompts.append(row["prompt"])
            # Distinct from their first token, as sampled completions are (a shared ending would not be shared).
            completions.append(f"Variant {g}: " + (row["chosen"] if g % 2 else row["rejected"]))
            groups.append(f"group-{p % NUM_GROUPS}")
    return prompts, completions, groups, pool


def rewards_for(mode: str, k: int, model, tokenizer, pool, args) -> dict[str, ICRMReward]:
    common = {"batch_size": args.batch_size, "allow_zero_shot": True}
    if mode == "bank":
        bank = {f"group-{g}": pool[g * 8 : g * 8 + max(k, 1) + 4] for g in range(NUM_GROUPS)}
        source = {"demonstration_bank": bank, "bank_key_column": "group", "num_demonstrations": k}
        source["bank_draw"] = "per_key"
    elif mode == "fixed":
        source = {"fixed_demonstrations": pool[:k]} if k else {"demonstrations_column": None}
    else:
        source = {}
    return {
        "plain": ICRMReward(model, tokenizer, demonstrations_column=None, **common),
        "plain_full": ICRMReward(model, tokenizer, demonstrations_column=None, use_prefix_cache=False, **common),
        "icrm": ICRMReward(model, tokenizer, **source, **common),
        "naive": ICRMReward(model, tokenizer, use_prefix_cache=False, **source, **common),
    }


def timed(reward: ICRMReward, prompts, completions, columns, cold: bool, device: str) -> tuple[float, list[float]]:
    if cold:
        reward.clear_cache()
    start = time.perf_counter()
    scores = reward(prompts, completions, **columns)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, scores


def measure(mode: str, k: int, model, tokenizer, batch, args, cost) -> dict:
    """One row: completions/s of every path, interleaved, best of `args.repeats`; ratios; FLOP/s fractions."""
    prompts, completions, groups, pool = batch
    per_prompt = [[pool[(p * 7 + j) % len(pool)] for j in range(k)] for p in range(args.num_prompts)]
    columns = {"demonstrations": [per_prompt[i // args.group_size] for i in range(len(prompts))], "group": groups}
    rewards = rewards_for(mode, k, model, tokenizer, pool, args)
    n_naive = args.naive_prompts * args.group_size
    subset = (prompts[:n_naive], completions[:n_naive], {key: v[:n_naive] for key, v in columns.items()})
    paths = {"plain": False, "icrm": False, "icrm_cold": True} if k else {"plain": False, "plain_full": False}
    if not k:
        paths["icrm"] = False
    best = {name: float("inf") for name in [*paths, "naive"]}
    scores = {}
    rewards["icrm"](prompts, completions, **columns)  # warm-up; fills the cross-call cache
    for _ in range(args.repeats):
        for name, cold in paths.items():
            reward = rewards["icrm" if name == "icrm_cold" else name]
            seconds, scores[name] = timed(reward, prompts, completions, columns, cold, args.device)
            best[name] = min(best[name], seconds)
        if k == max(args.demonstrations):
            seconds, scores["naive"] = timed(rewards["naive"], *subset, False, args.device)
            best["naive"] = min(best["naive"], seconds)
    row = {"mode": mode, "k": k}
    for name, seconds in best.items():
        if seconds < float("inf"):
            count = n_naive if name == "naive" else len(prompts)
            row[f"{name}_completions_per_s"] = count / seconds
    encoded = rewards["icrm"].encode(prompts, completions, **columns)
    pad = rewards["icrm"].tokenizer.pad_token_id
    work = {
        "plain": tree_work([e.__class__([], e.query_ids, 0, 0) for e in encoded], True, True, pad),
        "plain_full": [(len(e.query_ids), 0) for e in encoded],
        "icrm": tree_work(encoded, True, False, pad),
        "icrm_cold": tree_work(encoded, True, True, pad),
        "naive": [(len(e.input_ids), 0) for e in encoded[:n_naive]],
    }
    for name, pieces in work.items():
        if f"{name}_completions_per_s" in row:
            row[f"{name}_mfu"] = cost(pieces) / best[name] / args.matmul
    headline = "icrm_cold" if mode == "column" and k else "icrm"  # distinct sets per prompt: every call encodes them
    row["headline"] = headline
    row["steering_cost"] = row["plain_completions_per_s"] / row[f"{headline}_completions_per_s"]
    if "naive" in scores:
        row["speedup_over_naive"] = row[f"{headline}_completions_per_s"] / row["naive_completions_per_s"]
        row["max_abs_diff_vs_naive"] = max(abs(a - b) for a, b in zip(scores["naive"], scores[headline], strict=False))
    row["tokens_demonstrations"] = sum(len(e.prefix_ids) for e in encoded) / len(encoded)
    row["tokens_query"] = sum(len(e.query_ids) for e in encoded) / len(encoded)
    row["cache"] = rewards["icrm"].cache_info()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", default=DEFAULT_MODEL)
    parser.add_argument("--random_model_size", choices=sorted(RANDOM_SIZES), default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--num_prompts", type=int, default=16)
    parser.add_argument("--group_size", type=int, default=8, help="G completions per prompt")
    parser.add_argument("--demonstrations", type=int, nargs="+", default=[0, 2, 4, 8])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--naive_prompts", type=int, default=1, help="Prompts (x G) scored by the naive path.")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
    parser.add_argument("--output", default=None, help="Write the results as JSON here (and a table beside it).")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    model, tokenizer = load_model(args)
    model.to(device=args.device, dtype=dtype)
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    non_embedding = sum(p.numel() for n, p in inner.named_parameters() if "embed_tokens" not in n)
    args.matmul = matmul_flops_per_second(args.device, dtype)
    batch = make_batch(args)
    results = {"args": vars(args), "rows": []}
    print(f"plain {args.dtype} matmul: {args.matmul / 1e9:.1f} GFLOP/s on {args.device}")
    for k in args.demonstrations:
        for mode in args.modes if k else args.modes[:1]:  # without demonstrations the modes are the same
            row = measure(
                mode, k, model, tokenizer, batch, args, lambda w: model_flops(inner.config, w, non_embedding)
            )
            results["rows"].append(row)
            print(json.dumps(row))
            if args.output:
                write_results(args.output, results)


def write_results(path: str, results: dict) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
    with open(path.rsplit(".", 1)[0] + "_table.md", "w", encoding="utf-8") as handle:
        handle.write(markdown_table(results["rows"]))


def markdown_table(rows: list[dict]) -> str:
    def value(row, key, fmt):
        return format(row[key], fmt) if key in row else "-"

    lines = [
        "| K | mode | plain c/s | ICRM c/s (cache kept) | ICRM c/s (cache emptied each call) | naive c/s "
        "| ICRM cost vs plain | speed-up over naive | FLOP/s vs matmul: plain / ICRM / naive | max diff vs naive |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        mfu = "/".join(value(row, f"{n}_mfu", ".0%") for n in ("plain", row["headline"], "naive"))
        lines.append(
            f"| {row['k']} | {row['mode'] if row['k'] else 'any'} | {value(row, 'plain_completions_per_s', '.2f')} "
            f"| {value(row, 'icrm_completions_per_s', '.2f')} | {value(row, 'icrm_cold_completions_per_s', '.2f')} "
            f"| {value(row, 'naive_completions_per_s', '.2f')} | **{row['steering_cost']:.2f}x** "
            f"({row['headline'].replace('icrm_cold', 'emptied').replace('icrm', 'kept')}) "
            f"| {value(row, 'speedup_over_naive', '.1f')}x | {mfu} | {value(row, 'max_abs_diff_vs_naive', '.1e')} |"
        )
    plain_full = [row for row in rows if "plain_full_completions_per_s" in row]
    if plain_full:
        row = plain_full[0]
        lines.append(
            f"\nK = 0, every full sequence (no prefix tree): {row['plain_full_completions_per_s']:.2f} c/s against "
            f"{row['plain_completions_per_s']:.2f} for the plain reward."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Regenerate the steerable preference data set: a model's responses to the built-in prompts under eight styles.

Writes `{prompt, style, response}` JSON lines (the file shipped as `trl_icrm/data/steerable_responses.jsonl` was made
with the defaults below), prints how many pairs each objective keeps after the instruction-following check, and
optionally saves the splits (`--splits_dir`) with `datasets`.

    python examples/build_steerable_dataset.py                                # embedded model, ~10 min on 2 CPU cores
    python examples/build_steerable_dataset.py --model_name_or_path Qwen/Qwen2.5-0.5B-Instruct \
        --output_file outputs/steerable/qwen_responses.jsonl --splits_dir outputs/steerable/qwen_splits
"""

from __future__ import annotations

import argparse
import json
import time

from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer

from trl_icrm import DEFAULT_MODEL, resolve_model_name_or_path
from trl_icrm.data.steerable import (
    OBJECTIVES,
    build_steerable_splits,
    bundled_responses_path,
    default_prompts,
    generate_style_responses,
    save_responses,
    summarize,
)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", default=DEFAULT_MODEL)
    parser.add_argument("--output_file", default=bundled_responses_path())
    parser.add_argument("--splits_dir", default=None, help="Also save the splits here (datasets.save_to_disk).")
    parser.add_argument("--num_prompts", type=int, default=None, help="Use only the first N built-in prompts.")
    parser.add_argument("--max_new_tokens", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--trust_remote_code", action="store_true")
    args = parser.parse_args(argv)

    path = resolve_model_name_or_path(args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=args.trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=args.trust_remote_code).eval()
    prompts = default_prompts()[: args.num_prompts]
    start = time.perf_counter()
    rows = generate_style_responses(
        model,
        tokenizer,
        prompts,
        OBJECTIVES,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        progress=lambda chunks: tqdm(chunks, desc="Generating", unit="batch"),
    )
    save_responses(rows, args.output_file)
    splits = build_steerable_splits(rows)
    summary = {
        "model": args.model_name_or_path,
        "num_prompts": len(prompts),
        "num_responses": len(rows),
        "seconds": round(time.perf_counter() - start, 1),
        "pairs": summarize(splits),
    }
    if args.splits_dir:
        splits.save_to_disk(args.splits_dir)
    print(json.dumps(summary, indent=2))
    print(f"Responses: {args.output_file}")
    return summary


if __name__ == "__main__":
    main()

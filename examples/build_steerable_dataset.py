# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Regenerate the steerable preference data set: a model's responses to the built-in prompts under eight styles.

Writes `{prompt, style, response}` JSON lines to `--output_file` as they are generated (default
`outputs/steerable/responses.jsonl`; the file shipped as `trl_icrm/data/steerable_responses.jsonl` was made with the
other defaults below, and is only replaced when you pass its path). A run that finds responses in `--output_file`
(e.g. of an interrupted run) generates only the missing ones, unless `--overwrite`. Then it prints how many pairs each
objective keeps after the instruction-following check, and optionally saves the splits (`--splits_dir`) with
`datasets`. `trl-icrm steer-eval --responses <file>` evaluates on the new set.

    python examples/build_steerable_dataset.py                                # embedded model, ~10 min on 2 CPU cores
    python examples/build_steerable_dataset.py --model_name_or_path Qwen/Qwen2.5-0.5B-Instruct \
        --output_file outputs/steerable/qwen_responses.jsonl --splits_dir outputs/steerable/qwen_splits
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from trl import TrlParser

from trl_icrm import DEFAULT_MODEL, resolve_model_name_or_path
from trl_icrm.data.steerable import (
    OBJECTIVES,
    build_steerable_splits,
    default_prompts,
    iter_style_responses,
    load_responses,
    save_responses,
    summarize,
)


@dataclass
class ScriptArguments:
    """Arguments of `examples/build_steerable_dataset.py`."""

    model_name_or_path: str = field(default=DEFAULT_MODEL, metadata={"help": "Model that writes the responses."})
    output_file: str = field(
        default="outputs/steerable/responses.jsonl", metadata={"help": "JSON lines file of the responses (written)."}
    )
    splits_dir: str | None = field(
        default=None, metadata={"help": "Also save the splits here (datasets.save_to_disk)."}
    )
    num_prompts: int | None = field(default=None, metadata={"help": "Use only the first N built-in prompts."})
    max_new_tokens: int = field(default=64, metadata={"help": "Most tokens per response."})
    batch_size: int = field(default=32, metadata={"help": "Prompts per generate call."})
    overwrite: bool = field(
        default=False, metadata={"help": "Generate every response again instead of resuming from --output_file."}
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Trust the model's remote code."})


def main(script_args: ScriptArguments) -> dict:
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model_name_or_path(script_args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=script_args.trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=script_args.trust_remote_code).eval()
    prompts = default_prompts()[: script_args.num_prompts]
    output = Path(script_args.output_file)
    done = [] if script_args.overwrite or not output.is_file() else load_responses(output)
    start = time.perf_counter()
    new_rows = iter_style_responses(
        model,
        tokenizer,
        prompts,
        OBJECTIVES,
        max_new_tokens=script_args.max_new_tokens,
        batch_size=script_args.batch_size,
        progress=lambda chunks: tqdm(chunks, desc="Generating", unit="batch"),
        skip=[(row["prompt"], row["style"]) for row in done],
    )
    save_responses(new_rows, output, append=bool(done))  # each row as it comes: an interrupted run keeps them
    rows = load_responses(output)
    splits = build_steerable_splits(rows)
    summary = {
        "model": script_args.model_name_or_path,
        "num_prompts": len(prompts),
        "num_responses": len(rows),
        "num_resumed": len(done),
        "seconds": round(time.perf_counter() - start, 1),
        "pairs": summarize(splits),
    }
    if script_args.splits_dir:
        splits.save_to_disk(script_args.splits_dir)
    print(json.dumps(summary, indent=2))
    print(f"Responses: {script_args.output_file}")
    return summary


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None) -> TrlParser:
    dataclass_types = (ScriptArguments,)
    if subparsers is not None:
        return subparsers.add_parser(
            "build-steerable-dataset", help="Regenerate the steerable data set", dataclass_types=dataclass_types
        )
    return TrlParser(dataclass_types, prog=prog, description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())

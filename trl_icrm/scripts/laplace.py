# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""`trl-icrm laplace`: fit a Laplace posterior to a trained Bradley-Terry reward model (Laplace-LoRA), post hoc.

Takes a BT reward model saved by `trl-icrm train --method bt` and the preference pairs it was trained on, computes the
GGN of the Bradley-Terry likelihood with laplace-torch (`pip install trl-icrm[laplace]`), tunes the prior precision by
marginal likelihood and saves the posterior next to the model (`laplace_<subset>.safetensors`). `trl_icrm.load_reward`
then loads the model as a `laplace` reward: MAP reward and predictive variance per completion, for the `lcb` (std) and
`var_penalty` penalties, ensembles, best-of-N, GRPO/RLOO and the reward server.

`--subset lora` (Kronecker-factored, the default) needs the LoRA adapter (train with `--no_merge_lora`); `--subset
last_layer` (the score head, dense) works with any BT model and is the cheap one. The pairs are split as `trl-icrm
train` split them (same `--eval_fraction` and `--seed`), so the posterior sees the training pairs only; with
`--evaluate` the held-out pairs give the MAP and Laplace calibration (written to `laplace_<subset>_eval.json`).

    trl-icrm train --method bt --no_merge_lora --output_dir outputs/math-bt-lora
    trl-icrm laplace --model_name_or_path outputs/math-bt-lora
    trl-icrm laplace --model_name_or_path outputs/math-bt --subset last_layer --evaluate
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field
from typing import Any

from ..data.math_preferences import DEFAULT_PREFERENCES_DIR
from ._common import command_parser


@dataclass
class LaplaceScriptArguments:
    """Arguments of `trl-icrm laplace`."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "The BT reward model folder (a LoRA adapter folder for --subset lora)."}
    )
    dataset_path: str = field(
        default=DEFAULT_PREFERENCES_DIR, metadata={"help": "Its preference pairs (`trl-icrm build-math-preferences`)."}
    )
    eval_fraction: float = field(
        default=0.1, metadata={"help": "Share of pairs held out, as `trl-icrm train` held them out (0: none)."}
    )
    seed: int = field(default=42, metadata={"help": "Seed of the split (the training run's `--seed`)."})
    num_pairs: int | None = field(default=None, metadata={"help": "Use only the first training pairs (none: all)."})
    subset: str = field(
        default="lora",
        metadata={"help": "Weights of the posterior: 'lora' or 'last_layer'.", "choices": ["lora", "last_layer"]},
    )
    hessian_structure: str | None = field(
        default=None,
        metadata={
            "help": "'kron', 'diag' or 'full' (default: kron for lora, full for last_layer).",
            "choices": [None, "kron", "diag", "full"],
        },
    )
    prior_precision: float = field(default=1.0, metadata={"help": "Initial prior precision lambda."})
    tune_prior: bool = field(default=True, metadata={"help": "Tune lambda by marginal likelihood."})
    batch_size: int = field(default=4, metadata={"help": "Pairs per curvature batch."})
    max_length: int = field(default=1024, metadata={"help": "Tokens kept per side of a pair."})
    evaluate: bool = field(
        default=False, metadata={"help": "Also measure MAP vs Laplace calibration on held-out pairs."}
    )
    progress_bar: bool = field(default=True, metadata={"help": "Show the progress bar over the curvature batches."})
    threads: int | None = field(default=None, metadata={"help": "CPU threads of torch (torch's choice if not given)."})

    def __post_init__(self):
        if self.batch_size < 1 or self.max_length < 1:
            raise ValueError("batch_size and max_length must be >= 1.")
        if not 0 <= self.eval_fraction < 1:
            raise ValueError(f"eval_fraction must be in [0, 1), got {self.eval_fraction}.")
        if not self.prior_precision > 0:
            raise ValueError(f"prior_precision must be > 0, got {self.prior_precision}.")


def load_pairs(args: LaplaceScriptArguments) -> tuple[Any, Any]:
    """`(training pairs, held-out pairs or None)`, split as `trl-icrm train` splits them
    (`trl_icrm.data.math_preferences.load_preference_split`)."""
    from ..data.math_preferences import load_preference_split

    return load_preference_split(args.dataset_path, args.eval_fraction, args.seed, args.num_pairs)


def main(args: LaplaceScriptArguments) -> dict[str, Any]:
    import torch

    from ..laplace import describe, fit_laplace, load_bt_model

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if not args.model_name_or_path:
        raise SystemExit("trl-icrm laplace needs --model_name_or_path (a BT reward model folder).")
    train, held_out = load_pairs(args)
    model, tokenizer = load_bt_model(args.model_name_or_path)
    started = time.perf_counter()
    posterior = fit_laplace(
        model,
        tokenizer,
        train,
        args.subset,
        args.hessian_structure,
        args.prior_precision,
        args.tune_prior,
        args.batch_size,
        args.max_length,
        args.progress_bar,
    )
    summary = {**describe(posterior), "fit_seconds": time.perf_counter() - started}
    summary["path"] = posterior.save(args.model_name_or_path)
    if args.evaluate and held_out is not None:
        summary["eval"] = _evaluate(posterior, tokenizer, held_out, args)
    print(
        f"Laplace posterior ({summary['subset']}, {summary['structure']}, {summary['num_weights']} weights, "
        f"prior precision {summary['prior_precision']:.4g}) fitted in {summary['fit_seconds']:.0f} s: {summary['path']}"
    )
    return summary


def _evaluate(posterior, tokenizer, held_out, args) -> dict[str, Any]:
    from ..laplace.evaluation import calibration_summary, pair_predictions
    from ..utils.io import write_json

    summary = calibration_summary(pair_predictions(posterior, tokenizer, held_out, max_length=args.max_length))
    write_json(summary, os.path.join(args.model_name_or_path, f"laplace_{args.subset}_eval.json"))
    print(f"Held-out pairs: ECE MAP {summary['ece_map']:.3f}, Laplace {summary['ece_laplace']:.3f}")
    return summary


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    help_text = "Fit a Laplace posterior to a BT reward model"
    return command_parser("laplace", help_text, (LaplaceScriptArguments,), __doc__, subparsers, prog)


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())

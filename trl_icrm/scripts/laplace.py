# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""`trl-icrm laplace`: fit a Laplace posterior to a trained Bradley-Terry reward model (Laplace-LoRA), post hoc.

Takes a BT reward model saved by `trl-icrm train --method bt` and the preference pairs it was trained on, computes the
GGN of the Bradley-Terry likelihood with laplace-torch (`pip install trl-icrm[laplace]`), tunes the prior precision by
marginal likelihood and saves the posterior next to the model (`laplace_<subset>.safetensors`). `trl_icrm.load_reward`
then loads the model as a `laplace` reward: MAP reward and predictive variance per completion, for the `lcb` (std) and
`var_penalty` penalties, ensembles, best-of-N, GRPO/RLOO and the reward server.

`--subset last_layer` (the score head, dense; the default) works with any BT model, is the cheap one and, at the data
scale of a few hundred pairs, the better calibrated one (docs/method.md); `--subset lora` (Kronecker-factored) needs
the LoRA adapter (train with `--no_merge_lora`). The pairs are the training run's: with no `--dataset_name`, the data
set, split and seed that `trl-icrm train` recorded in the model folder (`reward_model_metrics.json`), so the posterior
sees the training pairs only; with `--evaluate` the held-out pairs give the MAP and Laplace calibration (written to
`laplace_<subset>_eval.json`).

    trl-icrm train --method bt --output_dir outputs/math-bt
    trl-icrm laplace --model_name_or_path outputs/math-bt --evaluate
    trl-icrm train --method bt --no_merge_lora --output_dir outputs/math-bt-lora
    trl-icrm laplace --model_name_or_path outputs/math-bt-lora --subset lora
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from trl import ScriptArguments

from ..data.math_preferences import DEFAULT_PREFERENCES_DIR
from ._common import ThreadsArguments, command_parser


TRAINING_RECORD = "reward_model_metrics.json"
"""The file in which `trl-icrm train` records its data set, split and seed (its `data` entry)."""


@dataclass
class LaplaceScriptArguments(ThreadsArguments, ScriptArguments):
    """Arguments of `trl-icrm laplace`: the model, TRL's data set arguments (by default the training run's) and the
    posterior's."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "The BT reward model folder (a LoRA adapter folder for --subset lora)."}
    )
    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "Its preference pairs, as for `trl-icrm train` (default: the data set the model was trained on)."
        },
    )
    eval_fraction: float | None = field(
        default=None, metadata={"help": "Share of pairs held out (default: the training run's, else 0.1)."}
    )
    seed: int | None = field(
        default=None, metadata={"help": "Seed of the split (default: the training run's, else 42)."}
    )
    num_pairs: int | None = field(default=None, metadata={"help": "Use only the first training pairs (none: all)."})
    subset: str = field(
        default="last_layer",
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
    feature_cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "subset last_layer: read and fill the backbone features of the pairs in this feature cache "
            "(kept across runs, keyed by the model's weights and the tokens)."
        },
    )

    def __post_init__(self):
        if self.batch_size < 1 or self.max_length < 1:
            raise ValueError("batch_size and max_length must be >= 1.")
        if self.eval_fraction is not None and not 0 <= self.eval_fraction < 1:
            raise ValueError(f"eval_fraction must be in [0, 1), got {self.eval_fraction}.")
        if not self.prior_precision > 0:
            raise ValueError(f"prior_precision must be > 0, got {self.prior_precision}.")


def training_data(args: LaplaceScriptArguments) -> dict[str, Any]:
    """The data set, splits and seed of the pairs: the flags given, else what `trl-icrm train` recorded in the model
    folder, else the math recipe's pairs with `trl-icrm train`'s defaults."""
    record_path = os.path.join(args.model_name_or_path, TRAINING_RECORD)
    recorded = {}
    if os.path.isfile(record_path):
        with open(record_path, encoding="utf-8") as handle:
            recorded = json.load(handle).get("data") or {}
    data = {
        "dataset_name": DEFAULT_PREFERENCES_DIR,
        "dataset_config": None,
        "dataset_train_split": "train",
        "dataset_test_split": "test",
        "eval_fraction": 0.1,
        "seed": 42,
        **recorded,
    }
    if args.dataset_name is not None:  # another data set: its own splits
        data.update(dataset_name=args.dataset_name, dataset_config=args.dataset_config)
        data.update(dataset_train_split=args.dataset_train_split, dataset_test_split=args.dataset_test_split)
    data.update({key: getattr(args, key) for key in ("eval_fraction", "seed") if getattr(args, key) is not None})
    return data


def load_pairs(args: LaplaceScriptArguments) -> tuple[Any, Any]:
    """`(training pairs, held-out pairs or None)`, split as `trl-icrm train` split them ([`training_data`])."""
    from ..data.loading import load_training_pairs

    data = training_data(args)
    if data["dataset_name"] == DEFAULT_PREFERENCES_DIR and not os.path.isdir(DEFAULT_PREFERENCES_DIR):
        raise FileNotFoundError(
            f"No preference pairs: give --dataset_name (the pairs {args.model_name_or_path} was trained on); the "
            f"default, {DEFAULT_PREFERENCES_DIR}, is not there."
        )
    train, held_out = load_training_pairs(**data)
    if args.num_pairs is not None:
        train = train.select(range(min(args.num_pairs, len(train))))
    return train, held_out


def main(args: LaplaceScriptArguments) -> dict[str, Any]:

    from ..laplace import describe, fit_laplace, load_bt_model

    args.apply_threads()
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
        args.feature_cache_dir,
    )
    summary = {**describe(posterior), "fit_seconds": time.perf_counter() - started}
    summary["std_to_spread"] = _check_spread(posterior, tokenizer, train, args)
    summary["path"] = posterior.save(args.model_name_or_path)
    if args.evaluate and held_out is not None:
        summary["eval"] = _evaluate(posterior, tokenizer, held_out, args)
    print(
        f"Laplace posterior ({summary['subset']}, {summary['structure']}, {summary['num_weights']} weights, "
        f"prior precision {summary['prior_precision']:.4g}) fitted in {summary['fit_seconds']:.0f} s: {summary['path']}"
    )
    return summary


def _check_spread(posterior, tokenizer, train, args, num_pairs: int = 64) -> float:
    """The predictive std over the spread of the MAP rewards on (up to `num_pairs`) training pairs, with a warning
    when the std dwarfs the spread (an `lcb` penalty would then rank by uncertainty alone)."""
    from ..laplace.evaluation import STD_TO_SPREAD_WARNING, pair_predictions, std_to_spread

    sample = train.select(range(min(num_pairs, len(train))))
    ratio = std_to_spread(pair_predictions(posterior, tokenizer, sample, max_length=args.max_length))
    if ratio > STD_TO_SPREAD_WARNING:
        remedy = "fit on more pairs" + (", use --subset last_layer" if args.subset != "last_layer" else "")
        print(
            f"Warning: the predictive std of the rewards is {ratio:.1f}x their spread on the training pairs: `lcb` "
            f"and `var_penalty` would rank completions by uncertainty alone ({remedy}, or use a smaller penalty_coef)."
        )
    return ratio


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

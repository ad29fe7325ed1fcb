# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""`trl-icrm bon`: best-of-N over-optimization curves on math problems or your own prompts: reward model(s) as the
proxy, math-verify as the gold.

For each prompt, the policy (`--model_name_or_path`, the embedded SmolLM2-135M-Instruct by default) samples N answers
once (`--num_samples`). The proxy reward model scores every answer (with its uncertainty if it is an ICRM model),
math-verify checks each answer against the prompt's reference answer (the gold reward), and the exact
order-statistics estimator turns this one sample set into the expected proxy and gold score of best-of-n for every
n <= N, with bootstrap confidence intervals over prompts: plain selection and, for an ICRM proxy, the uncertainty
penalties (`--penalties`); with several reward models, their ensembles (`--ensembles`). Over-optimization shows as a
proxy curve that keeps rising with KL_bon while the gold curve falls.

The prompts: built-in arithmetic word problems by default, or the first `--num_prompts` rows of `--dataset_name` (as
TRL's scripts take it: a hub id, a folder or a .json/.jsonl/.csv/.parquet file; its `--dataset_test_split`, or a
file's rows) with a prompt column (`--prompt_column`, strings or lists of messages) and the reference answers
(`--answer_column`; by default `solution` or `answer`); GSM8K and MATH-500 are recognized as they are
(`trl_icrm.data.prompts`).

Reward models are loaded with `trl_icrm.load_reward` (their kind read from the saved config with `--reward auto`); an
ICRM proxy is steered by the fixed demonstrations of `--demonstrations`, else by the prompts' own demonstrations
column (`--demonstrations_column`), else by `--num_demonstrations` pairs of `--demonstration_bank` drawn by the
prompts' `--bank_key` column; without any of these it scores zero-shot (and says so).

Outputs in `--output_dir`: best_of_n_curves.json, best_of_n_curves.csv, best_of_n_curves.png (proxy and gold vs
KL_bon) and best_of_n_samples.jsonl (every answer with its scores).

    trl-icrm bon --reward_model_name_or_path outputs/icrm-concise-vs-detailed --num_prompts 64 --num_samples 16
    trl-icrm bon --reward_model_name_or_path rm_a rm_b --num_prompts 8 --num_samples 8 --max_new_tokens 64
    trl-icrm bon --reward_model_name_or_path outputs/math-icrm --dataset_name my_problems.jsonl --answer_column answer
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..experiments.best_of_n import BestOfNSettings
from ..utils.default_model import DEFAULT_MODEL
from ._common import (
    DemonstrationBankArguments,
    PromptDatasetArguments,
    RewardModelsArguments,
    ThreadsArguments,
    command_parser,
)


@dataclass
class BonScriptArguments(ThreadsArguments, DemonstrationBankArguments, PromptDatasetArguments, RewardModelsArguments):
    """Arguments of `trl-icrm bon` (besides the [`BestOfNSettings`] of the run): the proxy reward models (their kind:
    'verifier' makes math-verify the proxy; a model with a variance, such as ICRM, adds penalty curves), the prompts,
    their demonstrations and the policy."""

    demonstrations: str | None = field(
        default=None,
        metadata={
            "help": "Pairs that steer ICRM proxies: a JSON list of {prompt, chosen, rejected} or the path of a JSON "
            "file holding one (none: zero-shot)."
        },
    )
    num_demonstrations: int = field(
        default=4, metadata={"help": "Demonstrations drawn per prompt from --demonstration_bank."}
    )
    model_name_or_path: str = field(
        default=DEFAULT_MODEL, metadata={"help": "Policy: a folder, hub id or the embedded default model."}
    )
    output_dir: str = field(default="runs/best_of_n", metadata={"help": "Folder for the curves (JSON, CSV, PNG)."})


class DemonstrationsError(ValueError):
    """Demonstrations that cannot steer the proxies: not a JSON list of pairs, or given to a BT reward model."""


def read_demonstrations(value: str | None) -> list[dict[str, Any]] | None:
    """The demonstration pairs given as JSON text (`[{...}, ...]`) or as the path of a JSON file (`None`: none)."""
    from ..demonstrations import MalformedDemonstrationError, validate_demonstrations

    if not value:
        return None
    is_json = value.lstrip().startswith("[")
    try:
        demonstrations = json.loads(value if is_json else Path(value).read_text())
        return validate_demonstrations(demonstrations, "--demonstrations")
    except FileNotFoundError as error:
        raise DemonstrationsError(f"--demonstrations: no file {value!r} (give a JSON file or a JSON list).") from error
    except (json.JSONDecodeError, MalformedDemonstrationError) as error:
        raise DemonstrationsError(f"--demonstrations: not a JSON list of {{prompt, chosen, rejected}} pairs: {error}")


def load_proxies(
    paths: list[str],
    reward: str = "auto",
    demonstrations: list[dict[str, Any]] | None = None,
    steering: dict[str, Any] | None = None,
) -> list[Any]:
    """The proxy reward functions, loaded with `trl_icrm.load_reward` and named after their folders: ICRM models
    steered by the fixed `demonstrations`, else by `steering` (the `ICRMReward` arguments of a demonstrations column
    or a bank: [`icrm_steering`]), else zero-shot; BT models (which take no demonstrations)."""
    from ..rewards import load_reward, reward_model_kind

    if reward == "verifier":
        return [load_reward("verifier")]
    proxies = []
    for path in paths:
        kind = reward_model_kind(path) if reward == "auto" else reward
        name = Path(str(path).rstrip("/")).name or str(path)
        if kind == "icrm":
            steer = {"fixed_demonstrations": list(demonstrations) if demonstrations else None}
            if not demonstrations and steering:
                steer = dict(steering)
            elif not demonstrations:
                print(f"Note: the ICRM proxy {name} scores zero-shot (no --demonstrations, no demonstrations column).")
            proxies.append(load_reward(path, kind="icrm", **steer, allow_zero_shot=True, name=name))
        elif demonstrations:
            raise DemonstrationsError(
                f"Demonstrations steer ICRM reward models only; {path} is a {kind!r} reward model, which takes none."
            )
        else:
            proxies.append(load_reward(path, kind=kind, name=name))
    return proxies


def icrm_steering(script_args: BonScriptArguments, dataset) -> dict[str, Any]:
    """The `ICRMReward` arguments that steer ICRM proxies by the prompts' data: their demonstrations column, else
    `--demonstration_bank` keyed by their `--bank_key` column; `{}` when neither applies (fixed or zero-shot)."""
    from ..serving.loading import read_demonstration_bank

    columns = dataset.column_names if dataset is not None else []
    if script_args.demonstrations_column in columns:
        return {"demonstrations_column": script_args.demonstrations_column}
    if not script_args.demonstration_bank:
        return {}
    key = script_args.bank_key
    if key not in columns:
        raise DemonstrationsError(
            f"--demonstration_bank is drawn from by the prompts' {key!r} column (--bank_key), and the prompts have "
            f"none: their columns are {sorted(columns)}."
        )
    try:
        bank = read_demonstration_bank(script_args.demonstration_bank, key)
    except (OSError, ValueError) as error:
        raise DemonstrationsError(f"--demonstration_bank: {error}") from error
    return {"demonstration_bank": bank, "bank_key_column": key, "num_demonstrations": script_args.num_demonstrations}


def load_prompts(script_args: BonScriptArguments):
    """The prompts of `--dataset_name` (its test split where it has one, else its train split or a file's rows) with
    their reference answers; None for the built-in problems."""
    from ..data.prompts import load_prompt_splits, require_answers

    if not script_args.dataset_name:
        return None
    args = script_args
    source = (args.dataset_name, args.dataset_config, args.dataset_train_split, args.dataset_test_split)
    train, test = load_prompt_splits(*source, prompt_column=args.prompt_column, answer_column=args.answer_column)
    prompts = test if test is not None else train
    require_answers(prompts, "The gold reward of best-of-n (math-verify)")
    return prompts


def summary_rows(curve, num_rows: int = 6) -> list[str]:
    """Rows `n | KL_bon | proxy | gold` of one curve at about `num_rows` values of n (the first, the last and
    log-spaced ones between), each value the estimated expectation over prompts."""
    import numpy as np

    picks = sorted({int(i) for i in np.unique(np.geomspace(1, len(curve.ns), num_rows).round()) - 1})
    proxy = curve.metrics.get("proxy", {}).get("mean")
    rows = []
    for i in picks:
        proxy_value = f"{proxy[i]:8.3f}" if proxy is not None else "       -"
        rows.append(
            f"    {curve.ns[i]:5d} {curve.kl_bon[i]:8.3f} {proxy_value} {curve.metrics['gold']['mean'][i]:8.3f}"
        )
    return rows


def print_summary(result: dict[str, Any], num_samples: int) -> None:
    timings = result["timings"]
    print(
        f"Best-of-n over {result['num_prompts']} prompts, N = {num_samples}: "
        f"{timings['total_seconds']:.0f} s in all ({timings['generation_seconds']:.0f} s sampling, "
        f"{timings['proxy_scoring_seconds']:.0f} s proxy, {timings['gold_scoring_seconds']:.0f} s gold)."
    )
    for curve in result["curves"]:
        skipped = (
            f" ({curve.num_prompts_skipped} prompts skipped: missing scores)" if curve.num_prompts_skipped else ""
        )
        print(f"  {curve.name}{skipped}\n        n   KL_bon    proxy     gold")
        print("\n".join(summary_rows(curve)))
    for kind, path in result["files"].items():
        print(f"  {kind}: {path}")


def main(script_args: BonScriptArguments, settings: BestOfNSettings) -> dict[str, Any]:
    from ..data.prompts import PromptDatasetError
    from ..experiments.best_of_n import run_best_of_n_experiment

    script_args.apply_threads()
    if not script_args.reward_model_name_or_path and script_args.reward != "verifier":
        raise SystemExit("trl-icrm bon needs --reward_model_name_or_path (one or more reward models).")
    try:
        dataset = load_prompts(script_args)
        demonstrations = read_demonstrations(script_args.demonstrations)
        steering = icrm_steering(script_args, dataset)
        proxies = load_proxies(script_args.reward_model_name_or_path, script_args.reward, demonstrations, steering)
    except (DemonstrationsError, PromptDatasetError) as error:
        raise SystemExit(str(error)) from error
    result = run_best_of_n_experiment(
        proxies, script_args.output_dir, model=script_args.model_name_or_path, dataset=dataset, settings=settings
    )
    print_summary(result, settings.num_samples)
    return result


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    dataclass_types = (BonScriptArguments, BestOfNSettings)
    return command_parser("bon", "Best-of-N over-optimization curves", dataclass_types, __doc__, subparsers, prog)


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())

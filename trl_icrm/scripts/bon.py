# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""`trl-icrm bon`: best-of-N over-optimization curves on built-in math problems: reward model(s) as the proxy,
math-verify as the gold.

For each built-in arithmetic word problem, the policy (`--model_name_or_path`, the embedded SmolLM2-135M-Instruct by
default) samples N answers once (`--num_samples`). The proxy reward model scores every answer (with its uncertainty if
it is an ICRM model), math-verify checks each answer against the solution (the gold reward), and the exact
order-statistics estimator turns this one sample set into the expected proxy and gold score of best-of-n for every
n <= N, with bootstrap confidence intervals over prompts: plain selection and, for an ICRM proxy, the uncertainty
penalties (`--penalties`); with several reward models, their ensembles (`--ensembles`). Over-optimization shows as a
proxy curve that keeps rising with KL_bon while the gold curve falls.

Reward models are loaded with `trl_icrm.load_reward` (their kind read from the saved config with `--reward auto`); an
ICRM proxy is steered by the fixed demonstrations of `--demonstrations` (zero-shot without).

Outputs in `--output_dir`: best_of_n_curves.json, best_of_n_curves.csv, best_of_n_curves.png (proxy and gold vs
KL_bon) and best_of_n_samples.jsonl (every answer with its scores).

    trl-icrm bon --reward_model_name_or_path outputs/icrm-concise-vs-detailed --num_prompts 64 --num_samples 16
    trl-icrm bon --reward_model_name_or_path rm_a rm_b --num_prompts 8 --num_samples 8 --max_new_tokens 64
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..experiments.best_of_n import BestOfNSettings
from ..utils.default_model import DEFAULT_MODEL
from ._common import RewardModelsArguments, command_parser


@dataclass
class BonScriptArguments(RewardModelsArguments):
    """Arguments of `trl-icrm bon` (besides the [`BestOfNSettings`] of the run): the proxy reward models (their kind:
    'verifier' makes math-verify the proxy; a model with a variance, such as ICRM, adds penalty curves), their
    demonstrations and the policy."""

    demonstrations: str | None = field(
        default=None,
        metadata={
            "help": "Pairs that steer ICRM proxies: a JSON list of {prompt, chosen, rejected} or the path of a JSON "
            "file holding one (none: zero-shot)."
        },
    )
    model_name_or_path: str = field(
        default=DEFAULT_MODEL, metadata={"help": "Policy: a folder, hub id or the embedded default model."}
    )
    output_dir: str = field(default="runs/best_of_n", metadata={"help": "Folder for the curves (JSON, CSV, PNG)."})
    threads: int | None = field(
        default=None,
        metadata={
            "help": "CPU threads of torch (torch's choice if not given); 1 is often fastest on a CPU shared with "
            "other jobs."
        },
    )


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
    paths: list[str], reward: str = "auto", demonstrations: list[dict[str, Any]] | None = None
) -> list[Any]:
    """The proxy reward functions, loaded with `trl_icrm.load_reward` and named after their folders: ICRM models
    steered by the fixed `demonstrations` (zero-shot without), BT models (which take no demonstrations)."""
    from ..rewards import load_reward, reward_model_kind

    if reward == "verifier":
        return [load_reward("verifier")]
    proxies = []
    for path in paths:
        kind = reward_model_kind(path) if reward == "auto" else reward
        name = Path(str(path).rstrip("/")).name or str(path)
        if kind == "icrm":
            fixed = list(demonstrations) if demonstrations else None
            if fixed is None:
                print(f"Note: the ICRM proxy {name} scores zero-shot (no --demonstrations given).")
            proxies.append(load_reward(path, kind="icrm", fixed_demonstrations=fixed, allow_zero_shot=True, name=name))
        elif demonstrations:
            raise DemonstrationsError(
                f"Demonstrations steer ICRM reward models only; {path} is a {kind!r} reward model, which takes none."
            )
        else:
            proxies.append(load_reward(path, kind=kind, name=name))
    return proxies


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
    from ..experiments.best_of_n import run_best_of_n_experiment

    if script_args.threads is not None:
        import torch

        torch.set_num_threads(script_args.threads)
    if not script_args.reward_model_name_or_path and script_args.reward != "verifier":
        raise SystemExit("trl-icrm bon needs --reward_model_name_or_path (one or more reward models).")
    try:
        demonstrations = read_demonstrations(script_args.demonstrations)
        proxies = load_proxies(script_args.reward_model_name_or_path, script_args.reward, demonstrations)
    except DemonstrationsError as error:
        raise SystemExit(str(error)) from error
    result = run_best_of_n_experiment(
        proxies, script_args.output_dir, model=script_args.model_name_or_path, settings=settings
    )
    print_summary(result, settings.num_samples)
    return result


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    dataclass_types = (BonScriptArguments, BestOfNSettings)
    return command_parser("bon", "Best-of-N over-optimization curves", dataclass_types, __doc__, subparsers, prog)


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""`trl-icrm serve`: serve a reward model over HTTP for OpenRLHF, verl or any client (`docs/serving.md`).

Loads one saved reward model of any registered kind (ICRM, BT, ...; read from its config with `--reward auto`), or an
ensemble of several, once, and answers OpenRLHF's remote reward model at `POST /get_reward` (`{"query", "prompts",
"labels"}`: each label carries its sample's demonstrations as JSON, or a key into `--demonstration_bank`), raw scoring
at `POST /score` and `GET /health`. Concurrent requests are batched onto one scoring worker (`--max_batch_size`,
`--max_wait_ms`); beyond `--max_queue` waiting requests the server answers 503. It binds 127.0.0.1 unless told
otherwise; SIGINT / SIGTERM finish the requests in flight, then stop.

    trl-icrm serve --reward_model_name_or_path outputs/math-icrm --port 8000 --penalty lcb
    trl-icrm serve --reward_model_name_or_path outputs/icrm-a outputs/icrm-b --demonstration_bank bank.json
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from ..rewards.penalties import ENSEMBLE_METHODS
from ..serving.config import ServingConfig
from ._common import DemonstrationBankArguments, PenaltyArguments, RewardModelsArguments, ThreadsArguments


@dataclass
class ServeScriptArguments(ThreadsArguments, DemonstrationBankArguments, PenaltyArguments, RewardModelsArguments):
    """Arguments of `trl-icrm serve` (besides the [`ServingConfig`] of batching and limits): the reward models served
    (several are served as one ensemble), their penalty (the reward answered in `rewards`; ICRM's point reward is the
    logit r), the demonstration bank that labels may name by key, and the server."""

    host: str = field(
        default="127.0.0.1",
        metadata={"help": "Address to bind; the default serves this machine only (there is no authentication)."},
    )
    port: int = field(default=8000, metadata={"help": "Port to listen on."})
    ensemble_method: str = field(
        default="mean",
        metadata={
            "help": "How an ensemble's point rewards combine.",
            "choices": list(ENSEMBLE_METHODS),
        },
    )
    ensemble_coef: float = field(
        default=1.0, metadata={"help": "k of the 'mean_minus_std' and 'uncertainty_weighted' ensembles."}
    )
    allow_zero_shot: bool = field(
        default=False,
        metadata={"help": "Score an ICRM completion without demonstrations zero-shot instead of answering 422."},
    )
    max_length: int | None = field(
        default=None,
        metadata={
            "help": "Token bound of a served input, every kind of model: a longer query (prompt + completion) is "
            "answered 422; an ICRM model drops whole demonstrations to fit it. Default: the model's training "
            "max_length (ICRM), and always at most the model's max_position_embeddings."
        },
    )
    batch_size: int = field(default=16, metadata={"help": "Sequences per forward pass of the reward model."})
    prefix_cache_bytes: int | None = field(
        default=None,
        metadata={
            "help": "Bytes of encoded demonstration sets an ICRM model keeps across requests (least recently used "
            "dropped first; 0: none kept); default: the reward's own (1 GiB)."
        },
    )
    device: str = field(
        default="auto", metadata={"help": "Device of the reward model: 'auto' (CUDA if available), 'cpu', 'cuda:0'."}
    )
    graceful_shutdown_s: float = field(
        default=30.0,
        metadata={"help": "On SIGINT / SIGTERM, wait at most this long for the requests in flight (seconds)."},
    )
    log_level: str = field(
        default="info",
        metadata={"help": "Log level of the server.", "choices": ["critical", "error", "warning", "info", "debug"]},
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow custom model code from the hub (off: safer)."}
    )


_REWARD_OPTIONS = (
    "penalty",
    "penalty_coef",
    "ensemble_method",
    "ensemble_coef",
    "allow_zero_shot",
    "batch_size",
    "max_length",
    "trust_remote_code",
    "prefix_cache_bytes",
)
"""The script arguments passed on, under their own names, to the served reward's loader."""


def build_app(script_args: ServeScriptArguments, config: ServingConfig):
    """The app `trl-icrm serve` runs: the loaded reward model, its bank and the batching settings."""
    from ..serving.app import create_app
    from ..serving.loading import load_serving_reward, read_demonstration_bank, resolve_device

    bank = (
        read_demonstration_bank(script_args.demonstration_bank, script_args.bank_key)
        if script_args.demonstration_bank
        else None
    )
    reward = load_serving_reward(
        script_args.reward_model_name_or_path,
        script_args.reward,
        device=resolve_device(script_args.device),
        **{name: getattr(script_args, name) for name in _REWARD_OPTIONS},
    )
    return create_app(reward, config, demonstration_bank=bank, max_length=script_args.max_length)


def main(script_args: ServeScriptArguments, config: ServingConfig) -> None:
    import logging

    from ..serving.app import run_server

    if not script_args.reward_model_name_or_path:
        raise SystemExit("trl-icrm serve needs --reward_model_name_or_path (one or more reward models).")
    logging.basicConfig(level=script_args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    script_args.apply_threads()
    try:
        app = build_app(script_args, config)
    except (ValueError, OSError) as error:
        raise SystemExit(f"trl-icrm serve: {error}") from error
    print(
        f"Serving {app.state.reward!r} at http://{script_args.host}:{script_args.port} "
        "(POST /get_reward, POST /score, GET /health).",
        flush=True,
    )
    run_server(
        app,
        script_args.host,
        script_args.port,
        log_level=script_args.log_level,
        graceful_shutdown_s=script_args.graceful_shutdown_s,
    )


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    from trl import TrlParser

    dataclass_types = (ServeScriptArguments, ServingConfig)
    if subparsers is not None:
        return subparsers.add_parser("serve", help="Serve a reward model over HTTP", dataclass_types=dataclass_types)
    return TrlParser(dataclass_types, prog=prog, description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())

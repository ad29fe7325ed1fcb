# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The reward server: a FastAPI app ([`create_app`]) around one reward model and one [`BatchScorer`], run by uvicorn
([`run_server`]).

Endpoints:

- `POST /get_reward`: OpenRLHF's remote reward model (`--reward.remote_url http://HOST:PORT/get_reward`):
  `{"query": [...], "prompts": [...], "labels": [...]}` -> `{"rewards": [...], "scores": [...], "extra_logs": {...}}`;
- `POST /score`: `{"items": [{"prompt", "completion", "demonstrations"?, "bank_key"?}]}` ->
  `{"results": [{"reward", "mean", "variance", "score", "extras"}], "scale", "penalty"}`;
- `GET /health`: status, the model, the settings and the counters; `GET /stats`: the counters only (`batches`,
  `requests`, `mean_batch_requests`, ...).

Errors answer `{"detail": "<field>: <what is wrong>", "field": "<field>"}` with status 400 (not JSON), 413 (body too
large), 422 (a field is missing, of the wrong type, over a limit, or the model cannot score it), 503 (queue full or
shutting down; retry) or 500 (a bug). See `trl_icrm.serving.protocol` for the formats.

Example:

```python
from trl_icrm.serving import ServingConfig, create_app, load_serving_reward, run_server

reward = load_serving_reward(["outputs/math-icrm"], penalty="lcb")
run_server(create_app(reward, ServingConfig(max_batch_size=128)), host="127.0.0.1", port=8000)
```
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from .batching import BatchScorer, QueueFullError, ShuttingDownError
from .config import ServingConfig
from .loading import DEMONSTRATIONS_COLUMN, demonstration_policy
from .protocol import (
    DemonstrationPolicy,
    ItemResult,
    RequestError,
    ScoreItem,
    check_body_size,
    decode_json,
    get_reward_response,
    item_results,
    parse_get_reward,
    parse_score,
    score_response,
)


logger = logging.getLogger(__name__)

DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
"""An oversized body up to this size is read (and dropped) before the 413, so that the client surely receives it."""

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def make_score_fn(reward: Any, policy: DemonstrationPolicy) -> Callable[[list[ScoreItem]], list[ItemResult]]:
    """The scoring function of the worker thread: one call of `reward.score` on a merged batch (the reward model
    groups it by demonstration prefix), answered under the model's penalty."""

    def score(items: list[ScoreItem]) -> list[ItemResult]:
        prompts = [item.prompt for item in items]
        completions = [item.completion for item in items]
        columns = {DEMONSTRATIONS_COLUMN: [item.demonstrations for item in items]} if policy.used else {}
        posterior = reward.score(prompts, completions, **columns)
        return item_results(posterior, reward.penalty, reward.penalty_coef)

    return score


def describe_model(reward: Any, policy: DemonstrationPolicy) -> dict[str, Any]:
    """What `/health` says about the served model."""
    members = getattr(reward, "members", None) or [reward]
    return {
        "name": reward.__name__,
        "type": type(reward).__name__,
        "members": [{"name": m.__name__, "type": type(m).__name__} for m in members],
        "scale": reward.scale,
        "has_uncertainty": reward.has_uncertainty,
        "penalty": reward.penalty,
        "penalty_coef": reward.penalty_coef,
        "reads_demonstrations": policy.used,
        "requires_demonstrations": policy.required,
        "bank_keys": len(policy.bank),
    }


async def read_body(request: Request, config: ServingConfig) -> bytes:
    """The request body, at most `config.max_body_bytes` (413 beyond). A moderately oversized body is read to its end
    (and dropped) before the 413, so that the client receives the answer rather than a reset connection."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            declared_size = int(declared)
        except ValueError:
            raise RequestError("content-length", f"not an integer: {declared!r}.", status=400)
        if declared_size > DRAIN_LIMIT_BYTES:
            check_body_size(declared_size, config)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= config.max_body_bytes:
            chunks.append(chunk)
        elif size > DRAIN_LIMIT_BYTES:
            break
    check_body_size(size, config)
    return b"".join(chunks)


def _error(
    status: int, detail: str, field: str | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"detail": detail, "field": field}, status_code=status, headers=dict(headers or {}))


async def answer(
    request: Request,
    scorer: BatchScorer,
    config: ServingConfig,
    parse: Callable[[Any], list[ScoreItem]],
    respond: Callable[[Sequence[ItemResult]], dict[str, Any]],
    field: str,
):
    """Read, parse, score (batched with other requests) and answer one request; every failure is an HTTP error that
    names the field, never a crash of the server."""
    try:
        items = parse(decode_json(await read_body(request, config)))
        results = await scorer.submit(items)
    except ClientDisconnect:
        return Response(status_code=400)  # the client is gone; nobody reads this
    except RequestError as error:
        return JSONResponse(error.to_json(), status_code=error.status)
    except QueueFullError as error:
        return _error(503, f"The reward server is busy: {error} Retry later.", headers={"Retry-After": "1"})
    except ShuttingDownError as error:
        return _error(503, str(error), headers={"Retry-After": "1"})
    except ValueError as error:  # the model cannot score an item (e.g. a query longer than its max_length)
        return _error(422, f"{field}: {error}", field)
    except Exception as error:
        logger.exception("Scoring failed")
        return _error(500, f"Internal error while scoring ({type(error).__name__}).")
    return JSONResponse(respond(results))


def create_app(
    reward: Any,
    config: ServingConfig | None = None,
    *,
    demonstration_bank: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
):
    """The FastAPI app serving `reward` (a `trl_icrm.rewards.RewardModel`; its `penalty` and `penalty_coef` set the
    reward it answers), batched by a [`BatchScorer`] that starts and stops with the app.

    Args:
        reward: The reward model, e.g. from [`load_serving_reward`]. An ICRM model must read its demonstrations from
            the `demonstrations` column.
        config: Batching and limits ([`ServingConfig`]).
        demonstration_bank: `{key: [pairs]}`: a label that is a key draws `config.num_demonstrations` of its pairs.
    """
    config = config or ServingConfig()
    policy = demonstration_policy(reward, demonstration_bank, config.num_demonstrations, config.seed)
    scorer = BatchScorer(
        make_score_fn(reward, policy),
        max_batch_size=config.max_batch_size,
        max_wait_ms=config.max_wait_ms,
        max_queue=config.max_queue,
    )
    model = describe_model(reward, policy)

    @asynccontextmanager
    async def lifespan(app):
        await scorer.start()
        try:
            yield
        finally:
            await scorer.close()  # after uvicorn has finished the requests in flight
            stats = scorer.stats()
            logger.info(
                "Reward server stopped: %d requests answered in %d batches.", stats["completed"], stats["batches"]
            )

    app = FastAPI(title="trl-icrm reward server", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.scorer, app.state.policy, app.state.reward = scorer, policy, reward

    @app.post("/get_reward")
    async def get_reward(request: Request):
        parse = lambda payload: parse_get_reward(payload, config, policy)
        return await answer(request, scorer, config, parse, get_reward_response, "query")

    @app.post("/score")
    async def score(request: Request):
        parse = lambda payload: parse_score(payload, config, policy)
        respond = lambda results: score_response(results, reward.scale, reward.penalty)
        return await answer(request, scorer, config, parse, respond, "items")

    @app.get("/health")
    async def health():
        status = "shutting_down" if scorer.closing else "ok"
        return {"status": status, "model": model, "config": config.to_dict(), "stats": scorer.stats()}

    @app.get("/stats")
    async def stats():
        return scorer.stats()

    return app


def run_server(
    app: FastAPI,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    log_level: str = "info",
    graceful_shutdown_s: float = 30.0,
) -> None:
    """Serve `app` with uvicorn until SIGINT / SIGTERM; then stop accepting connections, finish the requests in
    flight (for at most `graceful_shutdown_s`) and the queued batches, and return."""
    import uvicorn

    if host not in LOOPBACK_HOSTS:
        logger.warning(
            "Serving on %s: anyone who can reach this port can use the reward model (no authentication).", host
        )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=graceful_shutdown_s,
        lifespan="on",
    )
    uvicorn.Server(config).run()


__all__ = ["answer", "create_app", "describe_model", "make_score_fn", "read_body", "run_server"]

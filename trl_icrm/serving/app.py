# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The reward server: a FastAPI app ([`create_app`]) around one reward model and one [`BatchScorer`], run by uvicorn
([`run_server`]).

Endpoints:

- `POST /get_reward`: OpenRLHF's remote reward model (`--reward.remote_url http://HOST:PORT/get_reward`):
  `{"query": [...], "prompts": [...], "labels": [...]}` -> `{"rewards": [...], "scores": [...], "extra_logs": {...}}`;
- `POST /score`: `{"items": [{"prompt", "completion", "demonstrations"?, "bank_key"?}]}` ->
  `{"results": [{"reward", "penalized_reward", "mean", "variance", "score", "extras"}], "scale", "penalty",
  "penalty_coef"}` (`reward` is the point reward, `penalized_reward` the one under the server's penalty);
- `GET /health`: status, the model, the settings and the counters; `GET /stats`: the counters only (`batches`,
  `requests`, `mean_batch_requests`, ...).

Errors answer `{"detail": "<field>: <what is wrong>", "field": "<field>"}` with status 400 (not JSON), 408 (the body
did not arrive within `--read_timeout_s`), 413 (body too large), 422 (a field is missing, of the wrong type, not valid
Unicode, over a limit such as the model's token bound, or the model cannot score it), 503 (queue full, too many bytes
of bodies still arriving, or shutting down; retry, see `Retry-After`) or 500 (a bug). Beyond `--max_connections` open
connections uvicorn answers a plain 503. See `trl_icrm.serving.protocol` for the formats.

A request is parsed, validated and its tokens counted against the model's bound on the event loop and a tokenizer
thread, never on the scoring thread; a request whose client hangs up before it is scored is dropped.

Example:

```python
from trl_icrm.serving import ServingConfig, create_app, load_serving_reward, run_server

reward = load_serving_reward(["outputs/math-icrm"], penalty="lcb")
run_server(create_app(reward, ServingConfig(max_batch_size=128)), host="127.0.0.1", port=8000)
```
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from .batching import BatchScorer, QueueFullError, ShuttingDownError
from .config import ServingConfig
from .loading import DEMONSTRATIONS_COLUMN, TokenBound, demonstration_policy, freeze_for_serving, token_bound
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


class BodyGuard:
    """ASGI middleware bounding what request bodies hold: each body must arrive within `read_timeout_s` of its
    headers (else 408, and the connection is closed), and the bytes held in bodies still arriving, all requests
    together, stay within `max_pending_body_bytes` (else 503 with `Retry-After`). Both reach the handler as a
    [`RequestError`] from `receive`."""

    def __init__(self, app, read_timeout_s: float, max_pending_body_bytes: int, max_body_bytes: int):
        self.app = app
        self.read_timeout_s = read_timeout_s
        self.max_pending_body_bytes = max_pending_body_bytes
        self.max_body_bytes = max_body_bytes
        self.pending_body_bytes = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.read_timeout_s
        held, finished = 0, False

        def release() -> None:
            nonlocal held, finished
            self.pending_body_bytes -= held
            held, finished = 0, True

        async def guarded_receive():
            nonlocal held
            if finished:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.0))
            except TimeoutError:
                release()
                raise RequestError(
                    "body",
                    f"not received within {self.read_timeout_s:g} s (--read_timeout_s).",
                    status=408,
                    headers={"Connection": "close"},
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                release()
                return message
            grow = max(0, min(held + len(message.get("body", b"")), self.max_body_bytes + 1) - held)
            if self.pending_body_bytes + grow > self.max_pending_body_bytes:
                release()
                raise RequestError(
                    "body",
                    f"the server holds {self.max_pending_body_bytes} bytes of request bodies still arriving "
                    "(--max_pending_body_bytes); retry later.",
                    status=503,
                    headers={"Retry-After": "1", "Connection": "close"},
                )
            held += grow
            self.pending_body_bytes += grow
            return message

        try:
            await self.app(scope, guarded_receive, send)
        finally:
            if not finished:
                release()


async def _disconnected(request: Request) -> None:
    """Returns once the client of `request` (whose body has been read) hangs up."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def submit_while_connected(request: Request, scorer: BatchScorer, items: list[ScoreItem]) -> list[ItemResult]:
    """`scorer.submit(items)`, withdrawn (never scored, counted `cancelled`) if the client hangs up first."""
    scoring = asyncio.ensure_future(scorer.submit(items))
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({scoring, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not scoring.done():
            scoring.cancel()
    if not scoring.done() or scoring.cancelled():
        raise ClientDisconnect()
    return scoring.result()


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
    check: Callable[[list[ScoreItem], str], Awaitable[None]] | None = None,
):
    """Read, parse, check (`check(items, field)`: the model's token bound), score (batched with other requests) and
    answer one request; every failure is an HTTP error that names the field, never a crash of the server."""
    try:
        items = parse(decode_json(await read_body(request, config)))
        if check is not None:
            await check(items, field)
        results = await submit_while_connected(request, scorer, items)
    except ClientDisconnect:
        return Response(status_code=400)  # the client is gone; nobody reads this
    except RequestError as error:
        return JSONResponse(error.to_json(), status_code=error.status, headers=error.headers)
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
    max_length: int | None = None,
):
    """The FastAPI app serving `reward` (a `trl_icrm.rewards.RewardModel`; its `penalty` and `penalty_coef` set the
    reward it answers), batched by a [`BatchScorer`] that starts and stops with the app.

    Args:
        reward: The reward model, e.g. from [`load_serving_reward`]. An ICRM model must read its demonstrations from
            the `demonstrations` column. Its weights must not change while it is served ([`freeze_for_serving`]).
        config: Batching and limits ([`ServingConfig`]).
        demonstration_bank: `{key: [pairs]}`: a label that is a key draws `config.num_demonstrations` of its pairs.
        max_length: Most tokens of a completion's query (prompt + completion), with the model's own bound
            (`max_position_embeddings`, an ICRM model's training `max_length`): longer ones are answered 422.
    """
    config = config or ServingConfig()
    policy = demonstration_policy(reward, demonstration_bank, config.num_demonstrations, config.seed)
    freeze_for_serving(reward)
    scorer = BatchScorer(
        make_score_fn(reward, policy),
        max_batch_size=config.max_batch_size,
        max_wait_ms=config.max_wait_ms,
        max_queue=config.max_queue,
    )
    model = describe_model(reward, policy)
    bound: TokenBound = token_bound(reward, max_length)
    tokenizing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reward-tokens")  # the bound's tokenizers

    async def check(items: list[ScoreItem], field: str) -> None:
        await asyncio.get_running_loop().run_in_executor(tokenizing, bound.check, items, field)

    @asynccontextmanager
    async def lifespan(app):
        await scorer.start()
        try:
            yield
        finally:
            await scorer.close()  # after uvicorn has finished the requests in flight
            tokenizing.shutdown(wait=False)
            stats = scorer.stats()
            logger.info(
                "Reward server stopped: %d requests answered in %d batches.", stats["completed"], stats["batches"]
            )

    app = FastAPI(title="trl-icrm reward server", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.scorer, app.state.policy, app.state.reward, app.state.config = scorer, policy, reward, config
    app.state.token_bound = bound
    app.add_middleware(
        BodyGuard,
        read_timeout_s=config.read_timeout_s,
        max_pending_body_bytes=config.max_pending_body_bytes,
        max_body_bytes=config.max_body_bytes,
    )

    @app.post("/get_reward")
    async def get_reward(request: Request):
        parse = lambda payload: parse_get_reward(payload, config, policy)
        return await answer(request, scorer, config, parse, get_reward_response, "query", check)

    @app.post("/score")
    async def score(request: Request):
        parse = lambda payload: parse_score(payload, config, policy)
        respond = lambda results: score_response(results, reward.scale, reward.penalty, reward.penalty_coef)
        return await answer(request, scorer, config, parse, respond, "items", check)

    @app.get("/health")
    async def health():
        status = "shutting_down" if scorer.closing else "ok"
        return {"status": status, "model": model, "config": config.to_dict(), "stats": scorer.stats()}

    @app.get("/stats")
    async def stats():
        return scorer.stats()

    return app


class RewardServer(uvicorn.Server):
    """uvicorn's server for an app of [`create_app`]: on SIGINT / SIGTERM it drains the app's scorer within the
    graceful shutdown period ([`BatchScorer.drain`]): requests it cannot finish in time are answered 503 with
    `Retry-After` before the period ends, and the process does not wait for the batch being scored."""

    async def shutdown(self, sockets=None) -> None:
        grace = self.config.timeout_graceful_shutdown
        if grace is not None:
            self.config.app.state.scorer.drain(grace)
        await super().shutdown(sockets)


def server_config(
    app: FastAPI, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info", graceful_shutdown_s: float = 30.0
) -> uvicorn.Config:
    """The uvicorn settings of the reward server: the app's connection cap (`max_connections`) and grace period."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=graceful_shutdown_s,
        limit_concurrency=app.state.config.max_connections,
        lifespan="on",
    )


def run_server(
    app: FastAPI,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    log_level: str = "info",
    graceful_shutdown_s: float = 30.0,
) -> None:
    """Serve `app` with uvicorn until SIGINT / SIGTERM; then stop accepting connections, finish the requests in
    flight and queued within `graceful_shutdown_s` (what is not finished by then is answered 503), and return."""
    if host not in LOOPBACK_HOSTS:
        logger.warning(
            "Serving on %s: anyone who can reach this port can use the reward model (no authentication).", host
        )
    RewardServer(server_config(app, host, port, log_level, graceful_shutdown_s)).run()


__all__ = [
    "BodyGuard",
    "RewardServer",
    "answer",
    "create_app",
    "describe_model",
    "make_score_fn",
    "read_body",
    "run_server",
    "server_config",
    "submit_while_connected",
]

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The reward server (`trl-icrm serve`, `trl_icrm.serving`): OpenRLHF's and verl's clients, batching, limits, faults.

One server runs in a subprocess for the module (a tiny ICRM model with random heads, a demonstration bank); servers
around a slow fake model run in a thread to make queueing and shutdown deterministic. Every server is shut down by
its fixture.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from trl_icrm.serving.clients import RewardServerError, compute_score
from trl_icrm.serving.config import ServingConfig
from trl_icrm.serving.protocol import DemonstrationPolicy, RequestError, parse_get_reward, parse_label, split_query

from conftest import BANK, DEMOS_A, DEMOS_B
from conftest import ThreadServer as _ThreadServer
from conftest import demo_pair as _pair
from conftest import free_port as _free_port


ROOT = Path(__file__).resolve().parent.parent
PENALTY = "lcb"
LIMITS = {"max_body_bytes": 65536, "max_items_per_request": 16, "max_text_chars": 2000, "max_demonstrations": 8}


# Servers


def _post(url: str, payload, timeout: float = 60.0) -> tuple[int, dict]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _get(url: str, timeout: float = 10.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def bank_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("bank") / "bank.json"
    path.write_text(json.dumps(BANK))
    return str(path)


@pytest.fixture(scope="module")
def started_server(random_icrm_dir, bank_file, tmp_path_factory):
    """The `trl-icrm serve` subprocess (started here, waited for by `server`), always terminated at the end."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("server-log") / "server.log"
    argv = [sys.executable, "-m", "trl_icrm.scripts.serve", "--reward_model_name_or_path", random_icrm_dir]
    argv += ["--port", str(port), "--penalty", PENALTY, "--demonstration_bank", bank_file, "--threads", "1"]
    argv += ["--max_wait_ms", "100", "--max_batch_size", "64", "--log_level", "info"]
    for key, value in LIMITS.items():
        argv += [f"--{key}", str(value)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    with open(log_path, "w") as log:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    yield SimpleNamespace(process=process, url=f"http://127.0.0.1:{port}", port=port, log_path=log_path)
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def icrm(started_server, random_icrm_dir):
    """The same model in-process (loaded while the server starts), with the server's penalty."""
    from trl_icrm.rewards import ICRMReward

    return ICRMReward(random_icrm_dir, penalty=PENALTY)


@pytest.fixture(scope="module")
def server(started_server, icrm):
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if started_server.process.poll() is not None:
            pytest.fail(f"The server exited:\n{started_server.log_path.read_text()[-3000:]}")
        try:
            if _get(started_server.url + "/health", timeout=2)["status"] == "ok":
                return started_server
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"The server did not start in 120 s:\n{started_server.log_path.read_text()[-3000:]}")


@pytest.fixture
def thread_server():
    servers = []

    def start(app, graceful_shutdown_s=None):
        servers.append(_ThreadServer(app, graceful_shutdown_s))
        return servers[-1]

    yield start
    for running in servers:
        running.stop()


def _slow_reward():
    from trl_icrm.rewards import RewardModel, RewardPosterior

    class SlowReward(RewardModel):
        """Scores a completion by its length once `release` is set (a stand-in for a busy model)."""

        def __init__(self):
            super().__init__(name="slow")
            self.release = threading.Event()

        def score(self, prompts, completions, **columns):
            assert self.release.wait(30)
            values = np.array([float(len(c)) for c in completions])
            return RewardPosterior(values, values, None, "score")

    return SlowReward()


def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _refused(url: str) -> bool:
    try:
        _get(url, timeout=2)
    except OSError:
        return True
    return False


# Expected values
def _expected(icrm, prompts, completions, demonstrations):
    posterior = icrm.score(prompts, completions, demonstrations=demonstrations)
    return posterior, posterior.penalized(icrm.penalty, icrm.penalty_coef)


def _openrlhf_payload(prompts, completions, labels):
    return {"query": [p + c for p, c in zip(prompts, completions, strict=True)], "prompts": prompts, "labels": labels}


PROMPTS = ["Is the sky blue?", "Is the sky blue?", "Is grass red?", "Is grass red?", "Name a colour."]
COMPLETIONS = [" yes", " no", " yes, very", " no", " Red."]
DEMONSTRATIONS = [DEMOS_A, DEMOS_A, DEMOS_B, DEMOS_B, DEMOS_A[:1]]


# The OpenRLHF endpoint and the raw endpoint
def test_get_reward_matches_the_in_process_reward(server, icrm):
    labels = [json.dumps(d) for d in DEMONSTRATIONS[:3]] + [DEMOS_B, {"demonstrations": DEMOS_A[:1]}]
    status, answer = _post(server.url + "/get_reward", _openrlhf_payload(PROMPTS, COMPLETIONS, labels))
    assert status == 200, answer
    posterior, rewards = _expected(icrm, PROMPTS, COMPLETIONS, DEMONSTRATIONS)
    np.testing.assert_allclose(answer["rewards"], rewards, rtol=0, atol=1e-5)
    np.testing.assert_allclose(answer["scores"], posterior.mean, rtol=0, atol=1e-5)  # sigmoid(r), in (0, 1)
    logs = answer["extra_logs"]
    assert logs["reward_variance"] == pytest.approx(float(np.mean(posterior.variance)), abs=1e-5)
    assert logs["confidence"] == pytest.approx(float(np.mean(posterior.extras["confidence"])), abs=1e-4)
    assert logs["num_demonstrations"] == pytest.approx(np.mean([len(d) for d in DEMONSTRATIONS]))
    assert logs["point_reward"] == pytest.approx(float(np.mean(posterior.reward)), abs=1e-5)


def test_reward_is_the_point_reward_and_penalized_reward_what_a_trainer_optimizes():
    from trl_icrm.rewards import RewardPosterior
    from trl_icrm.serving.clients import penalized_reward, verl_answer
    from trl_icrm.serving.protocol import get_reward_response, item_results, score_response

    posterior = RewardPosterior(reward=[2.0, -1.0], mean=[0.8, 0.3], variance=[0.04, 0.09], scale="probability")
    for penalty, expected in ((None, [2.0, -1.0]), ("lcb", [0.6, 0.0]), ("mean", [0.8, 0.3])):
        answer = score_response(item_results(posterior, penalty, 1.0), "probability", penalty, 1.0)
        assert [r["reward"] for r in answer["results"]] == [2.0, -1.0]
        np.testing.assert_allclose([r["penalized_reward"] for r in answer["results"]], expected, atol=1e-12)
        np.testing.assert_allclose([penalized_reward(r) for r in answer["results"]], expected, atol=1e-12)
        np.testing.assert_allclose([verl_answer(r)["score"] for r in answer["results"]], expected, atol=1e-12)
        openrlhf = get_reward_response(item_results(posterior, penalty, 1.0))
        np.testing.assert_allclose(openrlhf["rewards"], expected, atol=1e-12)
        assert openrlhf["extra_logs"]["point_reward"] == 0.5
    # An older server answered only `reward` (then the penalized one): the clients still read what it meant.
    assert penalized_reward({"reward": 0.25, "mean": 0.5, "score": 0.5}) == 0.25


def test_score_endpoint_answers_the_posterior(server, icrm):
    items = [
        {"prompt": p, "completion": c, "demonstrations": d}
        for p, c, d in zip(PROMPTS, COMPLETIONS, DEMONSTRATIONS, strict=True)
    ]
    chat = {"prompt": [{"role": "user", "content": "Hi?"}], "completion": [{"role": "assistant", "content": "Yes."}]}
    items.append({**chat, "demonstrations": DEMOS_B})
    status, answer = _post(server.url + "/score", {"items": items})
    assert status == 200, answer
    prompts = [item["prompt"] for item in items]
    completions = [item["completion"] for item in items]
    posterior, rewards = _expected(icrm, prompts, completions, [item["demonstrations"] for item in items])
    results = answer["results"]
    assert answer["scale"] == "probability" and answer["penalty"] == PENALTY and answer["penalty_coef"] == 1.0
    # One meaning of `reward`: the point reward, as in-process; the penalty's value is `penalized_reward`.
    np.testing.assert_allclose([r["reward"] for r in results], posterior.reward, rtol=0, atol=1e-5)
    np.testing.assert_allclose([r["penalized_reward"] for r in results], rewards, rtol=0, atol=1e-5)
    assert not np.allclose(posterior.reward, rewards, atol=1e-3)  # the two differ under lcb
    np.testing.assert_allclose([r["mean"] for r in results], posterior.mean, rtol=0, atol=1e-5)
    np.testing.assert_allclose([r["variance"] for r in results], posterior.variance, rtol=0, atol=1e-5)


def test_bank_keys_draw_as_the_in_process_bank_mode(server, random_icrm_dir):
    from trl_icrm.rewards import ICRMReward

    banked = ICRMReward(
        random_icrm_dir, penalty=PENALTY, demonstration_bank=BANK, bank_key_column="key", num_demonstrations=4
    )
    prompts, completions, keys = PROMPTS[:4], COMPLETIONS[:4], ["A", "B", "A", "B"]
    labels = ["A", {"bank_key": "B"}, " A ", "B"]
    status, answer = _post(server.url + "/get_reward", _openrlhf_payload(prompts, completions, labels))
    assert status == 200, answer
    np.testing.assert_allclose(answer["rewards"], banked(prompts, completions, key=keys), rtol=0, atol=1e-5)
    assert answer["extra_logs"]["num_demonstrations"] == 4.0
    items = [{"prompt": p, "completion": c, "bank_key": k} for p, c, k in zip(prompts, completions, keys, strict=True)]
    status, answer = _post(server.url + "/score", {"items": items})
    assert status == 200, answer
    np.testing.assert_allclose(
        [r["penalized_reward"] for r in answer["results"]], banked(prompts, completions, key=keys), rtol=0, atol=1e-5
    )


# OpenRLHF's own client, and the adapters
def _openrlhf_executor(remote_rm_url):
    agent = pytest.importorskip(
        "openrlhf.utils.agent",
        reason="openrlhf is not installed (pip install --no-deps openrlhf==0.11.2; pip install aiohttp pylatexenc)",
    )
    return agent.SingleTurnAgentExecutor(remote_rm_url=remote_rm_url)


class _FakeEngine:
    """A vLLM engine stand-in: answers each prompt with the token ids of a fixed response."""

    def __init__(self, tokenizer, responses):
        self.tokenizer, self.responses = tokenizer, responses

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        text = self.responses[self.tokenizer.decode(prompt_token_ids)]
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        await asyncio.sleep(0)
        output = SimpleNamespace(token_ids=ids, text=text, finish_reason="stop", logprobs=None)
        return SimpleNamespace(outputs=[output])


def test_openrlhf_remote_reward_client(server, icrm, random_icrm_dir):
    from transformers import AutoTokenizer

    executor = _openrlhf_executor([server.url + "/get_reward"])
    tokenizer = AutoTokenizer.from_pretrained(random_icrm_dir)
    prompts = ["Is the sky blue? Answer:", "Is grass red? Answer:", "Name a colour. Answer:"]
    completions = [" yes", " no", " Red."]
    demonstrations = [DEMOS_A, DEMOS_B, DEMOS_A]
    engine = _FakeEngine(tokenizer, dict(zip(prompts, completions, strict=True)))
    params = SimpleNamespace(max_tokens=16, logprobs=None)

    async def rollouts():
        return await asyncio.gather(
            *(
                executor.execute(prompt, json.dumps(demos), params, 256, tokenizer, engine)
                for prompt, demos in zip(prompts, demonstrations, strict=True)
            )
        )

    outputs = asyncio.run(rollouts())
    posterior, rewards = _expected(icrm, prompts, completions, demonstrations)
    np.testing.assert_allclose([o["reward"][0] for o in outputs], rewards, rtol=0, atol=1e-5)
    np.testing.assert_allclose([o["scores"][0] for o in outputs], posterior.mean, rtol=0, atol=1e-5)
    assert all("reward_variance" in o["extra_logs"] for o in outputs)

    # Several replicas (a comma-separated --reward.remote_url): OpenRLHF shards a batch across them.
    executor = _openrlhf_executor([server.url + "/get_reward"] * 2)
    queries = [p + c for p, c in zip(prompts, completions, strict=True)]
    answers = asyncio.run(executor._fetch_rewards_via_http(queries, prompts, [json.dumps(d) for d in demonstrations]))
    np.testing.assert_allclose([r for a in answers for r in a["rewards"]], rewards, rtol=0, atol=1e-5)


def test_openrlhf_python_file_reward_func(server, icrm, monkeypatch):
    from trl_icrm.serving import clients

    monkeypatch.setenv(clients.URL_ENV, f"http://127.0.0.1:1,{server.url}/get_reward")  # the first one is down
    executor = _openrlhf_executor([clients.__file__])  # OpenRLHF loads the file by path
    assert executor.reward_func is not None
    labels = [json.dumps(d) for d in DEMONSTRATIONS[:2]]
    answers = asyncio.run(
        executor._fetch_rewards_via_func(
            [p + c for p, c in zip(PROMPTS[:2], COMPLETIONS[:2], strict=True)], PROMPTS[:2], labels
        )
    )
    _, rewards = _expected(icrm, PROMPTS[:2], COMPLETIONS[:2], DEMONSTRATIONS[:2])
    np.testing.assert_allclose([a["rewards"][0] for a in answers], rewards, rtol=0, atol=1e-5)


def test_verl_compute_score(server, icrm):
    demos = np.array(DEMOS_A, dtype=object)  # as a parquet row gives it back
    extra_info = {"prompt": "Is the sky blue?", "demonstrations": demos, "index": np.int64(3)}
    result = compute_score("my_data", " yes", "ignored", extra_info, url=server.url)
    posterior, rewards = _expected(icrm, ["Is the sky blue?"], [" yes"], [DEMOS_A])
    assert result["score"] == pytest.approx(rewards[0], abs=1e-5)
    assert result["reward_variance"] == pytest.approx(posterior.variance[0], abs=1e-5)
    by_key = compute_score(
        "d", " yes", "A", {"question": "Is the sky blue?"}, url=server.url, label_from_ground_truth=True
    )
    assert by_key["score"] == pytest.approx(
        compute_score("d", " yes", "", {"prompt": "Is the sky blue?", "bank_key": "A"}, url=server.url)["score"]
    )
    with pytest.raises(RewardServerError, match=r"labels\[0\]|items\[0\]") as error:
        compute_score("d", " yes", None, {"prompt": "Is the sky blue?"}, url=server.url)  # no demonstrations
    assert error.value.status == 422
    with pytest.raises(ValueError, match="extra_info"):
        compute_score("d", " yes", None, {}, url=server.url)


# Batching and faults
def test_concurrent_requests_are_batched(server, icrm):
    before = _get(server.url + "/stats")
    barrier = threading.Barrier(8)
    completions = [f" answer number {i}" for i in range(8)]

    def one(i):
        barrier.wait()
        return _post(
            server.url + "/get_reward", _openrlhf_payload(["Is it?"], [completions[i]], [json.dumps(DEMOS_A)])
        )

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(8)))
    after = _get(server.url + "/stats")
    assert all(status == 200 for status, _ in answers), answers
    _, rewards = _expected(icrm, ["Is it?"] * 8, completions, [DEMOS_A] * 8)
    np.testing.assert_allclose([a["rewards"][0] for _, a in answers], rewards, rtol=0, atol=1e-5)
    assert after["requests"] - before["requests"] == 8
    assert after["batches"] - before["batches"] < 8, (before, after)
    assert after["max_batch_requests"] >= 2


BAD_REQUESTS = [
    ("get_reward", b'{"query": ["a"', 400, "body"),
    ("get_reward", b"[1, 2]", 422, "body"),
    ("get_reward", {"prompts": ["a"], "labels": [""]}, 422, "query"),
    ("get_reward", {"query": "a b", "prompts": ["a"]}, 422, "query"),
    ("get_reward", {"query": [3], "prompts": ["a"]}, 422, "query[0]"),
    ("get_reward", {"query": ["a b"], "prompts": ["a", "b"]}, 422, "prompts"),
    ("get_reward", {"query": ["a b"], "prompts": ["a"], "labels": ["", ""]}, 422, "labels"),
    ("get_reward", {"query": ["x y"], "prompts": ["a"], "labels": ["A"]}, 422, "query[0]"),
    ("get_reward", {"query": ["a b"], "prompts": ["a"], "labels": ['[{"prompt": "p"']}, 422, "labels[0]"),
    (
        "get_reward",
        {"query": ["a b"], "prompts": ["a"], "labels": [[{"prompt": "p", "chosen": "c"}]]},
        422,
        "labels[0][0].rejected",
    ),
    (
        "get_reward",
        {"query": ["a b"], "prompts": ["a"], "labels": [[{"prompt": 1, "chosen": "c", "rejected": "r"}]]},
        422,
        "labels[0][0].prompt",
    ),
    ("get_reward", {"query": ["a b"], "prompts": ["a"], "labels": ["no-such-key"]}, 422, "labels[0]"),
    ("get_reward", {"query": ["a b"], "prompts": ["a"], "labels": [""]}, 422, "labels[0]"),
    ("get_reward", {"query": ["a b"], "prompts": ["a"], "labels": [3.5]}, 422, "labels[0]"),
    ("get_reward", {"query": ["a b"] * 17, "prompts": ["a"] * 17, "labels": ["A"] * 17}, 422, "query"),
    ("get_reward", {"query": ["a" * 2001], "prompts": ["a"], "labels": ["A"]}, 422, "query[0]"),
    ("get_reward", {"query": ["a b"], "prompts": ["a"], "labels": [[_pair(0, "A")] * 9]}, 422, "labels[0]"),
    ("get_reward", {"query": ["a b"], "prompts": ["a"], "labels": ["x" * 70000]}, 413, "body"),
    ("score", {"items": [{"prompt": "a", "completion": 3, "bank_key": "A"}]}, 422, "items[0].completion"),
    ("score", {"items": [{"prompt": "a", "completion": "b", "demonstration": []}]}, 422, "items[0].demonstration"),
    (
        "score",
        {"items": [{"prompt": "a", "completion": "b", "demonstrations": {"prompt": "p"}}]},
        422,
        "items[0].demonstrations",
    ),
    (
        "score",
        {"items": [{"prompt": [{"role": "user"}], "completion": "b", "bank_key": "A"}]},
        422,
        "items[0].prompt[0].content",
    ),
    ("score", {"items": []}, 422, "items"),
    ("score", {"items": [{"prompt": [{"role": "user", "content": "a"}], "completion": "b"}]}, 422, "items[0].prompt"),
    ("score", {"items": [{"prompt": "a", "completion": "b", "bank_key": "A"}], "extra": 1}, 422, "extra"),
    ("get_reward", {"query": ["a \ud800"], "prompts": ["a"], "labels": ["A"]}, 422, "query[0]"),  # lone surrogates
    ("score", {"items": [{"prompt": "\udfff", "completion": "b", "bank_key": "A"}]}, 422, "items[0].prompt"),
    (
        "get_reward",
        {"query": ["a b"], "prompts": ["a"], "labels": [[{"prompt": "p", "chosen": "\ud800", "rejected": "r"}]]},
        422,
        "labels[0][0].chosen",
    ),
]


@pytest.mark.parametrize(("endpoint", "payload", "status", "field"), BAD_REQUESTS)
def test_bad_requests_answer_4xx_naming_the_field(server, endpoint, payload, status, field):
    got, answer = _post(f"{server.url}/{endpoint}", payload)
    assert (got, answer.get("field")) == (status, field), answer
    assert answer["detail"].startswith(f"{field}:")


def test_a_client_that_goes_away_breaks_no_batch(server, icrm):
    body = json.dumps(_openrlhf_payload(["Is it?"], [" yes"], [json.dumps(DEMOS_A)])).encode()
    head = f"POST /get_reward HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    half = socket.create_connection(("127.0.0.1", server.port))
    half.sendall(head.encode() + body[: len(body) // 2])  # then hangs up mid-body
    gone = socket.create_connection(("127.0.0.1", server.port))
    gone.sendall(head.encode() + body)  # then hangs up before the answer
    with ThreadPoolExecutor(4) as pool:
        futures = [
            pool.submit(
                _post, server.url + "/get_reward", _openrlhf_payload(["Is it?"], [f" {i}"], [json.dumps(DEMOS_A)])
            )
            for i in range(4)
        ]
        time.sleep(0.05)
        half.close()
        gone.close()
        answers = [future.result() for future in futures]
    _, rewards = _expected(icrm, ["Is it?"] * 4, [f" {i}" for i in range(4)], [DEMOS_A] * 4)
    np.testing.assert_allclose([a["rewards"][0] for _, a in answers], rewards, rtol=0, atol=1e-5)
    assert _get(server.url + "/health")["status"] == "ok"


def test_a_full_queue_answers_503(thread_server):
    from trl_icrm.serving.app import create_app

    reward = _slow_reward()
    running = thread_server(create_app(reward, ServingConfig(max_batch_size=1, max_queue=1, max_wait_ms=0)))
    payload = {"items": [{"prompt": "p", "completion": "abc"}]}
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(_post, running.url + "/score", payload)
        _wait_for(lambda: _get(running.url + "/stats")["in_flight_requests"] == 1)
        second = pool.submit(_post, running.url + "/score", payload)
        _wait_for(lambda: _get(running.url + "/stats")["queued_requests"] == 1)
        status, answer = _post(running.url + "/score", payload)
        assert status == 503 and "busy" in answer["detail"]
        reward.release.set()
        assert first.result()[0] == second.result()[0] == 200
    assert first.result()[1]["results"][0]["reward"] == 3.0
    assert _get(running.url + "/stats")["rejected"] == 1


def test_shutdown_finishes_requests_in_flight(thread_server):
    from trl_icrm.serving.app import create_app

    reward = _slow_reward()
    running = thread_server(create_app(reward, ServingConfig(max_batch_size=1, max_wait_ms=0)))
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(_post, running.url + "/score", {"items": [{"prompt": "p", "completion": "ab"}]})
        _wait_for(lambda: _get(running.url + "/stats")["in_flight_requests"] == 1)
        second = pool.submit(_post, running.url + "/score", {"items": [{"prompt": "p", "completion": "abcd"}]})
        _wait_for(lambda: _get(running.url + "/stats")["queued_requests"] == 1)
        running.server.should_exit = True  # what SIGTERM / SIGINT do
        _wait_for(lambda: _refused(running.url + "/health"))  # no new connections
        reward.release.set()
        assert first.result()[0] == second.result()[0] == 200
    assert [first.result()[1]["results"][0]["reward"], second.result()[1]["results"][0]["reward"]] == [2.0, 4.0]
    running.thread.join(timeout=30)
    assert not running.thread.is_alive()


def test_bt_model_through_the_registry(thread_server, tmp_path, default_model_dir):
    from trl_icrm.rewards import SequenceClassifierReward
    from trl_icrm.serving.app import create_app
    from trl_icrm.serving.loading import load_serving_reward
    from trl_icrm.utils.testing import save_random_models

    bt_dir = save_random_models(tmp_path, default_model_dir, num_labels=1)["sequence_classifier"]
    with pytest.raises(ValueError, match="variance"):
        load_serving_reward([bt_dir], penalty="lcb")
    running = thread_server(create_app(load_serving_reward([bt_dir])))
    health = _get(running.url + "/health")
    assert health["model"]["type"] == "SequenceClassifierReward" and not health["model"]["reads_demonstrations"]
    labels = [json.dumps(d) for d in DEMONSTRATIONS[:3]] + ["42", None]  # a BT model ignores labels
    status, answer = _post(running.url + "/get_reward", _openrlhf_payload(PROMPTS, COMPLETIONS, labels))
    assert status == 200, answer
    expected = SequenceClassifierReward(bt_dir)(PROMPTS, COMPLETIONS)
    np.testing.assert_allclose(answer["rewards"], expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(answer["scores"], [1 / (1 + math.exp(-r)) for r in expected], rtol=0, atol=1e-5)


def test_several_paths_form_an_ensemble(random_icrm_dir):
    from trl_icrm.rewards import EnsembleReward
    from trl_icrm.serving.app import make_score_fn
    from trl_icrm.serving.loading import demonstration_policy, load_serving_reward
    from trl_icrm.serving.protocol import ScoreItem

    ensemble = load_serving_reward([random_icrm_dir, random_icrm_dir], penalty="lcb", allow_zero_shot=True)
    assert isinstance(ensemble, EnsembleReward) and ensemble.penalty == "lcb"
    policy = demonstration_policy(ensemble)
    assert policy.used and not policy.required
    results = make_score_fn(ensemble, policy)([ScoreItem("q?", " yes", DEMOS_A), ScoreItem("q?", " yes", [])])
    single = ensemble.members[0].score(["q?", "q?"], [" yes", " yes"], demonstrations=[DEMOS_A, []])
    assert [r.mean for r in results] == pytest.approx(single.mean.tolist(), abs=1e-6)  # identical members
    assert results[0].extras["member_spread"] == pytest.approx(0.0, abs=1e-6)


def test_prefix_cache_limit_reaches_the_served_icrm_model(random_icrm_dir):
    from trl_icrm.serving.loading import load_serving_reward

    default = load_serving_reward([random_icrm_dir], allow_zero_shot=True)
    limited = load_serving_reward([random_icrm_dir], allow_zero_shot=True, prefix_cache_bytes=0)
    assert limited.cache_info()["max_bytes"] == 0 < default.cache_info()["max_bytes"]
    first = limited.score(["q?", "q?"], [" yes", " no"], demonstrations=[DEMOS_A, DEMOS_A]).reward
    again = limited.score(["q?", "q?"], [" yes", " no"], demonstrations=[DEMOS_A, DEMOS_A]).reward
    cached = default.score(["q?", "q?"], [" yes", " no"], demonstrations=[DEMOS_A, DEMOS_A]).reward
    assert limited.cache_info()["entries"] == 0 and default.cache_info()["entries"] == 1
    np.testing.assert_allclose(first, again, rtol=0, atol=2e-6)
    np.testing.assert_allclose(first, cached, rtol=0, atol=2e-6)


def test_served_models_are_frozen_every_member(random_icrm_dir):
    """The app marks every served model frozen: its weights are fingerprinted once, not on every request."""
    from trl_icrm.serving.app import create_app
    from trl_icrm.serving.loading import load_serving_reward

    ensemble = load_serving_reward([random_icrm_dir, random_icrm_dir], allow_zero_shot=True)
    assert not any(member.scorer.frozen for member in ensemble.members)
    create_app(ensemble)
    assert all(member.scorer.frozen for member in ensemble.members)


# The parts without a server
def test_parsing_splits_queries_and_reads_labels():
    config, policy = ServingConfig(), DemonstrationPolicy(bank=BANK, required=True)
    assert split_query("prompt and response", "prompt ", "query[0]") == "and response"
    with pytest.raises(RequestError, match=r"query\[0\]: does not start with its prompt"):
        split_query("prompt", "other", "query[0]")
    assert parse_label(json.dumps(DEMOS_A), "p", "labels[0]", config, policy) == DEMOS_A
    assert parse_label(None, "p", "labels[0]", config, policy) == []
    drawn = parse_label("A", "p", "labels[0]", config, policy)
    assert len(drawn) == 4 and all(pair in BANK["A"] for pair in drawn)
    numbered = DemonstrationPolicy(bank={"7": BANK["A"]})
    assert parse_label(7, "p", "l", config, numbered) == parse_label("7", "p", "l", config, numbered)
    items = parse_get_reward(_openrlhf_payload(["p"], [" r"], ["not a key"]), config, DemonstrationPolicy(used=False))
    assert (items[0].completion, items[0].demonstrations) == (" r", [])


def test_the_server_draws_a_keys_demonstrations_as_the_reward_does(random_icrm_dir):
    from trl_icrm.rewards import ICRMReward

    config, drawn_sets = ServingConfig(), set()
    for seed in (0, 3):
        banked = ICRMReward(
            random_icrm_dir, demonstration_bank=BANK, bank_key_column="key", num_demonstrations=3, seed=seed
        )
        policy = DemonstrationPolicy(bank=BANK, num_demonstrations=3, seed=seed)
        for key in BANK:
            for prompt in PROMPTS:
                served = parse_label(key, prompt, "labels[0]", config, policy)
                assert served == [dict(pair) for pair in banked.demonstrations_for(0, prompt, {"key": [key]})]
                assert len(served) == 3
                drawn_sets.add(json.dumps(served))
    assert len(drawn_sets) > 2 * len(BANK)  # the draws depend on the seed and the prompt


def test_batch_scorer_merges_requests_and_isolates_a_failing_one():
    from trl_icrm.serving.batching import BatchScorer, QueueFullError

    def score(items):
        if "bad" in items:
            raise ValueError("a bad item")
        return [len(item) for item in items]

    async def run():
        scorer = BatchScorer(score, max_batch_size=4, max_wait_ms=50, max_queue=3)
        await scorer.start()
        jobs = [scorer.submit(["a", "bb"]), scorer.submit(["bad"]), scorer.submit(["ccc"])]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        with pytest.raises(QueueFullError):
            await asyncio.gather(*(scorer.submit(["x"]) for _ in range(5)))
        await scorer.close()
        return results, scorer.stats()

    results, stats = asyncio.run(run())
    assert results[0] == [1, 2] and results[2] == [3] and isinstance(results[1], ValueError)
    assert stats["batches"] <= 2 and stats["retried_alone"] == 3 and stats["failed"] == 1 and stats["rejected"] == 2


def test_serve_parser_has_the_flags():
    from trl_icrm.scripts.serve import ServeScriptArguments, make_parser

    parser = make_parser(prog="trl-icrm serve")
    script_args, config = parser.parse_args_and_config(
        ["--reward_model_name_or_path", "a", "b", "--max_queue", "3", "--penalty", "lcb"]
    )
    assert isinstance(script_args, ServeScriptArguments) and script_args.reward_model_name_or_path == ["a", "b"]
    assert (script_args.host, config.max_queue, script_args.penalty) == ("127.0.0.1", 3, "lcb")
    help_text = parser.format_help()
    for flag in ("--demonstration_bank", "--bank_key", "--max_batch_size", "--max_wait_ms", "--max_body_bytes"):
        assert flag in help_text


def test_the_documented_openrlhf_command_uses_existing_flags():
    import ast
    import importlib.util
    import re

    spec = importlib.util.find_spec("openrlhf")
    if spec is None:
        pytest.skip("openrlhf is not installed (pip install --no-deps openrlhf==0.11.2)")
    source = (Path(spec.origin).parent / "cli" / "train_ppo_ray.py").read_text()
    flags = set()
    for node in ast.walk(ast.parse(source)):  # the parser is built under `if __name__ == "__main__"`: read it
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument" and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant):
                flags.add(first.value)
            elif isinstance(first, ast.JoinedStr):  # f"--{prefix}.adam.lr" for prefix in (actor, critic)
                parts = [(v.value if isinstance(v, ast.Constant) else "{}") for v in first.values]
                flags |= {"".join(parts).format(prefix) for prefix in ("actor", "critic")}
    doc = (ROOT / "docs" / "serving.md").read_text()
    command = doc[doc.index("-- python3 -m openrlhf.cli.train_ppo_ray") :]
    command = command[: command.index("```")]
    used = set(re.findall(r"(--[a-z_.]+)", command))
    assert "--reward.remote_url" in used and "--data.label_key" in used
    assert used <= flags, sorted(used - flags)


def test_verl_item_of_a_conversational_prompt():
    from trl_icrm.serving.clients import verl_item

    chat = [{"role": "user", "content": "Hi?"}]
    item = verl_item("Hello.", "", {"prompt": np.array(chat, dtype=object), "bank_key": "A"})
    assert item == {"prompt": chat, "completion": [{"role": "assistant", "content": "Hello."}], "bank_key": "A"}
    assert (
        verl_item("x", json.dumps(DEMOS_A), {"question": "q"}, label_from_ground_truth=True)["demonstrations"]
        == DEMOS_A
    )


def test_lone_surrogates_never_poison_a_merged_batch(server, icrm):
    bad = json.dumps(_openrlhf_payload(["Is it?"], [" \ud800"], [json.dumps(DEMOS_A)])).encode()
    before = _get(server.url + "/stats")
    with ThreadPoolExecutor(8) as pool:
        futures = [
            pool.submit(
                _post,
                server.url + "/get_reward",
                bad if i % 3 == 0 else _openrlhf_payload(["Is it?"], [f" {i}"], [json.dumps(DEMOS_A)]),
            )
            for i in range(12)
        ]
        answers = [future.result() for future in futures]
    good = [i for i in range(12) if i % 3]
    assert all(answers[i][0] == 422 and answers[i][1]["field"] == "query[0]" for i in range(0, 12, 3))
    _, rewards = _expected(icrm, ["Is it?"] * len(good), [f" {i}" for i in good], [DEMOS_A] * len(good))
    np.testing.assert_allclose([answers[i][1]["rewards"][0] for i in good], rewards, rtol=0, atol=1e-5)
    after = _get(server.url + "/stats")
    assert after["retried_alone"] == before["retried_alone"] and after["failed"] == before["failed"]


def test_sigterm_stops_the_server_cleanly(server):
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it is done
    log = server.log_path.read_text()
    assert "Application shutdown complete" in log, log[-3000:]
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-3000:]


# Bounds on what a client can make the server hold
def _raw_request(port: int, body: bytes, sent: int | None = None, path: str = "/score") -> socket.socket:
    """A connection that sent the headers of a POST of `body` and its first `sent` bytes (all by default)."""
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    connection = socket.create_connection(("127.0.0.1", port))
    connection.settimeout(10)
    connection.sendall(head.encode() + body[: len(body) if sent is None else sent])
    return connection


def _read_answer(connection: socket.socket) -> tuple[int, dict[str, str], dict]:
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < int(
        dict(_headers(data)).get("content-length", 0)
    ):
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, dict(_headers(data)), json.loads(data.split(b"\r\n\r\n", 1)[1] or b"{}")


def _headers(data: bytes):
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.decode().partition(":")
        yield name.strip().lower(), value.strip()


def _closed_by_server(connection: socket.socket) -> bool:
    try:
        return connection.recv(1) == b""
    except OSError:
        return True


def test_bt_queries_over_the_model_bound_are_refused_before_scoring(thread_server, tmp_path, default_model_dir):
    from trl_icrm.serving.app import create_app
    from trl_icrm.serving.loading import load_serving_reward
    from trl_icrm.utils.testing import save_random_models

    bt_dir = save_random_models(tmp_path, default_model_dir, num_labels=1, max_position_embeddings=64)
    reward = load_serving_reward([bt_dir["sequence_classifier"]])
    running = thread_server(create_app(reward, ServingConfig()))
    long_text = " word" * 100  # about 100 tokens, far below --max_text_chars
    status, answer = _post(running.url + "/get_reward", _openrlhf_payload(["p"], [long_text], [None]))
    assert (status, answer["field"]) == (422, "query[0]") and "over the limit of 64" in answer["detail"]
    assert "max_position_embeddings" in answer["detail"]
    capped = thread_server(create_app(reward, ServingConfig(), max_length=16))  # --max_length applies to BT too
    status, answer = _post(capped.url + "/score", {"items": [{"prompt": "p", "completion": " word" * 20}]})
    assert (status, answer["field"]) == (422, "items[0]") and "over the limit of 16 (--max_length" in answer["detail"]
    status, answer = _post(capped.url + "/score", {"items": [{"prompt": "p", "completion": " word"}]})
    assert status == 200 and answer["results"][0]["reward"] == pytest.approx(reward(["p"], [" word"])[0], abs=1e-5)
    assert _get(capped.url + "/stats")["requests"] == 1  # the refused one never reached the scorer


def test_a_body_that_does_not_arrive_in_time_is_answered_408(thread_server):
    from trl_icrm.serving.app import create_app

    running = thread_server(create_app(_slow_reward(), ServingConfig(read_timeout_s=0.5)))
    body = json.dumps({"items": [{"prompt": "p", "completion": "abc"}]}).encode()
    started = time.monotonic()
    connection = _raw_request(running.port, body, sent=10)  # then stalls
    status, headers, answer = _read_answer(connection)
    assert (status, answer["field"]) == (408, "body") and "read_timeout_s" in answer["detail"]
    assert time.monotonic() - started < 5 and headers.get("connection") == "close"
    assert _closed_by_server(connection)
    assert _get(running.url + "/stats")["requests"] == 0


def test_bodies_still_arriving_are_bounded_in_bytes(thread_server):
    from trl_icrm.serving.app import create_app

    reward = _slow_reward()
    reward.release.set()
    running = thread_server(create_app(reward, ServingConfig(max_pending_body_bytes=3000, read_timeout_s=20)))
    body = json.dumps({"items": [{"prompt": "p", "completion": "x" * 4000}]}).encode()
    holding = _raw_request(running.port, body, sent=2500)  # 2500 bytes held, the rest not sent yet
    time.sleep(0.3)
    refused = _raw_request(running.port, body, sent=1000)
    status, headers, answer = _read_answer(refused)
    assert (status, answer["field"]) == (503, "body") and headers["retry-after"] == "1"
    assert "max_pending_body_bytes" in answer["detail"]
    holding.sendall(body[2500:])  # the held body completes and is answered
    status, _, answer = _read_answer(holding)
    assert status == 200 and answer["results"][0]["reward"] == 4000.0
    status, answer = _post(running.url + "/score", json.loads(body))  # the bytes were given back
    assert status == 200


def test_open_connections_are_capped(thread_server):
    from trl_icrm.serving.app import create_app

    reward = _slow_reward()
    reward.release.set()
    running = thread_server(create_app(reward, ServingConfig(max_connections=3)), graceful_shutdown_s=5)
    body = json.dumps({"items": [{"prompt": "p", "completion": "ab"}]}).encode()
    opened = [_raw_request(running.port, body, sent=5) for _ in range(6)]  # each stalls in its body
    refused = []
    for connection in opened:
        connection.settimeout(0.5)
        try:
            refused.append(int(connection.recv(65536).split(b" ", 2)[1]) == 503)
        except TimeoutError:
            refused.append(False)  # held: waiting for the rest of its body
    assert refused.count(False) <= 3 and refused.count(True) >= 3
    for connection in opened:
        connection.close()
    _wait_for(lambda: _post(running.url + "/score", json.loads(body))[0] == 200)


def test_shutdown_answers_what_it_cannot_finish_503_within_the_grace_period(thread_server):
    from trl_icrm.serving.app import create_app

    reward = _slow_reward()  # a batch that outlasts the grace period
    running = thread_server(create_app(reward, ServingConfig(max_batch_size=1, max_wait_ms=0)), graceful_shutdown_s=1)
    with ThreadPoolExecutor(4) as pool:
        flying = pool.submit(_post, running.url + "/score", {"items": [{"prompt": "p", "completion": "ab"}]})
        _wait_for(lambda: _get(running.url + "/stats")["in_flight_requests"] == 1)
        queued = [pool.submit(_post, running.url + "/score", {"items": [{"prompt": "p", "completion": "a"}]})]
        queued.append(pool.submit(_post, running.url + "/score", {"items": [{"prompt": "p", "completion": "b"}]}))
        _wait_for(lambda: _get(running.url + "/stats")["queued_requests"] == 2)
        started = time.monotonic()
        running.server.should_exit = True  # what SIGTERM / SIGINT do
        answers = [future.result() for future in [flying, *queued]]
        answered_after = time.monotonic() - started
        running.thread.join(timeout=10)
        stopped_after = time.monotonic() - started
    reward.release.set()
    assert [status for status, _ in answers] == [503, 503, 503], answers
    assert all("shut down" in answer["detail"] for _, answer in answers)
    assert answered_after < 1.0 and stopped_after < 2.0 and not running.thread.is_alive()


def test_requests_of_clients_that_hung_up_are_not_scored(thread_server):
    from trl_icrm.serving.app import create_app

    reward = _slow_reward()
    running = thread_server(create_app(reward, ServingConfig(max_batch_size=1, max_wait_ms=0)))
    with ThreadPoolExecutor(2) as pool:
        flying = pool.submit(_post, running.url + "/score", {"items": [{"prompt": "p", "completion": "ab"}]})
        _wait_for(lambda: _get(running.url + "/stats")["in_flight_requests"] == 1)
        gone = _raw_request(running.port, json.dumps({"items": [{"prompt": "p", "completion": "abc"}]}).encode())
        _wait_for(lambda: _get(running.url + "/stats")["queued_requests"] == 1)
        gone.close()  # hangs up while its request waits
        time.sleep(0.3)
        reward.release.set()
        assert flying.result()[0] == 200
    _wait_for(lambda: _get(running.url + "/stats")["cancelled"] == 1)
    stats = _get(running.url + "/stats")
    assert stats["batches"] == 1 and stats["completed"] == 1 and stats["queued_requests"] == 0

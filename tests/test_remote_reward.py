# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The reward model on its own server: `RemoteReward` in TRL's `GRPOTrainer` against a live `trl-icrm serve`, its
sharding and fail-over, bounded failures, and verl's asynchronous `compute_score` on verl's call path."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset
from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer
from trl.trainer.utils import get_callable_name, is_async_callable

from trl_icrm.rewards import ICRMReward
from trl_icrm.serving import RemoteReward
from trl_icrm.serving.clients import RewardClient, RewardServerError

from conftest import BANK, DEMOS_A, DEMOS_B, ThreadServer
from conftest import free_port as _free_port


ROOT = Path(__file__).resolve().parents[1]
PENALTY = "lcb"


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _thread_server(reward, bank=None):
    """A reward server (uvicorn) for `reward` in a thread of the test process."""
    from trl_icrm.serving.app import create_app
    from trl_icrm.serving.config import ServingConfig

    return ThreadServer(create_app(reward, ServingConfig(max_wait_ms=20), demonstration_bank=bank))


@pytest.fixture(scope="module")
def icrm(random_icrm_dir):
    return ICRMReward(random_icrm_dir, penalty=PENALTY)


@pytest.fixture(scope="module")
def servers(random_icrm_dir):
    """Two replicas serving the same model (each its own copy: one model per scoring thread), with the bank."""
    running = [_thread_server(ICRMReward(random_icrm_dir, penalty=PENALTY), BANK) for _ in range(2)]
    yield running
    for server in running:
        server.stop()


def _in_process(icrm, prompts, completions, demonstrations) -> np.ndarray:
    return icrm.score(prompts, completions, demonstrations=demonstrations).penalized(icrm.penalty, icrm.penalty_coef)


def _call(reward, prompts, completions, **columns):
    return asyncio.run(reward(prompts=prompts, completions=completions, **columns))


# The reward function
def test_remote_reward_is_an_async_trl_reward_function():
    reward = RemoteReward("http://127.0.0.1:1", name="remote_icrm")
    assert is_async_callable(reward) and get_callable_name(reward) == "remote_icrm"
    items = reward.items(
        [[{"role": "user", "content": "hi"}]],
        [[{"role": "assistant", "content": "yo"}]],
        {"demonstrations": [np.array(DEMOS_A, dtype=object)]},  # as a parquet / arrow row may give it
    )
    assert items == [
        {"prompt": [{"role": "user", "content": "hi"}], "completion": [{"role": "assistant", "content": "yo"}],
         "demonstrations": DEMOS_A}
    ]  # fmt: skip
    assert reward.items(["a"], ["b"], {"demonstrations": [[]]}) == [{"prompt": "a", "completion": "b"}]
    fixed = RemoteReward("http://127.0.0.1:1", fixed_demonstrations=DEMOS_B)
    assert fixed.items(["a"], ["b"], {})[0]["demonstrations"] == DEMOS_B
    with pytest.raises(ValueError, match="no column 'group'"):
        RemoteReward("http://127.0.0.1:1", bank_key_column="group").items(["a"], ["b"], {})
    with pytest.raises(ValueError, match="prompts for"):
        _call(reward, ["a", "b"], ["c"])


def test_shards_keep_a_prompt_on_one_replica():
    client = RewardClient(["http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"])
    items = [{"prompt": f"p{i % 7}", "completion": str(i), "demonstrations": DEMOS_A} for i in range(70)]
    shards = client.shard(items, max_items=4)
    assert sorted(i for shard in shards for i in shard) == list(range(70))
    assert all(len(shard) <= 4 for shard in shards)
    primary = lambda prompt: client._replica_order(json.dumps([prompt, DEMOS_A], sort_keys=True))[0]
    for shard in shards:
        assert len({primary(items[i]["prompt"]) for i in shard}) == 1  # where `score` posts it
    assert len({primary(f"p{k}") for k in range(7)}) > 1


def test_matches_in_process_across_replicas_with_fail_over(servers, icrm):
    dead = f"http://127.0.0.1:{_free_port()}"  # nothing listens: its share fails over to the next replica
    reward = RemoteReward([servers[0].url, dead, servers[1].url], retries=3, backoff=0.01, max_items_per_request=3)
    prompts = [f"Is item {i // 2} blue?" for i in range(16)]
    completions = [" yes" if i % 2 else " no, it is red" for i in range(16)]
    demonstrations = [DEMOS_A if (i // 2) % 2 else DEMOS_B for i in range(16)]
    before = [server.requests() for server in servers]
    logged = {}
    rewards = asyncio.run(
        reward(
            prompts=prompts, completions=completions, demonstrations=demonstrations,
            log_metric=lambda key, value: logged.__setitem__(key, value), trainer_state=None,
        )
    )  # fmt: skip
    np.testing.assert_allclose(rewards, _in_process(icrm, prompts, completions, demonstrations), rtol=0, atol=1e-5)
    assert all(server.requests() > count for server, count in zip(servers, before, strict=True))
    assert logged["remote_reward/num_demonstrations"] == pytest.approx(np.mean([len(d) for d in demonstrations]))


def test_bank_keys_match_in_process_bank_mode(servers, random_icrm_dir):
    in_process = ICRMReward(random_icrm_dir, penalty=PENALTY, demonstration_bank=BANK, bank_key_column="group")
    reward = RemoteReward(servers[0].url, bank_key_column="group")
    prompts, completions, groups = ["Sky?", "Sky?", "Grass?"], [" yes", " no", " yes"], ["A", "A", "B"]
    expected = in_process(prompts, completions, group=groups)
    np.testing.assert_allclose(_call(reward, prompts, completions, group=groups), expected, rtol=0, atol=1e-5)


# Failures are bounded and clear
class _BadServer:
    """A socket server that accepts and then never answers (`hang`) or closes the connection unanswered."""

    def __init__(self, hang: bool):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.hang, self.open = hang, []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            connection.recv(65536)
            if self.hang:
                self.open.append(connection)
            else:
                connection.close()

    def close(self):
        for connection in self.open:
            connection.close()
        self.sock.close()


@pytest.mark.parametrize("hang", [True, False], ids=["no-answer", "closed-unanswered"])
def test_a_server_that_fails_gives_a_clear_error_in_bounded_time(hang):
    bad = _BadServer(hang)
    reward = RemoteReward(bad.url, timeout=0.5, retries=2, backoff=0.05, name="remote_icrm")
    start = time.monotonic()
    try:
        with pytest.raises(RewardServerError, match=r"remote_icrm: The reward server failed 2 times; last: http://"):
            _call(reward, ["a"], ["b"], demonstrations=[DEMOS_A])
    finally:
        bad.close()
    assert time.monotonic() - start < 5


def _grpo_dataset() -> Dataset:
    return Dataset.from_list(
        [{"prompt": f"tiger lemon {i}?", "demonstrations": DEMOS_A if i % 2 else DEMOS_B} for i in range(8)]
    )


class _Recording(RemoteReward):
    async def __call__(self, prompts, completions, completion_ids=None, **kwargs):
        rewards = await super().__call__(prompts, completions, completion_ids, **kwargs)
        self.calls.append((prompts, completions, kwargs["demonstrations"], rewards))
        return rewards


class _KillAfterFirstStep(TrainerCallback):
    def __init__(self, process):
        self.process, self.killed_at = process, None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 1:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.killed_at = time.monotonic()


def _serve(model_dir: str, log_path: Path) -> tuple[subprocess.Popen, str]:
    """`trl-icrm serve` on a free loopback port, waited for until healthy."""
    port = _free_port()
    argv = [sys.executable, "-m", "trl_icrm.cli", "serve", "--reward_model_name_or_path", model_dir]
    argv += ["--port", str(port), "--penalty", PENALTY, "--threads", "1", "--log_level", "warning"]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    with open(log_path, "w") as log:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"The server exited:\n{log_path.read_text()[-3000:]}")
        try:
            if _get(url + "/health")["status"] == "ok":
                return process, url
        except OSError:
            time.sleep(0.2)
    process.kill()
    pytest.fail(f"The server did not start in 120 s:\n{log_path.read_text()[-3000:]}")


def test_grpo_step_on_a_live_server_then_a_clear_error_when_it_is_killed(
    tiny_causal_lm, random_icrm_dir, icrm, tmp_path
):
    process, url = _serve(random_icrm_dir, tmp_path / "server.log")
    try:
        reward = _Recording(url, timeout=10, retries=3, backoff=0.1, name="remote_icrm")
        reward.calls = []
        args = GRPOConfig(
            output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4, max_completion_length=8,
            max_steps=3, learning_rate=1e-4, logging_steps=1, report_to=[], save_strategy="no", use_cpu=True,
            bf16=False, seed=0, disable_tqdm=True,
        )  # fmt: skip
        killer = _KillAfterFirstStep(process)
        trainer = GRPOTrainer(
            model=tiny_causal_lm, reward_funcs=[reward], args=args, train_dataset=_grpo_dataset(), callbacks=[killer]
        )
        with pytest.raises(RewardServerError, match=r"remote_icrm: The reward server failed 3 times; last: http://"):
            trainer.train()
        assert killer.killed_at is not None and time.monotonic() - killer.killed_at < 30  # bounded, no hang
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert len(reward.calls) == 1 and trainer.state.global_step == 1
    prompts, completions, demonstrations, rewards = reward.calls[0]
    assert len(rewards) == 4 and all(value is not None for value in rewards)
    np.testing.assert_allclose(rewards, _in_process(icrm, prompts, completions, demonstrations), rtol=0, atol=1e-5)
    logged = [
        entry["rewards/remote_icrm/mean"] for entry in trainer.state.log_history if "rewards/remote_icrm/mean" in entry
    ]
    assert logged == [pytest.approx(float(np.mean(rewards)), abs=1e-5)]


# verl
async def _call_with_kwargs_async(raw_fn, extra_kwargs, *args, **kwargs):
    """verl 0.9's wrapper of an async custom reward function (`verl.trainer.ppo.reward`): `reward_kwargs` win."""
    return await raw_fn(*args, **{**kwargs, **extra_kwargs})


def test_verl_async_compute_score_batches_concurrent_calls(servers, icrm):
    from trl_icrm.serving import async_clients

    raw_fn = async_clients.compute_score  # what `custom_reward_function.path` / `.name` load
    assert inspect.iscoroutinefunction(raw_fn)  # verl's get_custom_reward_fn picks its async wrapper by this
    compute_score = functools.partial(_call_with_kwargs_async, raw_fn, {"url": servers[1].url, "window_ms": 50})
    assert inspect.iscoroutinefunction(compute_score)  # the reward manager awaits it rather than using a thread
    prompts = ["Is the sky blue?"] * 4 + ["Is grass red?"] * 4
    completions = [" yes", " no", " yes!", " no."] * 2
    demonstrations = [DEMOS_A] * 4 + [DEMOS_B] * 4

    async def run_single(i, extra_info):  # as verl's NaiveRewardManager.run_single calls it
        extra_info = {**extra_info, "num_turns": None, "rollout_reward_scores": {}}
        return await compute_score(
            data_source="steer", solution_str=completions[i], ground_truth="", extra_info=extra_info,
            reward_router_address="127.0.0.1:1", reward_model_tokenizer=None,
        )  # fmt: skip

    async def batch(extra_infos):  # verl's RewardLoopWorker.compute_score_batch: one task per sample, gathered
        tasks = [asyncio.create_task(run_single(i, extra)) for i, extra in enumerate(extra_infos)]
        return await asyncio.gather(*tasks, return_exceptions=True)

    good = [
        {"prompt": p, "demonstrations": np.array(d, dtype=object)}
        for p, d in zip(prompts, demonstrations, strict=True)
    ]
    before = servers[1].requests()
    results = asyncio.run(batch(good))
    assert servers[1].requests() - before == 1  # eight concurrent calls, one /score request
    posterior = icrm.score(prompts, completions, demonstrations=demonstrations)
    expected = posterior.penalized(icrm.penalty, icrm.penalty_coef)
    np.testing.assert_allclose([r["score"] for r in results], expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose([r["reward_variance"] for r in results], posterior.variance, rtol=0, atol=1e-5)
    results = asyncio.run(batch(good[:3] + [{"prompt": prompts[3]}] + good[4:]))  # one sample has no demonstrations
    assert isinstance(results[3], RewardServerError) and results[3].status == 422
    kept = [r["score"] for i, r in enumerate(results) if i != 3]
    np.testing.assert_allclose(kept, np.delete(expected, 3), rtol=0, atol=1e-5)  # only the faulty sample fails

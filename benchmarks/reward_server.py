# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Load benchmark of the reward server (`trl-icrm serve`) against in-process scoring, like with like, and a fault run.

The work is GRPO / PPO-shaped: prompts with K demonstrations each (`--num_demonstrations`, default 4) and G
completions per prompt (`--group_size`, default 8), sent as OpenRLHF sends them: one `/get_reward` request per sample
(query = prompt + completion, label = the prompt's demonstrations as JSON; `--samples_per_request` sends several), the
G samples of a prompt in flight together. The model is an ICRM head (random) on the embedded SmolLM2-135M-Instruct
(`--tiny_model`: a tiny random backbone, for smoke checks), saved to a temporary folder and served by a
`trl-icrm serve` subprocess on 127.0.0.1. Both sides run the same model with the same torch threads (`--threads`) and
forward batch size (`--batch_size`); the in-process `ICRMReward` scores the same completions `--max_batch_size` at a
time, as a trainer's reward call would.

Both sides keep encoded demonstration sets across calls (the prefix cache), so they are compared under the same
cache condition:

- cold: every demonstration set is new to both sides (each measurement gets its own sets: the in-process side a
  fresh reward object, the server sets it has never seen), as when each GRPO step brings new demonstrations;
- warm: the demonstration sets recur, as across GRPO steps with a bank, fixed demonstrations or the same per-sample
  sets: one untimed pass over the work fills both sides' caches, then the timed passes score it again.

For each condition and each concurrency in `--concurrency` (default 1 8 64), the in-process pass and the server pass
on the same requests run back to back (their order alternating, against drift), and the table reports completions/s
of both, their ratio, the server's p50 / p99 latency and mean merged batch, and how many server answers are lost or
differ from in-process scoring of the same sample.

Fault run (8 clients, warm work): the valid requests again, mixed with malformed JSON, bodies over
`--max_body_bytes`, bad demonstrations, and clients killed mid-request (some mid-body, some while waiting for the
answer). It reports whether every valid request got its correct reward (none lost) and how the bad ones were answered.

    python benchmarks/reward_server.py --tiny_model --num_requests 32 --no_fault_run          # smoke check
    python benchmarks/reward_server.py --threads 2 --output reward_server.json                # the measurement
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 1e-4


# Model and work
def save_model(args, folder: Path) -> str:
    """An ICRM model with a random head on the embedded model (or a tiny random backbone), saved to `folder`."""
    from trl_icrm import default_model_path
    from trl_icrm.icrm.modeling import ICRMSettings, load_icrm_model

    backbone = args.model_name_or_path
    if args.tiny_model:
        from trl_icrm.utils.testing import save_random_models

        backbone = save_random_models(folder / "tiny", default_model_path())["causal_lm"]
    model, tokenizer = load_icrm_model(backbone, settings=ICRMSettings())
    model.save_pretrained(folder / "icrm")
    tokenizer.save_pretrained(folder / "icrm")
    return str(folder / "icrm")


def build_work(num_requests: int, group_size: int, num_demonstrations: int, epoch: int = 0) -> list[dict]:
    """One OpenRLHF-style sample per request: G samples per prompt, each prompt with its own K demonstrations. Every
    `epoch` has demonstration sets (and prompts) of its own: no other epoch's cache entry serves it."""
    from trl_icrm.data.builtin import concise_vs_detailed

    data = concise_vs_detailed()
    pool = [{k: row[k] for k in ("prompt", "chosen", "rejected")} for row in data["train"]]
    test = data["test"]
    work = []
    for i in range(num_requests):
        group, g = divmod(i, group_size)
        row = test[group % len(test)]
        demos = [dict(pool[(group * 7 + j) % len(pool)]) for j in range(num_demonstrations)]
        for demo in demos:
            demo["prompt"] += f" (set {epoch}.{group})"
        completion = (row["chosen"] if g % 2 else row["rejected"]) + f" (variant {g})"
        prompt = row["prompt"] + f"[prompt {epoch}.{group}] "
        work.append({"prompt": prompt, "completion": completion, "demonstrations": demos})
    return work


def openrlhf_body(samples: list[dict]) -> bytes:
    """One `/get_reward` request of the samples."""
    return json.dumps(
        {
            "query": [sample["prompt"] + sample["completion"] for sample in samples],
            "prompts": [sample["prompt"] for sample in samples],
            "labels": [json.dumps(sample["demonstrations"]) for sample in samples],
        }
    ).encode()


def request_bodies(work: list[dict], samples_per_request: int) -> list[bytes]:
    return [openrlhf_body(work[i : i + samples_per_request]) for i in range(0, len(work), samples_per_request)]


class InProcess:
    """The in-process `ICRMReward` on the benchmark's model (loaded once): `fresh()` gives a reward object with empty
    caches (cold), `run(work)` scores the work `max_batch_size` completions per call."""

    def __init__(self, args, model_dir: str):
        from trl_icrm.rewards import ICRMReward

        self.args = args
        self.reward = ICRMReward(model_dir, batch_size=args.batch_size)
        if args.device != "cpu":
            self.reward.model.to(args.device)

    def fresh(self):
        from trl_icrm.rewards import ICRMReward

        return ICRMReward(self.reward.model, self.reward.tokenizer, batch_size=self.args.batch_size)

    def run(self, reward, work: list[dict]) -> tuple[np.ndarray, float]:
        """`(rewards, completions/s)` of one pass over `work`."""
        size = self.args.max_batch_size
        start = time.perf_counter()
        rewards = []
        for i in range(0, len(work), size):
            chunk = work[i : i + size]
            columns = {"demonstrations": [s["demonstrations"] for s in chunk]}
            rewards += reward([s["prompt"] for s in chunk], [s["completion"] for s in chunk], **columns)
        return np.array(rewards), len(work) / (time.perf_counter() - start)


# Server
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(args, model_dir: str, port: int, log_path: Path) -> subprocess.Popen:
    argv = [sys.executable, "-m", "trl_icrm.scripts.serve", "--reward_model_name_or_path", model_dir]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--device", args.device, "--log_level", "warning"]
    argv += ["--max_batch_size", str(args.max_batch_size), "--max_wait_ms", str(args.max_wait_ms)]
    argv += ["--batch_size", str(args.batch_size), "--max_body_bytes", str(args.max_body_bytes)]
    argv += ["--max_queue", str(args.max_queue)]
    if args.threads:
        argv += ["--threads", str(args.threads)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    with open(log_path, "w") as log:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"The server exited:\n{log_path.read_text()[-3000:]}")
        try:
            if request_json(port, "GET", "/health", None, timeout=2)[0] == 200:
                return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("The server did not start within 600 s.")


def stop_server(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def request_json(port: int, method: str, path: str, body: bytes | None, timeout: float = 120.0, conn=None):
    """`(status, decoded answer)`; a fresh connection unless `conn` (keep-alive) is given."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        try:
            return response.status, json.loads(data or b"{}")
        except ValueError:
            return response.status, {"raw": data[:200].decode(errors="replace")}
    finally:
        if own:
            conn.close()


# Load
def run_clients(port: int, requests: list[bytes], concurrency: int) -> list[tuple[int, dict, float]]:
    """Send every request from `concurrency` threads (each with a keep-alive connection), in order; returns
    `(status, answer, latency)` per request (status 0: no answer)."""
    results: list = [None] * len(requests)
    cursor = iter(range(len(requests)))
    lock = threading.Lock()

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                index = next(cursor, None)
            if index is None:
                break
            start = time.perf_counter()
            try:
                status, answer = request_json(port, "POST", "/get_reward", requests[index], conn=conn)
            except (OSError, http.client.HTTPException) as error:
                status, answer = 0, {"error": repr(error)}
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            results[index] = (status, answer, time.perf_counter() - start)
        conn.close()

    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(client) for _ in range(concurrency)]:
            future.result()
    return results


def check_answers(results, expected: list[np.ndarray]) -> dict:
    """Answered, lost and wrong requests: a request is wrong if any of its rewards differs from the in-process one."""
    answered = [(r, e) for r, e in zip(results, expected, strict=True) if r[0] == 200]
    wrong = sum(
        1
        for result, reference in answered
        if len(result[1]["rewards"]) != len(reference)
        or np.any(np.abs(np.array(result[1]["rewards"]) - reference) > TOLERANCE)
    )
    return {"answered": len(answered), "lost": len(results) - len(answered), "wrong": wrong}


def per_request(rewards: np.ndarray, samples_per_request: int) -> list[np.ndarray]:
    return [rewards[i : i + samples_per_request] for i in range(0, len(rewards), samples_per_request)]


def server_pass(port: int, bodies: list[bytes], concurrency: int) -> dict:
    """One timed pass of the server over `bodies` from `concurrency` clients: the answers, the time and the batches."""
    before = request_json(port, "GET", "/stats", None)[1]
    start = time.perf_counter()
    results = run_clients(port, bodies, concurrency)
    elapsed = time.perf_counter() - start
    after = request_json(port, "GET", "/stats", None)[1]
    batches = after["batches"] - before["batches"]
    items = after["batched_items"] - before["batched_items"]
    return {"results": results, "elapsed": elapsed, "batches": batches, "items": items}


def summarize(served: dict, completions: int, expected: list[np.ndarray]) -> dict:
    results = served["results"]
    latencies = np.array([r[2] for r in results if r[0] == 200])
    row = {
        "completions_per_s": completions / served["elapsed"],
        "p50_ms": float(np.percentile(latencies, 50) * 1000) if len(latencies) else None,
        "p99_ms": float(np.percentile(latencies, 99) * 1000) if len(latencies) else None,
        "batches": served["batches"],
        "mean_batch_items": served["items"] / max(served["batches"], 1),
    }
    row.update(check_answers(results, expected))
    return row


def compare(args, port: int, side: InProcess, condition: str, concurrency: int, turn: int, work=None) -> dict:
    """The in-process pass and the server pass on the same requests, back to back (in-process first on even turns).
    Cold: new demonstration sets are built for this comparison (epoch `turn + 1`), scored by a fresh in-process
    reward and by a server that has never seen them; warm: `work`, which both sides have scored before."""
    if condition == "cold":
        work = build_work(args.num_requests, args.group_size, args.num_demonstrations, epoch=turn + 1)
        reward = side.fresh()
    else:
        reward = side.reward
    bodies = request_bodies(work, args.samples_per_request)
    if turn % 2 == 0:
        expected, in_process = side.run(reward, work)
        served = server_pass(port, bodies, concurrency)
    else:
        served = server_pass(port, bodies, concurrency)
        expected, in_process = side.run(reward, work)
    row = summarize(served, len(work), per_request(expected, args.samples_per_request))
    return {
        "condition": condition,
        "concurrency": concurrency,
        "in_process_completions_per_s": in_process,
        "server": row,
        "ratio": row["completions_per_s"] / in_process,
    }


# Faults
KILLED_CLIENT = """
import socket, sys, time
body = sys.stdin.buffer.read()
mid_body = sys.argv[2] == "mid_body"
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
head = ("POST /get_reward HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nContent-Type: application/json\\r\\n"
        f"Content-Length: {len(body)}\\r\\n\\r\\n").encode()
sock.sendall(head + (body[: len(body) // 2] if mid_body else body))
print("sent", flush=True)
time.sleep(60)
"""


def killed_clients(port: int, bodies: list[bytes], count: int) -> list[subprocess.Popen]:
    """Clients that send a request (half of the body, or all of it) and wait, to be killed mid-request."""
    processes = []
    for i in range(count):
        mode = "mid_body" if i % 2 == 0 else "awaiting_answer"
        process = subprocess.Popen(
            [sys.executable, "-c", KILLED_CLIENT, str(port), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        process.stdin.write(bodies[i % len(bodies)])
        process.stdin.close()
        processes.append(process)
    return processes


def bad_requests(num: int, max_body_bytes: int, sample: dict) -> list[tuple[str, bytes]]:
    kinds = []
    for i in range(num):
        kind = ("malformed_json", "oversized_body", "bad_demonstrations")[i % 3]
        if kind == "malformed_json":
            body = b'{"query": ["unterminated'
        elif kind == "oversized_body":
            body = json.dumps({"query": ["x" * (max_body_bytes + 1024)], "prompts": ["x"], "labels": [""]}).encode()
        else:
            label = json.dumps([{"prompt": sample["prompt"], "chosen": 3}])
            body = json.dumps({"query": [sample["prompt"] + "a"], "prompts": [sample["prompt"]], "labels": [label]})
            body = body.encode()
        kinds.append((kind, body))
    return kinds


def fault_run(args, port: int, work: list[dict], expected: np.ndarray) -> dict:
    valid = request_bodies(work, 1)
    bad = bad_requests(max(3, len(work) // 4), args.max_body_bytes, work[0])
    # Interleave: a bad request after every few valid ones.
    requests, labels = [], []
    step = max(1, len(valid) // len(bad))
    for i, body in enumerate(valid):
        requests.append(body)
        labels.append(("valid", i))
        if i % step == step - 1 and bad:
            kind, bad_body = bad.pop()
            requests.append(bad_body)
            labels.append((kind, None))
    for kind, bad_body in bad:
        requests.append(bad_body)
        labels.append((kind, None))
    victims = killed_clients(port, valid, args.killed_clients)
    for victim in victims:
        victim.stdout.readline()  # the request is on its way
    killer = threading.Timer(0.2, lambda: [victim.kill() for victim in victims])
    killer.start()
    results = run_clients(port, requests, 8)
    killer.join()
    for victim in victims:
        victim.wait(timeout=30)
    valid_results = [None] * len(valid)
    statuses: dict[str, dict[str, int]] = {}
    for (kind, index), result in zip(labels, results, strict=True):
        if kind == "valid":
            valid_results[index] = result
        else:
            statuses.setdefault(kind, {}).setdefault(str(result[0]), 0)
            statuses[kind][str(result[0])] += 1
    checked = check_answers(valid_results, per_request(expected, 1))
    status, health = request_json(port, "GET", "/health", None)
    return {
        "valid_requests": len(valid),
        **checked,
        "bad_requests": statuses,
        "killed_clients": len(victims),
        "server_healthy_after": status == 200 and health["status"] == "ok",
        "server_stats": health["stats"],
    }


# Report
def print_report(result: dict) -> None:
    print(
        "\n| condition | clients | in-process (completions/s) | server (completions/s) | server / in-process "
        "| p50 (ms) | p99 (ms) | mean batch | lost | wrong |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in result["comparisons"]:
        server = row["server"]
        print(
            f"| {row['condition']} | {row['concurrency']} | {row['in_process_completions_per_s']:.1f} | "
            f"{server['completions_per_s']:.1f} | {row['ratio']:.2f}x | {server['p50_ms']:.0f} | {server['p99_ms']:.0f} "
            f"| {server['mean_batch_items']:.1f} | {server['lost']} | {server['wrong']} |"
        )
    fault = result.get("fault")
    if fault:
        print(
            f"\nFault run: {fault['answered']}/{fault['valid_requests']} valid requests answered, {fault['lost']} lost, "
            f"{fault['wrong']} wrong; bad requests answered {fault['bad_requests']}; {fault['killed_clients']} "
            f"clients killed mid-request; server healthy after: {fault['server_healthy_after']}."
        )


def parse_args() -> argparse.Namespace:
    from trl_icrm import DEFAULT_MODEL

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", default=DEFAULT_MODEL, help="Backbone of the random ICRM head.")
    parser.add_argument("--tiny_model", action="store_true", help="A tiny random backbone (smoke checks).")
    parser.add_argument("--num_requests", type=int, default=128, help="Completions per pass (and per epoch).")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64], help="Concurrent clients per run.")
    parser.add_argument(
        "--conditions", nargs="+", default=["cold", "warm"], choices=["cold", "warm"], help="Cache conditions."
    )
    parser.add_argument("--group_size", type=int, default=8, help="G completions per prompt.")
    parser.add_argument("--num_demonstrations", type=int, default=4, help="K demonstrations per prompt.")
    parser.add_argument("--samples_per_request", type=int, default=1, help="Completions per /get_reward request.")
    parser.add_argument("--max_batch_size", type=int, default=64, help="Completions per call (both sides).")
    parser.add_argument("--max_wait_ms", type=float, default=5.0, help="Server: batching window.")
    parser.add_argument("--max_queue", type=int, default=1024, help="Server: waiting requests before 503.")
    parser.add_argument("--max_body_bytes", type=int, default=1 << 20, help="Server: body limit (fault run).")
    parser.add_argument("--batch_size", type=int, default=16, help="Sequences per forward pass (both sides).")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (both sides).")
    parser.add_argument("--device", default="cpu", help="Device of the model (both sides).")
    parser.add_argument("--killed_clients", type=int, default=4, help="Clients killed mid-request in the fault run.")
    parser.add_argument("--no_fault_run", action="store_true", help="Skip the fault run.")
    parser.add_argument("--output", default=None, help="Write the results as JSON here.")
    return parser.parse_args()


def measure(args, port: int, side: InProcess) -> dict:
    """Every comparison (cold, then warm, each at every concurrency), and the fault run on the warm work."""
    warm = build_work(args.num_requests, args.group_size, args.num_demonstrations, epoch=0)
    result = {"settings": vars(args), "comparisons": []}
    side.run(side.fresh(), build_work(args.group_size, args.group_size, args.num_demonstrations, epoch=-1))
    run_clients(port, request_bodies(build_work(8, 8, args.num_demonstrations, epoch=-2), 1), 1)  # warm-ups
    turn = 0
    for condition in args.conditions:
        if condition == "warm":  # one untimed pass fills both sides' caches
            side.run(side.reward, warm)
            run_clients(port, request_bodies(warm, args.samples_per_request), max(args.concurrency))
        for concurrency in args.concurrency:
            result["comparisons"].append(compare(args, port, side, condition, concurrency, turn, warm))
            print(json.dumps(result["comparisons"][-1]), flush=True)
            turn += 1
    if not args.no_fault_run:
        expected, _ = side.run(side.reward, warm)
        result["fault"] = fault_run(args, port, warm, expected)
    result["in_process_cache"] = side.reward.cache_info()
    return result


def main() -> None:
    args = parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="reward-server-bench-") as tmp:
        model_dir = save_model(args, Path(tmp))
        side = InProcess(args, model_dir)
        port = free_port()
        server = start_server(args, model_dir, port, Path(tmp) / "server.log")
        try:
            result = measure(args, port, side)
        finally:
            result_code = stop_server(server)
            log = (Path(tmp) / "server.log").read_text()
    result["server_exit_code"] = result_code
    result["server_log_has_traceback"] = "Traceback" in log
    print_report(result)
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

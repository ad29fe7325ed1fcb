# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
import os
import socket
import threading
import time

import pytest


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="module")
def one_torch_thread_for_module():
    """torch at one intra-op thread for a module's tests: tiny models gain nothing from more threads, and on a shared
    CPU waiting for them costs several times more."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def default_model_dir() -> str:
    """The converted embedded model (converted once per cache folder, reused by every later session)."""
    from trl_icrm import default_model_path

    return default_model_path()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, default_model_dir) -> dict[str, str]:
    """Folders of a tiny random causal LM and a tiny random 2-label sequence classifier with the embedded tokenizer."""
    from trl_icrm.utils.testing import save_random_models

    return save_random_models(tmp_path_factory.mktemp("tiny-models"), default_model_dir)


@pytest.fixture(scope="session")
def tiny_causal_lm(tiny_models) -> str:
    return tiny_models["causal_lm"]


@pytest.fixture(scope="session")
def tiny_sequence_classifier(tiny_models) -> str:
    return tiny_models["sequence_classifier"]


def training_args(output_dir, **overrides) -> dict:
    """Trainer arguments shared by the tests: CPU, fp32, no saving, no reporting."""
    return dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=16,
        per_device_eval_batch_size=32,
        learning_rate=1e-3,
        lr_scheduler_type="constant",
        logging_steps=1000,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        max_length=256,
        seed=0,
        disable_tqdm=True,
        **overrides,
    )


@pytest.fixture(scope="session")
def steer_backbones(tmp_path_factory, default_model_dir) -> dict[str, str]:
    from trl_icrm.utils.testing import save_random_models

    return save_random_models(
        tmp_path_factory.mktemp("steer"), default_model_dir, hidden_size=64, intermediate_size=128
    )


@pytest.fixture(scope="session")
def icrm_trained(steer_backbones, tmp_path_factory):
    """An ICRM trainer trained on the synthetic conflicting-groups task (`trl_icrm.utils.testing.conflicting_pairs`)."""
    from trl_icrm import ICRMConfig, ICRMRewardTrainer
    from trl_icrm.utils.testing import conflicting_pairs

    output_dir = tmp_path_factory.mktemp("icrm")
    args = ICRMConfig(**training_args(output_dir, num_train_epochs=8), min_demonstrations=0, max_demonstrations=4)
    trainer = ICRMRewardTrainer(steer_backbones["causal_lm"], args=args, train_dataset=conflicting_pairs(128, 0))
    trainer.train()
    trainer.save_model(str(output_dir / "model"))
    trainer.saved_model_dir = str(output_dir / "model")
    return trainer


@pytest.fixture(scope="session")
def random_icrm_dir(tiny_causal_lm, tmp_path_factory) -> str:
    """A tiny ICRM model with untrained (random) heads and saved ICRM settings, as a folder."""
    from trl_icrm.icrm.modeling import load_icrm_model

    model, tokenizer = load_icrm_model(tiny_causal_lm)
    folder = tmp_path_factory.mktemp("random-icrm")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


# Reward server tests: a two-group demonstration bank whose groups prefer opposite answers, and a free loopback port.
def demo_pair(i: int, group: str) -> dict[str, str]:
    good, bad = (" yes", " no") if group == "A" else (" no", " yes")
    return {"prompt": f"question {i} about {group}?", "chosen": good, "rejected": bad}


BANK = {"A": [demo_pair(i, "A") for i in range(6)], "B": [demo_pair(i, "B") for i in range(6)]}
DEMOS_A, DEMOS_B = BANK["A"][:3], BANK["B"][:2]


def free_port() -> int:
    """A free TCP port on the loopback address."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThreadServer:
    """uvicorn serving an app in a thread of the test process (`graceful_shutdown_s`: as `trl-icrm serve` runs it,
    with its connection cap and drain)."""

    def __init__(self, app, graceful_shutdown_s: float | None = None):
        import uvicorn

        from trl_icrm.serving.app import RewardServer, server_config

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if graceful_shutdown_s is None:
            config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
            self.server = uvicorn.Server(config)
        else:
            config = server_config(app, "127.0.0.1", self.port, "warning", graceful_shutdown_s)
            self.server = RewardServer(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the in-thread server did not start"
            time.sleep(0.02)

    def requests(self) -> int:
        """Requests the server has received (its `/stats`)."""
        import json
        import urllib.request

        with urllib.request.urlopen(self.url + "/stats", timeout=5) as response:
            return json.loads(response.read())["requests"]

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=30)

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""End-to-end runs of the examples on the embedded 135M model (slow: `pytest -m slow`)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _run(*args: str, timeout: int = 1800) -> str:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return result.stdout


@pytest.fixture(scope="module")
def icrm_adapter(tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("train-icrm")
    stdout = _run("examples/train_icrm.py", "--output_dir", str(output_dir), "--max_steps", "4", "--compare_bt")
    assert "Held-out pairwise accuracy" in stdout
    return output_dir


def test_train_icrm_example(icrm_adapter):
    results = json.loads((icrm_adapter / "steering_results.json").read_text())
    assert set(results) == {"icrm", "bt"}
    for rows in results.values():
        for accuracy in rows.values():
            assert set(accuracy) == {"concise", "detailed"} and all(0.0 <= a <= 1.0 for a in accuracy.values())
    assert (icrm_adapter / "adapter_config.json").is_file() and (icrm_adapter / "config.json").is_file()
    assert (icrm_adapter / "bt" / "model.safetensors").is_file()  # the BT model, merged by save_reward_model


def test_grpo_icrm_reward_example(icrm_adapter, tmp_path):
    stdout = _run(
        "examples/grpo_icrm_reward.py",
        "--reward_model_name_or_path",
        str(icrm_adapter),
        "--output_dir",
        str(tmp_path),
        "--max_steps",
        "1",
        "--max_completion_length",
        "16",
    )
    assert "rewards/icrm/mean" in stdout and "icrm/confidence" in stdout

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""2-process CPU runs of GRPO with an ICRM reward under DeepSpeed ZeRO-2 and ZeRO-3, and the ZeRO-3 checkpoint."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM


ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_two_process_deepspeed_grpo_with_icrm_reward(stage, tiny_causal_lm, random_icrm_dir, tmp_path):
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(ROOT / "recipes" / "accelerate_configs" / f"cpu_{stage}.yaml"),
        str(ROOT / "tests" / "scripts" / "grpo_icrm_smoke.py"),
        "--model_name_or_path",
        tiny_causal_lm,
        "--reward_model_name_or_path",
        random_icrm_dir,
        "--output_dir",
        str(tmp_path),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for rank in ranks:
        assert rank["world_size"] == 2
        assert rank["scored"] and all(n == 4 for n in rank["scored"])  # each process scores its own completions
        logged = [e["rewards/icrm/mean"] for e in rank["log_history"] if "rewards/icrm/mean" in e]
        assert len(logged) == 2 and all(math.isfinite(v) for v in logged)
    # The saved policy reloads whole (ZeRO-3 gathers the partitioned weights on save).
    saved = AutoModelForCausalLM.from_pretrained(tmp_path)
    reference = AutoModelForCausalLM.from_pretrained(tiny_causal_lm)
    saved_state, reference_state = saved.state_dict(), reference.state_dict()
    assert saved_state.keys() == reference_state.keys()
    assert all(saved_state[k].shape == reference_state[k].shape for k in saved_state)
    assert any(not torch.equal(saved_state[k], reference_state[k]) for k in saved_state)  # it trained

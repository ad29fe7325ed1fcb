# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The README's journey "From your data to a reward in an RL run", run as it prints it.

The commands are read from the README section itself (so a change there that breaks them fails here) and run in order
through `trl_icrm.cli.main`, with tiny settings substituted only where a test must: the embedded model resolves to a
tiny random model with its tokenizer, `harmless-base-test.jsonl.gz` is a small HH-RLHF-format file written here,
`my_prompts.jsonl` holds the README's example row, and the flags of fewer steps and samples are appended. The server
runs in a thread of the test, and the README's `curl` request is sent to it.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from test_docs_snippets import ROOT, _hh_file, embedded_model_is_tiny, shell_commands, snippets  # noqa: F401

from conftest import ThreadServer


SECTION = "### From your data to a reward in an RL run"

TINY = {
    "build-hh-objectives": [],
    "train": [
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "2",
        "--save_strategy",
        "no",
        "--report_to",
        "none",
    ],
    "grpo": [
        *("--max_steps", "1", "--num_generations", "2", "--per_device_train_batch_size", "2"),
        *("--max_completion_length", "8", "--num_train_problems", "2", "--report_to", "none"),
    ],
    "bon": ["--num_prompts", "2", "--num_samples", "2", "--max_new_tokens", "8", "--num_bootstrap", "20"],
}
"""The flags appended to each documented command: fewer steps, samples and tokens."""


def journey_snippets() -> list:
    """The code blocks of the README section, in order."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index(SECTION) + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("#"))
    return [s for s in snippets(ROOT / "README.md") if start < s.line <= end]


def journey() -> tuple[dict, list[list[str]], list[str]]:
    """(the example row of `my_prompts.jsonl`, the `trl-icrm` commands in order, the `curl` command)."""
    blocks = journey_snippets()
    (row,) = [json.loads(s.code) for s in blocks if s.language == "json"]
    commands = [words for s in blocks if s.language == "bash" for words in shell_commands(s.code)]
    (curl,) = [words for words in commands if words[0] == "curl"]
    return row, [words for words in commands if words[0] == "trl-icrm"], curl


def test_the_journey_is_in_the_readme():
    row, commands, curl = journey()
    assert [words[1] for words in commands] == ["build-hh-objectives", "train", "grpo", "bon", "serve"]
    assert {"prompt", "answer", "group"} <= set(row)
    assert "/score" in next(word for word in curl if word.startswith("http"))


def _score(server: ThreadServer, curl: list[str]) -> dict:
    """The README's `curl` request, sent to the in-thread server (its path and JSON body as printed)."""
    url = next(word for word in curl if word.startswith("http"))
    body = curl[curl.index("-d") + 1]
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    request = urllib.request.Request(
        server.url + path, data=body.encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


@pytest.mark.slow
@pytest.mark.usefixtures("embedded_model_is_tiny")
def test_the_readme_journey_runs_as_printed(tmp_path, monkeypatch):
    from trl_icrm.cli import main, make_command_parser

    row, commands, curl = journey()
    monkeypatch.chdir(tmp_path)
    _hh_file(tmp_path)
    Path("my_prompts.jsonl").write_text("".join(json.dumps(row) + "\n" for _ in range(4)))
    *runs, serve = commands
    for words in runs:
        assert main([*words[1:], *TINY[words[1]]]) == 0, " ".join(words)
    assert (tmp_path / "outputs/hh-objectives/dataset_dict.json").is_file()
    assert (tmp_path / "outputs/hh-icrm/config.json").is_file()
    assert (tmp_path / "outputs/grpo-hh/results.json").is_file()
    assert list((tmp_path / "outputs/bon-hh").glob("best_of_n_curves.json"))

    module, parser = make_command_parser("serve")
    server = ThreadServer(module.build_app(*parser.parse_args_and_config(serve[2:])))
    try:
        answer = _score(server, curl)
    finally:
        server.stop()
    (result,) = answer["results"]
    assert 0.0 < result["mean"] < 1.0 and result["variance"] > 0.0  # the Beta posterior of an ICRM model
    assert isinstance(result["reward"], float)


def test_a_demonstration_bank_reads_a_saved_preference_folder(tmp_path):
    from datasets import Dataset, DatasetDict

    from trl_icrm.serving.loading import read_demonstration_bank

    rows = [
        {"prompt": f"q{i}", "chosen": "a", "rejected": "b", "group": "concise" if i % 2 else "verbose"}
        for i in range(4)
    ]
    DatasetDict({"train": Dataset.from_list(rows), "test": Dataset.from_list(rows[:1])}).save_to_disk(tmp_path / "set")
    bank = read_demonstration_bank(tmp_path / "set", "group")
    assert sorted(bank) == ["concise", "verbose"]
    assert [pair["prompt"] for pair in bank["concise"]] == ["q1", "q3"]

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Every snippet of README.md and docs/ runs as written.

- ```python blocks run as written, one markdown file at a time in its own working folder (a later block may read what
  an earlier one saved), each block in a fresh namespace, with the embedded default model
  (`embedded:SmolLM2-135M-Instruct`) resolved to a tiny random model with the same tokenizer.
- In ```bash / ```shell blocks, every `trl-icrm <command> ...` line is parsed by that command's parser, and every
  `python` / `accelerate launch` line of a script of this repository that has a `make_parser` by that parser: an
  unknown flag or a bad value fails. The commands of `END_TO_END` also run, with tiny settings appended.
- A block that cannot run here (a GPU, a hub download, a live server, hours) is marked in the markdown by a comment
  on the line before it, `<!-- snippet: skip (why) -->`; `test_skipped_snippets_say_why` lists them. Its command
  lines are still parsed (a value that a configuration refuses on this machine, e.g. `--bf16 true` without a GPU,
  is then allowed). Shell blocks outside `END_TO_END` are parsed only, marked or not.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from trl_icrm.cli import COMMANDS, make_command_parser


ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SHELL_LANGUAGES = ("bash", "shell", "sh")
SKIP = re.compile(r"<!--\s*snippet:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->")
FENCE = re.compile(r"^(?P<indent> *)```(?P<language>[\w+-]*)\s*$")


@dataclass
class Snippet:
    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    skip: str | None  # the reason given by a `<!-- snippet: skip (reason) -->` comment

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def snippets(path: Path) -> list[Snippet]:
    """The fenced code blocks of a markdown file, with the skip comment of the line before each (blank lines
    between are allowed)."""
    lines = path.read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
        assert end is not None, f"{path.relative_to(ROOT)}:{i + 1}: unclosed code block"
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        skip = SKIP.search(before)
        indent = len(opening["indent"])
        code = "\n".join(line[indent:] for line in lines[i + 1 : end]) + "\n"
        found.append(Snippet(path, i + 1, opening["language"].lower(), code, skip["reason"] if skip else None))
        i = end + 1
    return found


ALL = [snippet for path in DOCS for snippet in snippets(path)]
PYTHON = [s for s in ALL if s.language == "python"]
SHELL = [s for s in ALL if s.language in SHELL_LANGUAGES]


def shell_commands(code: str) -> list[list[str]]:
    """The simple commands of a shell block as argument lists: continuation lines joined, comments, environment
    assignments, `&` and `;` dropped, `$((...))` arithmetic read as 1 and other `$(...)` / `$VAR` expansions as a
    placeholder word."""
    text = code.replace("\\\n", " ")
    text = re.sub(r"\$\(\([^)]*\)\)", "1", text)
    text = re.sub(r"\"?\$\((?:[^()]|\([^()]*\))*\)\"?", "EXPANDED", text)
    commands = []
    for line in text.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        words = []
        for token in [*lexer, ";"]:
            if token not in (";", "&", "&&", "|", "||"):
                words.append(token)
                continue
            while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
                words = words[1:]
            if words:
                commands.append(words)
            words = []
    return commands


def script_of(words: list[str]) -> tuple[str, list[str]] | None:
    """`(what, argv)` of a command line the test can parse: `("trl-icrm <command>", argv)` or `(path of a python
    script of this repository, argv)` for `python[3] SCRIPT`, `accelerate launch [options] SCRIPT`; else None."""
    if words[0] == "trl-icrm" and len(words) > 1:
        return f"trl-icrm {words[1]}", words[2:]
    if words[0] in ("python", "python3") and len(words) > 1 and words[1].endswith(".py"):
        return words[1], words[2:]
    if words[:2] == ["accelerate", "launch"]:
        scripts = [i for i, word in enumerate(words) if word.endswith(".py")]
        if scripts:
            return words[scripts[0]], words[scripts[0] + 1 :]
    return None


def _script_parser(relative: str):
    """The `make_parser()` of a python script of this repository, or None when it has none (or is not here)."""
    path = ROOT / relative
    if not path.is_file():
        return None
    name = "snippet_script_" + re.sub(r"\W", "_", relative)
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    make_parser = getattr(sys.modules[name], "make_parser", None)
    return make_parser() if make_parser is not None else None


def _parse(what: str, argv: list[str]):
    if what.startswith("trl-icrm "):
        return make_command_parser(what.split()[1])[1].parse_args_and_config(argv)
    parser = _script_parser(what)
    return None if parser is None else parser.parse_args_and_config(argv)


COMMAND_LINES = [
    (snippet, script_of(words)) for snippet in SHELL for words in shell_commands(snippet.code) if script_of(words)
]


def test_the_docs_have_snippets_of_every_kind():
    assert len(PYTHON) >= 4 and len(SHELL) >= 10
    assert sum(what.startswith("trl-icrm ") for _, (what, _) in COMMAND_LINES) >= 10


@pytest.mark.parametrize(
    ("snippet", "command"),
    COMMAND_LINES,
    ids=[f"{snippet.where}:{what}" for snippet, (what, _) in COMMAND_LINES],
)
def test_every_command_line_parses(snippet, command):
    what, argv = command
    known = {f"trl-icrm {c.name}" for c in COMMANDS}
    if what.startswith("trl-icrm "):
        assert what in known, f"{snippet.where}: unknown command `{what}`"
    try:
        _parse(what, argv)
    except SystemExit as error:  # argparse: an unknown flag or a bad value
        pytest.fail(f"{snippet.where}: `{what} {' '.join(argv)}` does not parse (exit {error.code})")
    except ValueError as error:  # a dataclass's check; in a skipped block it may be about this machine (bf16 on CPU)
        if not snippet.skip:
            pytest.fail(f"{snippet.where}: `{what} {' '.join(argv)}` is refused: {error}")


def test_skipped_snippets_say_why():
    skipped = [f"{s.where} ({s.language}): {s.skip}" for s in ALL if s.skip]
    print("\n".join(["skipped snippets:", *skipped]))
    assert all(len(s.skip.split()) >= 2 for s in ALL if s.skip), skipped


@pytest.fixture
def embedded_model_is_tiny(monkeypatch, tiny_causal_lm):
    """`embedded:SmolLM2-135M-Instruct` resolves to a tiny random model with the embedded tokenizer."""
    import trl_icrm
    import trl_icrm.utils.default_model as default_model

    monkeypatch.setattr(default_model, "default_model_path", lambda: tiny_causal_lm)
    monkeypatch.setattr(trl_icrm, "default_model_path", default_model.default_model_path, raising=False)
    return tiny_causal_lm


PYTHON_FILES = sorted({s.path for s in PYTHON if not s.skip})


@pytest.mark.parametrize("path", PYTHON_FILES, ids=[str(p.relative_to(ROOT)) for p in PYTHON_FILES])
def test_python_snippets_run_as_written(
    path, tmp_path, monkeypatch, embedded_model_is_tiny, one_torch_thread_for_module
):
    monkeypatch.chdir(tmp_path)
    for snippet in (s for s in PYTHON if s.path == path and not s.skip):
        try:
            exec(compile(snippet.code, snippet.where, "exec"), {"__name__": "__snippet__"})
        except Exception as error:
            raise AssertionError(f"{snippet.where}: the snippet fails as written: {error!r}") from error


# End to end, with tiny settings: the exact command of the docs, the files it reads, and the flags appended.
HH_ROW = {
    "chosen": "\n\nHuman: How do I boil an egg?\n\nAssistant: Put it in boiling water for nine minutes.",
    "rejected": "\n\nHuman: How do I boil an egg?\n\nAssistant: I can't help with that.",
}
TINY_TRAINING = [
    "--max_steps",
    "2",
    "--max_length",
    "128",
    "--per_device_train_batch_size",
    "2",
    "--report_to",
    "none",
]


def _hh_file(folder: Path) -> None:
    with gzip.open(folder / "harmless-base-test.jsonl.gz", "wt") as file:
        for i in range(8):
            file.write(json.dumps({k: v.replace("egg", f"egg {i}") for k, v in HH_ROW.items()}) + "\n")


def _pairs_file(folder: Path) -> None:
    rows = [
        {"prompt": f"Question {i}?", "chosen": " Yes." if i % 2 else " No.", "rejected": " No." if i % 2 else " Yes."}
        for i in range(8)
    ]
    with open(folder / "my-pairs.jsonl", "w") as file:
        for i, row in enumerate(rows):
            file.write(json.dumps({**row, "objective": "odd" if i % 2 else "even"}) + "\n")


END_TO_END = {
    "trl-icrm train --method bt --dataset_name harmless-base-test.jsonl.gz --output_dir outputs/hh-bt": _hh_file,
    "trl-icrm train --method icrm --dataset_name my-pairs.jsonl --group_column objective": _pairs_file,
}


def _documented(command: str) -> bool:
    wanted = shlex.split(command)
    return any(words == wanted for snippet in SHELL for words in shell_commands(snippet.code))


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(END_TO_END))
def test_documented_commands_run_end_to_end(command, tmp_path, monkeypatch, embedded_model_is_tiny):
    from trl_icrm.cli import main

    assert _documented(command), f"`{command}` is no longer in the docs: update END_TO_END"
    monkeypatch.chdir(tmp_path)
    END_TO_END[command](tmp_path)
    words = shlex.split(command)
    assert main([*words[1:], *TINY_TRAINING]) == 0
    output_dir = words[words.index("--output_dir") + 1] if "--output_dir" in words else None
    saved = list(tmp_path.rglob("config.json")) if output_dir is None else list((tmp_path / output_dir).rglob("*"))
    assert saved, f"`{command}` saved nothing"

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
import ast
import hashlib
import json
import operator
import random
from fractions import Fraction

import pytest
from datasets import Dataset, DatasetDict

from trl_icrm.data.math_problems import (
    DEFAULT_INSTRUCTION,
    FAMILIES,
    extract_gsm8k_answer,
    generate_problem,
    load_gsm8k_like,
    make_arithmetic_problems,
    make_prompt,
)


_BINARY_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def evaluate(expression: str) -> tuple[Fraction, int]:
    """Exact value and operation count of `+ - * /` integer arithmetic, checking every division is exact."""

    def walk(node: ast.AST) -> tuple[Fraction, int]:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return Fraction(node.value), 0
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY_OPS:
            (left, n_left), (right, n_right) = walk(node.left), walk(node.right)
            value = _BINARY_OPS[type(node.op)](left, right)
            if isinstance(node.op, ast.Div):
                assert value.denominator == 1, f"inexact division in {expression}"
            assert value >= 0, f"negative intermediate value in {expression}"
            return value, n_left + n_right + 1
        raise AssertionError(f"unexpected syntax {ast.dump(node)} in {expression}")

    return walk(ast.parse(expression, mode="eval").body)


@pytest.fixture(scope="module")
def problems() -> DatasetDict:
    return make_arithmetic_problems(num_train=300, num_test=100, difficulties=(1, 2, 3, 4, 5), seed=3)


def test_schema_and_prompt_format(problems):
    assert isinstance(problems, DatasetDict) and set(problems) == {"train", "test"}
    assert (problems["train"].num_rows, problems["test"].num_rows) == (300, 100)
    columns = ["prompt", "solution", "question", "expression", "difficulty", "family"]
    assert problems["train"].column_names == columns
    row = problems["train"][0]
    assert row["prompt"] == [{"role": "user", "content": DEFAULT_INSTRUCTION.format(question=row["question"])}]
    assert "\\boxed{}" in row["prompt"][0]["content"] and row["question"] in row["prompt"][0]["content"]

    standard = make_arithmetic_problems(num_train=4, num_test=2, conversational=False, split="train")
    assert isinstance(standard, Dataset) and isinstance(standard[0]["prompt"], str)
    assert standard[0]["prompt"].endswith(standard[0]["question"])


def test_answers_are_correct(problems):
    for split in problems.values():
        for row in split:
            value, num_operations = evaluate(row["expression"])
            assert value.denominator == 1 and value >= 0
            assert row["solution"] == str(value.numerator)
            assert num_operations == row["difficulty"]
            # Every operand of the expression is written in the question.
            numbers = [node.value for node in ast.walk(ast.parse(row["expression"])) if isinstance(node, ast.Constant)]
            assert all(str(number) in row["question"] for number in numbers), row


def test_deterministic_per_seed():
    first = make_arithmetic_problems(num_train=40, num_test=10, seed=7)
    second = make_arithmetic_problems(num_train=40, num_test=10, seed=7)
    other = make_arithmetic_problems(num_train=40, num_test=10, seed=8)
    for split in ("train", "test"):
        assert first[split].to_list() == second[split].to_list()
    assert first["train"]["question"] != other["train"]["question"]


def test_problems_are_pinned_per_seed():
    # A seed gives the same problems across releases: the random draws and their order must not change.
    problem = generate_problem(random.Random(0), difficulty=3, family="apples")
    assert problem.question == (
        "Ravi has 53 apples. He gives 4 apples to each of 2 friends. "
        "He splits all his apples equally into 5 baskets and keeps only one basket. How many apples does Ravi have now?"
    )
    assert (problem.expression, problem.answer) == ("(53 - 2 * 4) / 5", 9)
    dataset = make_arithmetic_problems(num_train=30, num_test=10, difficulties=(1, 3, 6), seed=1, conversational=False)
    rows = json.dumps({split: dataset[split].to_list() for split in ("train", "test")}, sort_keys=True)
    assert (
        hashlib.sha256(rows.encode()).hexdigest() == "78106eaabd0ca647587ea6673ef223cc6c8b0a941fbc4dc084510dcc8b97bee9"
    )


def test_splits_are_disjoint_across_seeds_and_sizes(problems):
    train = set(problems["train"]["question"])
    test = set(problems["test"]["question"])
    assert len(train) == problems["train"].num_rows and len(test) == problems["test"].num_rows  # no duplicates
    assert not train & test
    # The split of a problem is a function of its text: another seed's test problems never appear in this train.
    other = make_arithmetic_problems(num_train=300, num_test=100, difficulties=(1, 2, 3, 4, 5), seed=4)
    assert not set(other["test"]["question"]) & train
    assert not set(other["train"]["question"]) & test


def test_difficulty_levels_and_families_present(problems):
    for split in problems.values():
        counts = {level: split["difficulty"].count(level) for level in (1, 2, 3, 4, 5)}
        assert min(counts.values()) >= split.num_rows // 5 - 1, counts  # balanced round robin
    assert set(problems["train"]["family"]) == set(FAMILIES)
    only = make_arithmetic_problems(num_train=10, num_test=5, difficulties=[2], families=["money"], split="train")
    assert set(only["difficulty"]) == {2} and set(only["family"]) == {"money"}
    assert all("$" in question for question in only["question"])


def test_generate_problem_validates_arguments():
    problem = generate_problem(random.Random(0), difficulty=3, family="train")
    assert problem.family == "train" and problem.difficulty == 3 and evaluate(problem.expression)[0] == problem.answer
    with pytest.raises(ValueError, match="difficulty"):
        generate_problem(random.Random(0), difficulty=0)
    with pytest.raises(ValueError, match="Unknown problem family"):
        generate_problem(random.Random(0), difficulty=1, family="dragons")


def test_make_prompt_custom_instruction():
    assert (
        make_prompt("2 + 2?", conversational=False, instruction="Q: {question} \\boxed{{}}") == "Q: 2 + 2? \\boxed{}"
    )


def test_extract_gsm8k_answer():
    assert extract_gsm8k_answer("2 * 617 = <<2*617=1234>>1234\n#### 1,234") == "1234"
    assert extract_gsm8k_answer("#### 5 #### 18") == "18"
    assert extract_gsm8k_answer("Loss of $20.\n#### -20") == "-20"
    with pytest.raises(ValueError, match="####"):
        extract_gsm8k_answer("no final answer")


GSM8K_ROWS = [
    {"question": "Janet has 3 ducks and buys 4 more. How many ducks?", "answer": "3 + 4 = <<3+4=7>>7\n#### 7"},
    {"question": "A house costs $1,200 plus $34. Total?", "answer": "1200 + 34 = <<1200+34=1234>>1234\n#### 1,234"},
]


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet"])
def test_load_gsm8k_like_local_file(tmp_path, suffix):
    path = tmp_path / f"gsm8k_like{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in GSM8K_ROWS))
    elif suffix == ".json":
        path.write_text(json.dumps(GSM8K_ROWS))
    else:
        Dataset.from_list(GSM8K_ROWS).to_parquet(str(path))
    dataset = load_gsm8k_like(path, split="test", cache_dir=str(tmp_path / "cache"))
    assert isinstance(dataset, Dataset)
    assert dataset["solution"] == ["7", "1234"]
    assert dataset[0]["prompt"] == [
        {"role": "user", "content": DEFAULT_INSTRUCTION.format(question=GSM8K_ROWS[0]["question"])}
    ]
    assert {"question", "answer", "prompt", "solution"} <= set(dataset.column_names)

    standard = load_gsm8k_like(
        str(path), split="train", conversational=False, num_rows=1, cache_dir=str(tmp_path / "c")
    )
    assert standard.num_rows == 1 and isinstance(standard[0]["prompt"], str)


def test_load_gsm8k_like_rejects_other_schemas(tmp_path):
    path = tmp_path / "other.jsonl"
    path.write_text(json.dumps({"problem": "1+1?", "answer": "#### 2"}) + "\n")
    with pytest.raises(ValueError, match="question"):
        load_gsm8k_like(path, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="Unsupported file type"):
        bad = tmp_path / "data.txt"
        bad.write_text("x")
        load_gsm8k_like(bad)

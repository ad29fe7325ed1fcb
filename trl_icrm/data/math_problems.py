# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Math word problems with verifiable integer answers, in TRL's prompt format.

Two sources, one output schema:

- [`make_arithmetic_problems`] builds grade-school arithmetic word problems offline from a seed. A problem is a short
  story about one quantity (apples, money, train passengers, ...) that goes through 1 to several arithmetic steps
  (add, subtract, multiply, divide exactly). Every row stores the arithmetic `expression` whose value is the answer, so
  correctness can be re-checked independently. The train/test split of a problem is a fixed function of its text (a
  hash), so the two splits are disjoint by construction, for every seed and size.
- [`load_gsm8k_like`] loads any dataset with GSM8K's schema (`question`, and `answer` ending with `#### 42`) from the
  hub, a local folder or a local JSON/JSONL/CSV/parquet file.

Both give a `prompt` column (conversational `[{"role": "user", "content": ...}]` by default, or a plain string) that
asks for brief reasoning and a final answer in `\\boxed{}`, and a `solution` column with the answer as a string
(`"42"`), which TRL passes to reward functions such as [`~trl_icrm.rewards.math_verify.MathVerifyReward`] as `solution=[...]`.

Example:

```python
>>> from trl_icrm.data.math_problems import make_arithmetic_problems
>>> dataset = make_arithmetic_problems(num_train=8, num_test=4, seed=0)
>>> dataset
DatasetDict({
    train: Dataset({
        features: ['prompt', 'solution', 'question', 'expression', 'difficulty', 'family'],
        num_rows: 8
    })
    test: Dataset({
        features: ['prompt', 'solution', 'question', 'expression', 'difficulty', 'family'],
        num_rows: 4
    })
})
>>> row = dataset["train"][0]
>>> row["prompt"][0]["role"], row["solution"] == str(eval(row["expression"].replace("/", "//")))
('user', True)
```
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


DEFAULT_INSTRUCTION = (
    "Solve the following math problem. Reason step by step, briefly, "
    "then give the final answer as a number in \\boxed{{}}.\n\n{question}"
)
"""Prompt template of both sources; `{question}` is replaced by the problem text."""

DEFAULT_DIFFICULTIES = (1, 2, 3, 4)
"""Difficulty levels made by default: the number of arithmetic operations in the problem."""

_NAMES = [
    ("Sam", "he", "him", "his"),
    ("Mia", "she", "her", "her"),
    ("Leo", "he", "him", "his"),
    ("Ava", "she", "her", "her"),
    ("Omar", "he", "him", "his"),
    ("Lena", "she", "her", "her"),
    ("Ravi", "he", "him", "his"),
    ("Yuki", "she", "her", "her"),
    ("Tom", "he", "him", "his"),
    ("Nora", "she", "her", "her"),
]
_FRIENDS = ["a friend", "a neighbor", "a classmate", "a cousin", "a teacher"]


@dataclass(frozen=True)
class ProblemFamily:
    """Sentence templates of one kind of story about a single integer quantity.

    Every template is a `str.format` string with the fields `{name}`, `{he}`, `{him}`, `{his}`, `{He}`, `{His}`,
    `{friend}` ("a neighbor"), `{friend_noun}` ("neighbor") and the operands `{b}` (and `{c}` for group operations).
    A step may list several alternative sentences (a tuple): one is drawn at random.

    Args:
        start: Opening sentence that sets the quantity to `{a}`.
        add: Sentence that adds `{b}`.
        subtract: Sentence that subtracts `{b}`.
        add_groups: Sentence that adds `{b}` groups of `{c}` (two operations: `b * c` then `+`).
        subtract_groups: Sentence that subtracts `{b}` groups of `{c}` (two operations).
        multiply: Sentence that multiplies the quantity by `{b}`.
        divide: Sentence that divides the quantity exactly by `{b}`.
        question: Closing question about the quantity.
        start_range: Inclusive range of the starting value.
    """

    start: str
    add: str | tuple[str, ...]
    subtract: str | tuple[str, ...]
    add_groups: str | tuple[str, ...]
    subtract_groups: str | tuple[str, ...]
    multiply: str | tuple[str, ...]
    divide: str | tuple[str, ...]
    question: str
    start_range: tuple[int, int] = (5, 60)


def _read_families(path: Path) -> dict[str, ProblemFamily]:
    """The problem families of a JSON-lines file (one object a line: `name` and the [`ProblemFamily`] fields; a list
    of sentences is a tuple of alternatives)."""
    families = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        name = row.pop("name")
        families[name] = ProblemFamily(**{k: tuple(v) if isinstance(v, list) else v for k, v in row.items()})
    return families


FAMILIES: dict[str, ProblemFamily] = _read_families(Path(__file__).with_name("math_families.jsonl"))
"""The built-in problem families (the `family` column), by name."""

# Operation kinds: name -> number of arithmetic operations it adds.
_OPERATIONS = {"add": 1, "subtract": 1, "add_groups": 2, "subtract_groups": 2, "multiply": 1, "divide": 1}
_MAX_VALUE = 1000


@dataclass(frozen=True)
class ArithmeticProblem:
    """One generated word problem.

    Args:
        question: The problem text.
        expression: Arithmetic expression (integers, `+ - * /` and parentheses) whose value is the answer; every
            division in it is exact.
        answer: The integer value of `expression`.
        difficulty: Number of arithmetic operations in `expression`.
        family: Name of the [`ProblemFamily`] the problem comes from.
    """

    question: str
    expression: str
    answer: int
    difficulty: int
    family: str


def _divisors(value: int) -> list[int]:
    return [d for d in range(2, 11) if value % d == 0]


# A drawn step: (new value, new expression, operand `b`, operand `c` or None), or None if the step does not fit the
# current value (the caller then draws another kind).
_Step = tuple[int, str, int, int | None] | None


def _step_add(rng: random.Random, value: int, expression: str, wrapped: str) -> _Step:
    b = rng.randint(2, 40)
    return value + b, f"{expression} + {b}", b, None


def _step_subtract(rng: random.Random, value: int, expression: str, wrapped: str) -> _Step:
    if value < 3:
        return None
    b = rng.randint(1, min(value - 1, 40))
    return value - b, f"{expression} - {b}", b, None


def _step_add_groups(rng: random.Random, value: int, expression: str, wrapped: str) -> _Step:
    b, c = rng.randint(2, 6), rng.randint(2, 12)
    return value + b * c, f"{expression} + {b} * {c}", b, c


def _step_subtract_groups(rng: random.Random, value: int, expression: str, wrapped: str) -> _Step:
    pairs = [(b, c) for b in range(2, 7) for c in range(2, 13) if b * c < value]
    if not pairs:
        return None
    b, c = rng.choice(pairs)
    return value - b * c, f"{expression} - {b} * {c}", b, c


def _step_multiply(rng: random.Random, value: int, expression: str, wrapped: str) -> _Step:
    if value > 100:
        return None
    b = rng.randint(2, 5)
    return value * b, f"{wrapped} * {b}", b, None


def _step_divide(rng: random.Random, value: int, expression: str, wrapped: str) -> _Step:
    divisors = _divisors(value)
    if not divisors:
        return None
    b = rng.choice(divisors)
    return value // b, f"{wrapped} / {b}", b, None


# Operation kind -> function drawing its operands (same keys and order as `_OPERATIONS`).
_STEP_DRAWERS = {
    "add": _step_add,
    "subtract": _step_subtract,
    "add_groups": _step_add_groups,
    "subtract_groups": _step_subtract_groups,
    "multiply": _step_multiply,
    "divide": _step_divide,
}


def _pick_family(rng: random.Random, family: str | None, families: Sequence[str] | None) -> str:
    """The family name to use: `family`, or one drawn from `families` (default: all); checked against [`FAMILIES`]."""
    if family is None:
        family = rng.choice(sorted(families or FAMILIES))
    if family not in FAMILIES:
        raise ValueError(f"Unknown problem family {family!r}; known: {sorted(FAMILIES)}.")
    return family


def _draw_words(rng: random.Random) -> dict[str, str]:
    """The name and pronoun fields of the sentence templates, for one drawn person."""
    name, he, him, his = rng.choice(_NAMES)
    return {"name": name, "he": he, "him": him, "his": his, "He": he.capitalize(), "His": his.capitalize()}


def _draw_step(
    rng: random.Random, value: int, expression: str, remaining: int, last_kind: str | None
) -> tuple[str, _Step]:
    """Draws the kind of the next step (at most `remaining` operations, not `last_kind`) and its operands."""
    # Never the same kind of step twice in a row (it would read like a repeated sentence).
    kinds = [kind for kind, steps in _OPERATIONS.items() if steps <= remaining and kind != last_kind]
    kind = rng.choice(kinds)
    # Parenthesize a sum or difference before scaling it.
    wrapped = f"({expression})" if last_kind in ("add", "subtract", "add_groups", "subtract_groups") else expression
    step = _STEP_DRAWERS[kind](rng, value, expression, wrapped)
    if step is not None and step[0] > _MAX_VALUE:
        step = None
    return kind, step


def _step_sentence(
    rng: random.Random, template: ProblemFamily, kind: str, b: int, c: int | None, words: dict[str, str]
) -> str:
    """The sentence of one step: draws the friend and, if the step has alternatives, one of its sentences."""
    friend = rng.choice(_FRIENDS)
    sentence = getattr(template, kind)
    if not isinstance(sentence, str):
        sentence = rng.choice(sentence)
    return sentence.format(b=b, c=c, friend=friend, friend_noun=friend.split()[-1], **words)


def generate_problem(
    rng: random.Random, difficulty: int, family: str | None = None, families: Sequence[str] | None = None
) -> ArithmeticProblem:
    """Generates one word problem with exactly `difficulty` arithmetic operations.

    Args:
        rng: Random generator (the only source of randomness).
        difficulty: Number of arithmetic operations, at least 1.
        family: Name of the family to use; if `None`, one is drawn from `families`.
        families: Names to draw from when `family` is `None` (default: all of [`FAMILIES`]).

    Returns:
        The problem; its `answer` equals the value of its `expression` and is a non-negative integer.

    Example:

    ```python
    >>> import random
    >>> from trl_icrm.data.math_problems import generate_problem
    >>> problem = generate_problem(random.Random(0), difficulty=2, family="apples")
    >>> problem.difficulty, problem.family
    (2, 'apples')
    ```
    """
    if difficulty < 1:
        raise ValueError(f"`difficulty` must be at least 1, got {difficulty}.")
    family = _pick_family(rng, family, families)
    template = FAMILIES[family]
    words = _draw_words(rng)

    value = rng.randint(*template.start_range)
    expression = str(value)
    sentences = [template.start.format(a=value, **words)]
    remaining, last_kind = difficulty, None
    while remaining > 0:
        kind, step = _draw_step(rng, value, expression, remaining, last_kind)
        if step is None:
            continue
        new_value, new_expression, b, c = step
        sentences.append(_step_sentence(rng, template, kind, b, c, words))
        value, expression, last_kind = new_value, new_expression, kind
        remaining -= _OPERATIONS[kind]
    sentences.append(template.question.format(**words))
    return ArithmeticProblem(" ".join(sentences), expression, value, difficulty, family)


def _split_of(question: str, test_fraction: float) -> str:
    """The fixed split of a problem text: a hash of the text, so equal texts always land in the same split."""
    digest = hashlib.sha256(question.encode("utf-8")).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2**64 < test_fraction else "train"


def make_prompt(question: str, conversational: bool = True, instruction: str = DEFAULT_INSTRUCTION) -> Any:
    """The TRL prompt of a question: `[{"role": "user", "content": text}]`, or `text` if not `conversational`.

    Example:

    ```python
    >>> from trl_icrm.data.math_problems import make_prompt
    >>> make_prompt("What is 2 + 3?", instruction="{question} Answer in \\\\boxed{{}}.")
    [{'role': 'user', 'content': 'What is 2 + 3? Answer in \\\\boxed{}.'}]
    ```
    """
    text = instruction.format(question=question)
    return [{"role": "user", "content": text}] if conversational else text


def make_arithmetic_problems(
    num_train: int = 1000,
    num_test: int = 200,
    difficulties: Sequence[int] = DEFAULT_DIFFICULTIES,
    families: Sequence[str] | None = None,
    seed: int = 0,
    conversational: bool = True,
    instruction: str = DEFAULT_INSTRUCTION,
    test_fraction: float = 0.2,
    split: str | None = None,
):
    """Generates arithmetic word problems as a `DatasetDict` with fixed, disjoint "train" and "test" splits.

    Rows are balanced over `difficulties` (round robin, in the given order) and each row's family is drawn uniformly.
    A problem goes to "test" if a hash of its text falls below `test_fraction`, else to "train"; duplicates are
    dropped, so no problem text is in both splits or twice in one. The result depends only on the arguments.

    Args:
        num_train: Number of training problems.
        num_test: Number of test problems.
        difficulties: Difficulty levels (numbers of arithmetic operations) to make.
        families: Names of the [`FAMILIES`] to use (default: all).
        seed: Seed of the generator.
        conversational: Whether `prompt` is a list of chat messages (TRL's conversational format) or a plain string.
        instruction: Prompt template with a `{question}` field (other braces doubled).
        test_fraction: Hash threshold that assigns problem texts to "test"; changing it changes the splits.
        split: If given ("train" or "test"), only that split is returned, as a `Dataset`.

    Returns:
        `datasets.DatasetDict` with "train" and "test" (or one `datasets.Dataset` if `split` is given), with columns
        `prompt`, `solution` (the integer answer as a string), `question`, `expression` (arithmetic whose value is the
        answer), `difficulty` (int) and `family` (str).

    Example:

    ```python
    >>> from trl_icrm.data.math_problems import make_arithmetic_problems
    >>> test = make_arithmetic_problems(num_train=0, num_test=3, difficulties=[1], split="test", conversational=False)
    >>> test.column_names
    ['prompt', 'solution', 'question', 'expression', 'difficulty', 'family']
    ```
    """
    from datasets import Dataset, DatasetDict

    _check_problem_arguments(difficulties, test_fraction, split)
    wanted = {"train": num_train, "test": num_test}
    problems = _draw_split_problems(wanted, difficulties, families, seed, test_fraction)
    rows = {
        name: [_problem_row(problem, conversational, instruction) for problem in problems[name]] for name in wanted
    }
    dataset = DatasetDict({name: _rows_to_dataset(Dataset, rows[name], conversational) for name in ("train", "test")})
    return dataset if split is None else dataset[split]


def _check_problem_arguments(difficulties: Sequence[int], test_fraction: float, split: str | None) -> None:
    """Raises `ValueError` on arguments of [`make_arithmetic_problems`] that cannot make a dataset."""
    if not difficulties:
        raise ValueError("`difficulties` must name at least one level.")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"`test_fraction` must be in (0, 1), got {test_fraction}.")
    if split not in (None, "train", "test"):
        raise ValueError(f"`split` must be None, 'train' or 'test', got {split!r}.")


def _draw_split_problems(
    wanted: dict[str, int],
    difficulties: Sequence[int],
    families: Sequence[str] | None,
    seed: int,
    test_fraction: float,
) -> dict[str, list[ArithmeticProblem]]:
    """Draws distinct problems until each split has `wanted[split]` of them, balanced over `difficulties` per split."""
    problems: dict[str, list[ArithmeticProblem]] = {"train": [], "test": []}
    seen: set[str] = set()
    rng = random.Random(seed)
    # Round robin over difficulties per split, so each split is balanced on its own.
    turn = {"train": 0, "test": 0}
    attempts, max_attempts = 0, 200 * (wanted["train"] + wanted["test"]) + 1000
    while any(len(problems[s]) < wanted[s] for s in problems):
        attempts += 1
        if attempts > max_attempts:
            raise RuntimeError(
                f"Could not generate {wanted} distinct problems with difficulties={list(difficulties)} and "
                f"families={families}; ask for fewer."
            )
        # Draw the difficulty from the split that needs the most rows, relative to its size.
        target = max(problems, key=lambda s: (wanted[s] - len(problems[s])) / max(wanted[s], 1))
        difficulty = difficulties[turn[target] % len(difficulties)]
        problem = generate_problem(rng, difficulty, families=families)
        if problem.question in seen:
            continue
        seen.add(problem.question)
        problem_split = _split_of(problem.question, test_fraction)
        if problem_split != target or len(problems[problem_split]) >= wanted[problem_split]:
            continue
        turn[target] += 1
        problems[problem_split].append(problem)
    return problems


def _problem_row(problem: ArithmeticProblem, conversational: bool, instruction: str) -> dict[str, Any]:
    """The dataset row of one problem (the columns of [`make_arithmetic_problems`])."""
    return {
        "prompt": make_prompt(problem.question, conversational, instruction),
        "solution": str(problem.answer),
        "question": problem.question,
        "expression": problem.expression,
        "difficulty": problem.difficulty,
        "family": problem.family,
    }


def _rows_to_dataset(dataset_cls, rows: list[dict[str, Any]], conversational: bool):
    from datasets import Features, Value

    prompt = [{"role": Value("string"), "content": Value("string")}] if conversational else Value("string")
    features = Features(
        {
            "prompt": prompt,
            "solution": Value("string"),
            "question": Value("string"),
            "expression": Value("string"),
            "difficulty": Value("int64"),
            "family": Value("string"),
        }
    )
    columns = {key: [row[key] for row in rows] for key in features}
    return dataset_cls.from_dict(columns, features=features)


def extract_gsm8k_answer(answer: str) -> str:
    """The final answer of a GSM8K `answer` field: the text after the last `####`, without thousands separators.

    Example:

    ```python
    >>> from trl_icrm.data.math_problems import extract_gsm8k_answer
    >>> extract_gsm8k_answer("She pays 2 * 617 = <<2*617=1234>>1,234 dollars.\\n#### 1,234")
    '1234'
    ```
    """
    _, sep, tail = answer.rpartition("####")
    if not sep:
        raise ValueError(f"GSM8K answer has no '####' final answer: {answer[-80:]!r}")
    return tail.strip().replace(",", "").replace("$", "").strip()


def load_gsm8k_like(
    path_or_name: str | Path,
    split: str = "test",
    name: str | None = None,
    conversational: bool = True,
    instruction: str = DEFAULT_INSTRUCTION,
    num_rows: int | None = None,
    **load_dataset_kwargs: Any,
):
    """Loads a dataset with GSM8K's schema and maps it to the columns of [`make_arithmetic_problems`].

    The source needs a `question` column and an `answer` column whose final answer follows `####` (`"... #### 42"`).
    It is read with `datasets.load_dataset`: a hub id (`"openai/gsm8k"`, whose config `"main"` is picked when `name` is
    not given), a local dataset folder, or a local `.json`/`.jsonl`/`.csv`/`.parquet` file (then all rows form the
    split `split`).

    Args:
        path_or_name: Hub id, local folder or local file.
        split: Split to load.
        name: Dataset config name (e.g. `"main"` or `"socratic"` for GSM8K).
        conversational: Whether `prompt` is a list of chat messages or a plain string.
        instruction: Prompt template with a `{question}` field.
        num_rows: If given, only the first `num_rows` rows are kept.
        **load_dataset_kwargs: Passed to `datasets.load_dataset` (e.g. `revision`, `cache_dir`).

    Returns:
        `datasets.Dataset` with the source columns plus `prompt` and `solution` (the number after `####`, commas
        removed, as a string).

    Example:

    ```python
    >>> from trl_icrm.data.math_problems import load_gsm8k_like
    >>> gsm8k = load_gsm8k_like("openai/gsm8k", split="test", num_rows=100)  # doctest: +SKIP
    >>> gsm8k[0]["solution"]  # doctest: +SKIP
    '18'
    ```
    """
    from .loading import default_config, load_split

    dataset = load_split(path_or_name, split, default_config(path_or_name, name), **load_dataset_kwargs)
    missing = {"question", "answer"} - set(dataset.column_names)
    if missing:
        raise ValueError(f"{path_or_name} lacks the GSM8K column(s) {sorted(missing)}; it has {dataset.column_names}.")
    if num_rows is not None:
        dataset = dataset.select(range(min(num_rows, len(dataset))))
    return gsm8k_to_prompts(dataset, conversational, instruction)


def gsm8k_to_prompts(dataset, conversational: bool = True, instruction: str = DEFAULT_INSTRUCTION):
    """`dataset` (GSM8K's `question` and `answer` columns) with the `prompt` and `solution` columns of
    [`make_arithmetic_problems`]: the question in `instruction`, and the final answer after `####`."""

    def to_prompt_format(row: dict[str, Any]) -> dict[str, Any]:
        return {
            "prompt": make_prompt(row["question"], conversational, instruction),
            "solution": extract_gsm8k_answer(row["answer"]),
        }

    return dataset.map(to_prompt_format, desc="GSM8K problems to prompts")


__all__: list[str] = [
    "DEFAULT_DIFFICULTIES",
    "DEFAULT_INSTRUCTION",
    "FAMILIES",
    "ArithmeticProblem",
    "ProblemFamily",
    "extract_gsm8k_answer",
    "generate_problem",
    "gsm8k_to_prompts",
    "load_gsm8k_like",
    "make_arithmetic_problems",
    "make_prompt",
]

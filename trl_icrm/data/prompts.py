# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Prompt data sets for `trl-icrm grpo` and `trl-icrm bon`, recognized and converted once to TRL's prompt format.

| shape | columns | becomes |
| --- | --- | --- |
| prompts | `prompt` (or `--prompt_column`): a string, or a list of `{"role", "content"}` messages | used as it is |
| GSM8K | `question`, `answer` ending in `#### 42` | `prompt` (the question, asked for a `\\boxed{}` answer), `solution` ("42") |
| MATH-500 | `problem`, `solution` (worked), `answer` | `prompt` (the problem), `solution` (the answer), `worked_solution` |

A prompt data set may also hold the reference answer that math-verify checks (`--answer_column`; by default a
`solution` or an `answer` column, a GSM8K-style `... #### 42` answer read after its `####`), which becomes the
`solution` column TRL passes to the verifier, and per-prompt ICRM demonstrations (a `demonstrations` column of
`{prompt, chosen, rejected}` pairs) or a key into a bank of them (such as a `group` column). Every other column is kept
and reaches the reward functions. Conversational prompts are rendered by the policy's chat template where they are
used (`trl.GRPOTrainer` does it itself); standard prompts are used as they are.

Example:

```python
>>> from datasets import Dataset
>>> from trl_icrm.data.prompts import to_prompt_dataset
>>> rows = Dataset.from_list([{"question": "Tom has 2 apples and buys 3. How many?", "answer": "2 + 3 = 5\\n#### 5"}])
>>> problems = to_prompt_dataset(rows)
>>> problems[0]["prompt"][0]["role"], problems[0]["solution"]
('user', '5')

```
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .math_problems import DEFAULT_INSTRUCTION, extract_gsm8k_answer, gsm8k_to_prompts, make_prompt


if TYPE_CHECKING:
    from datasets import Dataset


ANSWER_COLUMNS = ("solution", "answer")
"""The columns looked for, in order, as the reference answer of a prompt when `answer_column` is not given."""

MATH_INSTRUCTION = (
    "Solve the following math problem. Reason step by step, briefly, then give the final answer in \\boxed{{}}."
    "\n\n{question}"
)
"""Prompt template of MATH-500 problems (their answers are expressions, not only numbers)."""

MATH_SHAPES = {"gsm8k": ("question", "answer"), "math500": ("problem", "answer")}
"""The math problem shapes recognized without a prompt column, by the columns that identify them."""


class PromptDatasetError(ValueError):
    """A prompt data set lacks a column that is needed (the prompts, or the answers or demonstrations a reward
    needs); the message names the column and the columns found."""


def prompt_dataset_shape(column_names: Sequence[str], prompt_column: str = "prompt") -> str:
    """`"prompts"` (a `prompt_column` column), else `"gsm8k"` or `"math500"` ([`MATH_SHAPES`]); raises
    [`PromptDatasetError`] naming the columns otherwise."""
    columns = set(column_names)
    if prompt_column in columns:
        return "prompts"
    for shape, needed in MATH_SHAPES.items():
        if set(needed) <= columns:
            return shape
    raise PromptDatasetError(
        f"No prompt column {prompt_column!r} (--prompt_column) in the data set, and it is neither GSM8K-shaped "
        f"('question', 'answer') nor MATH-500-shaped ('problem', 'answer'): its columns are {sorted(columns)}."
    )


def final_answer(answer: Any) -> str:
    """The reference answer math-verify checks: the text after a GSM8K `####`, else the answer as text."""
    text = str(answer)
    return extract_gsm8k_answer(text) if "####" in text else text.strip()


def _check_prompts(dataset: Dataset, column: str) -> None:
    from trl.data_utils import is_conversational

    first = dataset[0][column]
    if not isinstance(first, str) and not is_conversational({"prompt": first}):
        raise PromptDatasetError(
            f"Column {column!r} must hold prompts: strings, or lists of {{'role', 'content'}} messages; row 0 holds "
            f"{type(first).__name__} {str(first)[:80]!r}."
        )


def _prompts_as_they_are(dataset: Dataset, prompt_column: str, answer_column: str | None) -> Dataset:
    """A `"prompts"`-shaped data set with its prompts in `prompt` and its answers (if any) in `solution`."""
    _check_prompts(dataset, prompt_column)
    if prompt_column != "prompt":
        if "prompt" in dataset.column_names:
            raise PromptDatasetError(f"--prompt_column {prompt_column!r} given, but the data set also has 'prompt'.")
        dataset = dataset.rename_column(prompt_column, "prompt")
    if answer_column is None:
        answer_column = next((c for c in ANSWER_COLUMNS if c in dataset.column_names), None)
    elif answer_column not in dataset.column_names:
        raise PromptDatasetError(
            f"No answer column {answer_column!r} (--answer_column) in the data set: its columns are "
            f"{sorted(dataset.column_names)}."
        )
    if answer_column is None:
        return dataset
    answers = [final_answer(answer) if answer is not None else None for answer in dataset[answer_column]]
    if "solution" in dataset.column_names:
        dataset = dataset.remove_columns("solution")
    return dataset.add_column("solution", answers)


def to_prompt_dataset(
    dataset: Dataset,
    prompt_column: str = "prompt",
    answer_column: str | None = None,
    conversational: bool = True,
    instruction: str | None = None,
) -> Dataset:
    """`dataset` in TRL's prompt format: a `prompt` column, and a `solution` column (the reference answer) where the
    data has answers (see the module's table). GSM8K and MATH-500 problems are asked with `instruction` (default:
    `DEFAULT_INSTRUCTION` and [`MATH_INSTRUCTION`]), as conversational prompts unless `conversational=False`; other
    columns are kept."""
    if len(dataset) == 0:
        raise PromptDatasetError("The prompt data set has no rows.")
    shape = prompt_dataset_shape(dataset.column_names, prompt_column)
    if shape == "prompts":
        return _prompts_as_they_are(dataset, prompt_column, answer_column)
    if shape == "gsm8k":
        return gsm8k_to_prompts(dataset, conversational, instruction or DEFAULT_INSTRUCTION)
    if "solution" in dataset.column_names:  # MATH-500: `solution` is the worked solution, `answer` the answer
        dataset = dataset.rename_column("solution", "worked_solution")
    instruction = instruction or MATH_INSTRUCTION

    def to_prompt_format(row: dict[str, Any]) -> dict[str, Any]:
        return {"prompt": make_prompt(row["problem"], conversational, instruction), "solution": str(row["answer"])}

    return dataset.map(to_prompt_format, desc="MATH problems to prompts")


def load_prompt_splits(
    dataset_name: str | os.PathLike,
    dataset_config: str | None = None,
    dataset_train_split: str = "train",
    dataset_test_split: str | None = "test",
    prompt_column: str = "prompt",
    answer_column: str | None = None,
) -> tuple[Dataset, Dataset | None]:
    """(train, test or None) of a prompt data set named as TRL's `ScriptArguments` name it
    ([`~trl_icrm.data.loading.load_dataset_splits`]: a hub id, a folder, or a local file, which is all train split),
    each converted by [`to_prompt_dataset`]."""
    from .loading import default_config, load_dataset_splits

    config = default_config(dataset_name, dataset_config)
    train, test = load_dataset_splits(dataset_name, config, dataset_train_split, dataset_test_split)
    convert = {"prompt_column": prompt_column, "answer_column": answer_column}
    return to_prompt_dataset(train, **convert), (to_prompt_dataset(test, **convert) if test is not None else None)


def require_answers(dataset: Dataset, needed_by: str) -> None:
    """Raise [`PromptDatasetError`] when `dataset` has no `solution` column (the reference answers that `needed_by`,
    e.g. the verifier reward, checks completions against)."""
    if "solution" not in dataset.column_names:
        raise PromptDatasetError(
            f"{needed_by} checks each completion against the prompt's reference answer, and the data set has no "
            f"answer column (--answer_column; looked for {list(ANSWER_COLUMNS)}): its columns are "
            f"{sorted(dataset.column_names)}."
        )


def first_rows(dataset: Dataset, num_rows: int | None) -> Dataset:
    """The first `num_rows` rows of `dataset` (all of them when it has fewer, or `num_rows` is None)."""
    return dataset if num_rows is None or num_rows >= len(dataset) else dataset.select(range(num_rows))


__all__ = [
    "ANSWER_COLUMNS",
    "MATH_INSTRUCTION",
    "MATH_SHAPES",
    "PromptDatasetError",
    "final_answer",
    "first_rows",
    "load_prompt_splits",
    "prompt_dataset_shape",
    "require_answers",
    "to_prompt_dataset",
]

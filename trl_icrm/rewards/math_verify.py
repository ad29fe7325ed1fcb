# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""A math-verify correctness reward with TRL's reward-function interface.

[`MathVerifyReward`] scores a completion 1.0 when its final answer equals the row's `solution` and 0.0 otherwise. The
final answer is extracted by [math-verify](https://github.com/huggingface/Math-Verify) in this order of priority:
`\\boxed{...}` first, then an answer after "final answer is" / "answer:" / "the answer is", then the last LaTeX
(`$12$`, `\\(12\\)`, `\\frac{24}{2}`) or plain number or expression in the text (`... = 12`, `12 apples`, `1,234`);
list markers that open a line of text ("3. Then", "Step 2: Add") are not taken for answers. Equality is math-verify's
(numeric and symbolic: `12.0`, `24/2` and `\\frac{24}{2}` all equal `12`). A row without a solution scores `None`.

math-verify bounds each parse and comparison with a `signal.alarm` timeout, which only works in the main thread. The
reward uses that timeout in the main thread and none in other threads (TRL's `accuracy_reward` does the same), so it
runs in `threading.Thread`s, thread pools and async reward loops alike; there, a pathological input is not cut short.

Example:

```python
>>> from trl_icrm.rewards.math_verify import MathVerifyReward
>>> reward = MathVerifyReward()
>>> reward(completions=["So the answer is \\\\boxed{12}.", "The answer is 13."], solution=["12", "12"])
[1.0, 0.0]
>>> reward(completions=[[{"role": "assistant", "content": "41 - 16 = 25 apples."}]], solution=["25"])
[1.0]
```
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sympy
from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify


Completion = str | Sequence[Mapping[str, Any]]


class _DropTimeoutDisabledWarning(logging.Filter):
    """Drops math-verify's "Timeout is disabled" warning, which off the main thread is expected, not a problem."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Timeout is disabled")


_LIST_MARKER = re.compile(r"^([ \t>*#-]*)(?:Step[ \t]+)?\d+[.):][ \t]+(?=\S)", re.MULTILINE | re.IGNORECASE)
"""A list or step marker at the start of a line ("3. ", "2) ", "Step 4: "), followed by more text on that line."""

_TIMEOUT_FILTER = _DropTimeoutDisabledWarning()
for _logger_name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_logger_name).addFilter(_TIMEOUT_FILTER)


def completion_text(completion: Completion) -> str:
    """The text of a completion: the string itself, or the content of the last assistant message of a conversation.

    Message content may be a string or a list of content blocks (`{"type": "text", "text": ...}`), whose texts are
    joined.

    Example:

    ```python
    >>> from trl_icrm.rewards.math_verify import completion_text
    >>> completion_text([{"role": "assistant", "content": "It is 4."}])
    'It is 4.'
    ```
    """
    if isinstance(completion, str):
        return completion
    messages = [message for message in completion if message.get("role", "assistant") == "assistant"]
    if not messages:
        return ""
    content = messages[-1].get("content") or ""
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content if isinstance(block, Mapping))


def _format_answer(parsed: list) -> str | None:
    """A parsed answer as a short string: numbers are evaluated (`24/2` -> `12`, `12.0` -> `12`, `2.50` -> `2.5`)."""
    if not parsed:
        return None
    value = parsed[0]
    if isinstance(value, sympy.Basic) and value.is_number:
        try:
            value = value.doit()
            if value.is_Float:
                number = float(value)
                return str(int(number)) if number.is_integer() else repr(number)
        except (TypeError, ValueError, ArithmeticError):
            pass
    return str(value)


class MathVerifyReward:
    """Correctness reward: 1.0 if a completion's final answer equals the row's `solution` under math-verify, else 0.0.

    Use it as a reward function of `trl.GRPOTrainer` (which passes the dataset's `solution` column) or call it directly.
    Its `__name__` (`name`) is the name TRL logs its rewards under (`rewards/math_verify/mean` is the accuracy).

    Args:
        name: Name of the reward in logs.
        boxed_match_priority: math-verify priority of `\\boxed{}` answers (0: before any other pattern; 50: after
            "final answer is ..."; -1: `\\boxed{}` is not looked for).
        try_extract_without_anchor: Whether an answer may be taken from the last LaTeX or number in the text when no
            `\\boxed{}` or "answer" anchor is found. With `False`, a bare "... = 12" or "12 apples" scores 0.0.
        ignore_list_markers: Whether list and step numbers at the start of a line ("3. Then ...", "Step 2: ...") are
            removed before extraction, so that a completion cut off mid-list is not read as answering "3".
        timeout_seconds: math-verify's per-parse and per-comparison timeout in the main thread (`None`: no timeout).
            Outside the main thread no timeout is used, since math-verify's timeout relies on `signal.alarm`.
        float_rounding: Decimal places floats are rounded to before comparison (math-verify's `float_rounding`).
        log_metrics: Whether to report `"{name}/accuracy"` and `"{name}/extracted"` (share of completions with an
            extractable answer) through TRL's `log_metric` and the extracted answers through `log_extra`, when given.

    Example:

    ```python
    >>> from trl_icrm.rewards.math_verify import MathVerifyReward
    >>> reward = MathVerifyReward()
    >>> reward(completions=["$12$", "12.0 apples", "1,234", "Hmm.", ""], solution=["12", "12", "1234", "3", "3"])
    [1.0, 1.0, 1.0, 0.0, 0.0]
    >>> reward.extract("Total: 3 + 4 = 7 apples.")
    '7'
    ```
    """

    def __init__(
        self,
        name: str = "math_verify",
        boxed_match_priority: int = 0,
        try_extract_without_anchor: bool = True,
        ignore_list_markers: bool = True,
        timeout_seconds: int | None = 5,
        float_rounding: int = 6,
        log_metrics: bool = True,
    ):
        self.__name__ = name
        self.timeout_seconds = timeout_seconds
        self.ignore_list_markers = ignore_list_markers
        self.float_rounding = float_rounding
        self.log_metrics = log_metrics
        self.answer_extraction_config = (
            LatexExtractionConfig(
                boxed_match_priority=boxed_match_priority,
                try_extract_without_anchor=try_extract_without_anchor,
            ),
            ExprExtractionConfig(try_extract_without_anchor=try_extract_without_anchor),
        )
        # A solution is a bare answer ("42", "\\frac{1}{2}"): read it as an expression or LaTeX, anchors or not.
        self.solution_extraction_config = (LatexExtractionConfig(), ExprExtractionConfig())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.__name__!r}, timeout_seconds={self.timeout_seconds})"

    def _timeout(self) -> int | None:
        """The math-verify timeout for the current thread: `timeout_seconds` in the main thread, else `None`."""
        return self.timeout_seconds if threading.current_thread() is threading.main_thread() else None

    def parse_answer(self, completion: Completion) -> list:
        """The parsed final answer of a completion (math-verify's list of SymPy objects; empty if none was found)."""
        text = completion_text(completion)
        if self.ignore_list_markers:
            text = _LIST_MARKER.sub(r"\1", text)
        if not text.strip():
            return []
        return parse(
            text,
            extraction_config=self.answer_extraction_config,
            fallback_mode="no_fallback",
            extraction_mode="any_match",
            parsing_timeout=self._timeout(),
        )

    def parse_solution(self, solution: Any) -> list:
        """The parsed reference answer (empty if `solution` is `None`, blank or unparseable)."""
        if solution is None or not str(solution).strip():
            return []
        text = str(solution).strip()
        timeout = self._timeout()
        if not text.startswith("$"):  # a bare answer is one LaTeX expression ("3\\sqrt{13}", "6 - 5i", "1, -2")
            gold = parse(f"${text}$", self.solution_extraction_config, "no_fallback", parsing_timeout=timeout)
            if gold:
                return gold
        return parse(text, self.solution_extraction_config, fallback_mode="no_fallback", parsing_timeout=timeout)

    def extract(self, completion: Completion) -> str | None:
        """The final answer of a completion as a normalized string (`"12"`), or `None` if none was found.

        Useful to compare completions with each other, e.g. for a majority vote.
        """
        return _format_answer(self.parse_answer(completion))

    def score(self, completion: Completion, solution: Any) -> float | None:
        """1.0 if the completion's answer equals `solution`, 0.0 if not (or no answer), `None` if there is no solution."""
        return self._judge(completion, solution)[0]

    def _judge(self, completion: Completion, solution: Any) -> tuple[float | None, list]:
        answer = self.parse_answer(completion)
        gold = self.parse_solution(solution)
        if not gold:
            return None, answer
        if not answer:
            return 0.0, answer
        correct = verify(gold, answer, float_rounding=self.float_rounding, timeout_seconds=self._timeout())
        return (1.0 if correct else 0.0), answer

    def __call__(
        self,
        prompts: list | None = None,
        completions: Sequence[Completion] | None = None,
        completion_ids: list | None = None,
        solution: Sequence[Any] | None = None,
        log_extra: Callable[[str, list], None] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        """Scores each completion against the `solution` of its row.

        Args:
            prompts: Unused (TRL passes them).
            completions: Strings, or lists of chat messages (`[{"role": "assistant", "content": ...}]`).
            completion_ids: Unused (TRL passes them).
            solution: Reference answers, one per completion (the dataset's `solution` column).
            log_extra: TRL's callable to add columns to the completions table.
            log_metric: TRL's callable to log a scalar metric.
            **kwargs: Other dataset columns and `trainer_state`; ignored.

        Returns:
            One reward per completion: 1.0 (correct), 0.0 (wrong or no answer found), or `None` where the row's
            solution is missing, blank or unparseable (TRL then ignores this reward for that row).
        """
        if completions is None:
            raise ValueError("`completions` is required.")
        if solution is None:
            raise ValueError(
                f"{self.__name__} needs a `solution` column in the dataset (the reference answer of each prompt)."
            )
        if len(solution) != len(completions):
            raise ValueError(f"Got {len(completions)} completions but {len(solution)} solutions.")
        judged = [self._judge(completion, answer) for completion, answer in zip(completions, solution, strict=True)]
        rewards = [reward for reward, _ in judged]
        if self.log_metrics:
            scored = [reward for reward in rewards if reward is not None]
            if log_metric is not None and scored:
                log_metric(f"{self.__name__}/accuracy", sum(scored) / len(scored))
                log_metric(f"{self.__name__}/extracted", sum(bool(parsed) for _, parsed in judged) / len(judged))
            if log_extra is not None:
                log_extra(f"{self.__name__}/answer", [_format_answer(parsed) for _, parsed in judged])
        return rewards


__all__ = ["MathVerifyReward", "completion_text"]

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The preference formats users bring, recognized and converted once to TRL's explicit-prompt format.

| format | columns | example |
| --- | --- | --- |
| explicit, standard | `prompt`, `chosen`, `rejected` (strings) | TRL's `trl-lib/ultrafeedback-prompt` style |
| explicit, conversational | `prompt`, `chosen`, `rejected` (lists of `{"role", "content"}`) | `trl-lib/ultrafeedback_binarized` |
| implicit, conversational | `chosen`, `rejected`: whole conversations sharing all but the last turn | `trl-lib/hh-rlhf-helpful-base` |
| implicit, transcript | `chosen`, `rejected`: `"\\n\\nHuman: ... \\n\\nAssistant: ..."` strings | Anthropic HH-RLHF |

Explicit rows are kept as they are. Implicit conversations go through TRL's own `extract_prompt`; HH-RLHF
transcripts are first parsed into messages (`Human:` -> `user`, `Assistant:` -> `assistant`), so the result is in
the explicit conversational format either way: the prompt is every turn before the last assistant turn, `chosen`
and `rejected` that last turn. Any other column (a `group` / objective column for ICRM, `label`, ids) is kept.

Example:

```python
>>> from trl_icrm.data.preferences import to_explicit_prompt
>>> row = {"chosen": "\\n\\nHuman: Hi?\\n\\nAssistant: Hello!", "rejected": "\\n\\nHuman: Hi?\\n\\nAssistant: Go away."}
>>> to_explicit_prompt(row)["prompt"], to_explicit_prompt(row)["chosen"]
([{'role': 'user', 'content': 'Hi?'}], [{'role': 'assistant', 'content': 'Hello!'}])

```
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any


if TYPE_CHECKING:
    from datasets import Dataset


logger = logging.getLogger(__name__)

TRANSCRIPT_ROLES = {"Human": "user", "Assistant": "assistant"}
"""Speaker names of an HH-RLHF transcript and the chat roles they become."""

_TURN = re.compile(r"\n\n(Human|Assistant):")

FORMATS = ("explicit_standard", "explicit_conversational", "implicit_conversational", "implicit_transcript")


class PreferenceFormatError(ValueError):
    """A row is in none of the preference formats, or its two conversations do not share a prompt."""


def is_transcript(value: Any) -> bool:
    """Whether `value` is an HH-RLHF transcript: a string that opens with a `Human:` turn and has an
    `Assistant:` turn."""
    return isinstance(value, str) and value.lstrip(" ").startswith("\n\nHuman:") and "\n\nAssistant:" in value


def parse_transcript(text: str) -> list[dict[str, str]]:
    """The messages of an HH-RLHF transcript, in order; a turn's text is stripped of the one space after its
    speaker's colon and of trailing white space."""
    if not is_transcript(text):
        raise PreferenceFormatError(f"Not an HH-RLHF transcript (no leading '\\n\\nHuman:' turn): {text[:80]!r}")
    parts = _TURN.split(text.lstrip(" "))
    # parts: ["", speaker, text, speaker, text, ...]
    return [
        {"role": TRANSCRIPT_ROLES[speaker], "content": body.removeprefix(" ").rstrip()}
        for speaker, body in zip(parts[1::2], parts[2::2], strict=True)
    ]


def preference_format(example: Mapping[str, Any]) -> str:
    """Which of `FORMATS` a preference row is in; raises `PreferenceFormatError` naming the columns otherwise."""
    if "chosen" not in example or "rejected" not in example:
        raise PreferenceFormatError(
            f"A preference row needs 'chosen' and 'rejected' columns (and optionally 'prompt'); got {sorted(example)}."
        )
    from trl.data_utils import is_conversational

    conversational = is_conversational({"chosen": example["chosen"]})
    if example.get("prompt") is not None:
        if conversational != is_conversational({"prompt": example["prompt"]}):
            raise PreferenceFormatError("'prompt' and 'chosen' must both be strings or both be lists of messages.")
        return "explicit_conversational" if conversational else "explicit_standard"
    if conversational:
        return "implicit_conversational"
    if is_transcript(example["chosen"]) and is_transcript(example["rejected"]):
        return "implicit_transcript"
    raise PreferenceFormatError(
        "Rows without a 'prompt' column must hold whole conversations in 'chosen' and 'rejected': lists of "
        "{'role', 'content'} messages, or HH-RLHF transcripts ('\\n\\nHuman: ...\\n\\nAssistant: ...')."
    )


def to_explicit_prompt(example: Mapping[str, Any]) -> dict[str, Any]:
    """`example` in the explicit-prompt format (see the module's table); other columns are kept."""
    kind = preference_format(example)
    if kind.startswith("explicit"):
        return dict(example)
    from trl.data_utils import extract_prompt

    chosen, rejected = example["chosen"], example["rejected"]
    if kind == "implicit_transcript":
        chosen, rejected = parse_transcript(chosen), parse_transcript(rejected)
    split = extract_prompt({"chosen": chosen, "rejected": rejected})
    if not split["prompt"] or not split["chosen"] or not split["rejected"]:
        raise PreferenceFormatError(
            "The two conversations share no prompt, or one of them is the other's prefix: their last turns must differ."
        )
    if any(len(split[key]) != 1 or split[key][0]["role"] != "assistant" for key in ("chosen", "rejected")):
        raise PreferenceFormatError(
            "The two conversations differ before their last assistant turn: only that turn may differ."
        )
    return {**example, **split}


def standardize_preferences(dataset: Dataset, num_proc: int | None = None, malformed: str = "skip") -> Dataset:
    """`dataset` in the explicit-prompt format; a data set already in it is returned as it is (no copy).

    Real implicit-prompt data has a few rows whose two conversations differ before their last turn (5 of the 2,312
    pairs of HH-RLHF's harmless-base test split): `malformed="skip"` drops them with a warning that counts them,
    `"error"` raises on the first. A data set with no convertible row is always an error."""
    if malformed not in ("skip", "error"):
        raise ValueError(f"malformed must be 'skip' or 'error', got {malformed!r}.")
    if len(dataset) == 0:
        raise PreferenceFormatError("The preference data set has no rows.")
    kind = preference_format(dataset[0])
    if kind.startswith("explicit"):
        return dataset
    desc = f"Extracting prompts ({kind.replace('_', ' ')})"
    if malformed == "error":
        return dataset.map(to_explicit_prompt, num_proc=num_proc, desc=desc)
    converted = dataset.map(_to_explicit_prompt_or_none, num_proc=num_proc, desc=desc)
    kept = converted.filter(lambda row: row["prompt"] is not None, num_proc=num_proc)
    dropped = len(converted) - len(kept)
    if len(kept) == 0:
        to_explicit_prompt(dataset[0])  # raises the first row's error
    if dropped:
        logger.warning(
            "Dropped %d of %d preference rows whose two conversations differ before their last assistant turn "
            "(or share no prompt): only the last turn may differ.",
            dropped,
            len(converted),
        )
    return kept


def _to_explicit_prompt_or_none(example: Mapping[str, Any]) -> dict[str, Any]:
    """`to_explicit_prompt(example)`, or the row with `prompt`, `chosen` and `rejected` set to None where its
    conversations do not split."""
    try:
        return to_explicit_prompt(example)
    except PreferenceFormatError:
        return {**example, "prompt": None, "chosen": None, "rejected": None}


def split_pairs(dataset: Dataset, eval_fraction: float, seed: int) -> tuple[Dataset, Dataset | None]:
    """(train, eval or None): a random `eval_fraction` of the pairs held out (none below 4 pairs)."""
    if eval_fraction <= 0 or len(dataset) < 4:
        return dataset, None
    split = dataset.train_test_split(test_size=eval_fraction, seed=seed)
    return split["train"], split["test"]


PAIR_COLUMNS = ("prompt", "chosen", "rejected")
"""The columns of a preference pair in the explicit-prompt format."""


__all__ = [
    "FORMATS",
    "PAIR_COLUMNS",
    "PreferenceFormatError",
    "is_transcript",
    "parse_transcript",
    "preference_format",
    "split_pairs",
    "standardize_preferences",
    "to_explicit_prompt",
]

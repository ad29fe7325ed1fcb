# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Rendering of in-context preference demonstrations and a query into one model input.

An ICRM model reads one sequence: a block of K demonstrations (x_k, y_k+, y_k-) from the target preference
distribution followed by the query (x, y), rendered exactly as `trl.RewardTrainer` renders a response (the chat template
for conversational data, `prompt + response + eos` for standard data). The demonstration block is text made with a
[`DemonstrationTemplate`], which is saved in the model config so a reloaded model renders exactly as in training.

Segments are tokenized separately and concatenated as token ids: `[bos] + header + demo_1 + ... + demo_K + footer +
query` (bos only for tokenizers that prepend it by themselves; the query keeps its own tokens unchanged). This keeps one demonstration's tokens identical wherever it appears, lets the reward callable encode a shared
demonstration prefix once, and lets the length policy drop whole demonstrations (never cutting one mid-way) until the
sequence fits `max_length`. The query itself is never cut: if it alone is too long, a [`QueryTooLongError`] names it.

Example:

```python
>>> from transformers import AutoTokenizer
>>> from trl_icrm import default_model_path
>>> from trl_icrm.demonstrations import DemonstrationRenderer
>>> renderer = DemonstrationRenderer(AutoTokenizer.from_pretrained(default_model_path()))
>>> demos = [{"prompt": "2+2?", "chosen": "4", "rejected": "Four, I think."}]
>>> encoded = renderer.encode_pair("3+3?", "6", "Six, probably.", demos, max_length=512)
>>> encoded.num_demonstrations, encoded.num_dropped
(1, 0)
```
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from .sampling import DEMONSTRATION_KEYS


Message = Mapping[str, Any]
Text = str | Sequence[Message]


@dataclass
class DemonstrationTemplate:
    """Text template of the demonstration block; saved with the model (`config.icrm["template"]`).

    Args:
        header: Text before the first demonstration (only when there is at least one).
        demonstration: One demonstration, with `{prompt}`, `{chosen}` and `{rejected}` placeholders.
        footer: Text between the last demonstration and the query (only when there is at least one demonstration).
        message: How one chat message of a conversational demonstration is written, with `{role}` and `{content}`.
        message_separator: Joins the messages of a conversational prompt.
    """

    header: str = "Preference examples (the preferred response is listed first):\n\n"
    demonstration: str = "Prompt: {prompt}\nPreferred: {chosen}\nNot preferred: {rejected}\n\n"
    footer: str = "Judge the next response by the same preferences.\n"
    message: str = "{role}: {content}"
    message_separator: str = "\n"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> DemonstrationTemplate:
        values = dict(values or {})
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"Unknown demonstration template fields: {sorted(unknown)}.")
        template = cls(**values)
        template.check_placeholders()
        return template

    def check_placeholders(self) -> None:
        """Raise a `ValueError` naming the field if a text uses a placeholder other than its own."""
        allowed = {"demonstration": {"prompt", "chosen", "rejected"}, "message": {"role", "content"}}
        for name, placeholders in allowed.items():  # the other fields are literal text
            try:
                parsed = list(string.Formatter().parse(getattr(self, name)))
            except ValueError as error:
                raise ValueError(f"Demonstration template field {name!r} is not a valid format string: {error}.")
            unknown = {field for _, field, _, _ in parsed if field is not None} - placeholders
            if unknown:
                raise ValueError(
                    f"Demonstration template field {name!r} uses unknown placeholder(s) {sorted(unknown)}; it may use "
                    f"{sorted(placeholders)} (write literal braces as {{{{ and }}}})."
                )


class QueryTooLongError(ValueError):
    """The query (prompt + response) alone does not fit `max_length`; it is never cut silently."""


class MalformedDemonstrationError(ValueError):
    """A demonstration entry lacks a key or has a value of the wrong type."""


@dataclass
class EncodedPair:
    """Token ids of the two sides of a pair, sharing the same demonstrations."""

    chosen_ids: list[int]
    rejected_ids: list[int]
    num_demonstrations: int
    num_dropped: int
    prefix_length: int = 0  # leading tokens (bos, demonstrations) the two sides share


@dataclass
class EncodedQuery:
    """Token ids of one scored response, split into the demonstration prefix and the query suffix."""

    prefix_ids: list[int]
    query_ids: list[int]
    num_demonstrations: int
    num_dropped: int

    @property
    def input_ids(self) -> list[int]:
        return self.prefix_ids + self.query_ids


def validate_demonstration(demonstration: Any, where: str = "demonstration") -> None:
    """Raise [`MalformedDemonstrationError`] naming `where` and the key if `demonstration` is not a valid pair."""
    if not isinstance(demonstration, Mapping):
        raise MalformedDemonstrationError(
            f"{where}: expected a mapping with keys {list(DEMONSTRATION_KEYS)}, got {type(demonstration).__name__}."
        )
    for key in DEMONSTRATION_KEYS:
        if key not in demonstration:
            raise MalformedDemonstrationError(f"{where}: missing key {key!r} (has {sorted(demonstration)}).")
        value = demonstration[key]
        if isinstance(value, str):
            continue
        if isinstance(value, Sequence) and all(isinstance(m, Mapping) and "content" in m for m in value):
            continue
        raise MalformedDemonstrationError(
            f"{where}: key {key!r} must be a string or a list of chat messages with 'role' and 'content', "
            f"got {type(value).__name__}."
        )


def validate_demonstrations(pairs: Any, where: str) -> list[Mapping[str, Any]]:
    """`pairs` as a list after checking that it is a list of valid demonstrations ([`validate_demonstration`])."""
    if isinstance(pairs, (Mapping, str)) or not isinstance(pairs, Sequence):
        raise MalformedDemonstrationError(
            f"{where}: expected a list of demonstration pairs, got {type(pairs).__name__}."
        )
    for j, pair in enumerate(pairs):
        validate_demonstration(pair, f"{where}, demonstration {j}")
    return list(pairs)


def is_conversational_value(value: Any) -> bool:
    """Whether a prompt/response value is a list of chat messages (TRL's conversational format)."""
    return isinstance(value, Sequence) and not isinstance(value, str)


class DemonstrationRenderer:
    """Encodes demonstrations and queries into token ids with a [`DemonstrationTemplate`].

    Args:
        tokenizer: The reward model's tokenizer (its chat template renders conversational queries).
        template: The demonstration template (default: [`DemonstrationTemplate`]`()`).
    """

    def __init__(self, tokenizer, template: DemonstrationTemplate | None = None):
        self.tokenizer = tokenizer
        self.template = template or DemonstrationTemplate()
        self.header_ids = self._encode_text(self.template.header)
        self.footer_ids = self._encode_text(self.template.footer)
        # A tokenizer that prepends bos by itself (Llama-style) gets it at the very start of the sequence too.
        probe = tokenizer("a")["input_ids"]
        bos = tokenizer.bos_token_id
        self.bos_ids = [bos] if bos is not None and probe and probe[0] == bos else []

    # Text rendering
    def _flatten(self, value: Text, response: bool) -> str:
        if isinstance(value, str):
            return value
        if response:  # a response is the content of its message(s)
            return self.template.message_separator.join(str(m["content"]) for m in value)
        return self.template.message_separator.join(
            self.template.message.format(role=m.get("role", "user"), content=m["content"]) for m in value
        )

    def render_demonstration(self, demonstration: Mapping[str, Any]) -> str:
        """The text of one demonstration (standard strings or conversational message lists)."""
        validate_demonstration(demonstration)
        return self.template.demonstration.format(
            prompt=self._flatten(demonstration["prompt"], response=False),
            chosen=self._flatten(demonstration["chosen"], response=True),
            rejected=self._flatten(demonstration["rejected"], response=True),
        )

    # Tokenization
    def _encode_text(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def encode_demonstration(self, demonstration: Mapping[str, Any]) -> list[int]:
        """Token ids of one demonstration (no special tokens), identical wherever it is placed."""
        return self._encode_text(self.render_demonstration(demonstration))

    def encode_query(self, prompt: Text | None, response: Text) -> list[int]:
        """Token ids of a query as `trl.RewardTrainer` tokenizes a response: the chat template for conversational
        data, `prompt + response + eos` (tokenizer's special tokens included) for standard data."""
        if is_conversational_value(response):
            if isinstance(prompt, str):
                raise TypeError(
                    "A conversational response (a list of messages) needs a conversational prompt (a list of messages), "
                    f"got the string prompt {prompt[:60]!r}."
                )
            messages = list(prompt or []) + list(response)
            return list(self.tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])
        if not isinstance(response, str):
            raise TypeError(f"A response must be a string or a list of chat messages, got {type(response).__name__}.")
        if prompt is not None and not isinstance(prompt, str):
            raise TypeError("A standard (string) response needs a string prompt.")
        text = (prompt or "") + response
        eos = self.tokenizer.eos_token
        if eos is not None and not text.endswith(eos):
            text += eos
        return list(self.tokenizer(text)["input_ids"])

    def encode_queries(
        self, prompts: Sequence[Text | None], responses: Sequence[Text], max_length: int | None = None
    ) -> list[list[int]]:
        """[`encode_query`] of each (prompt, response), cut to its first `max_length` tokens (`None`: all)."""
        rows = [self.encode_query(prompt, response) for prompt, response in zip(prompts, responses, strict=True)]
        return [row[:max_length] if max_length else row for row in rows]

    # Assembly under the length policy
    def build_prefix(self, demonstration_ids: Sequence[Sequence[int]]) -> list[int]:
        """`[bos] + header + demos + footer` (bos only for tokenizers that add one by themselves), or nothing
        without demonstrations: with K = 0 the input is exactly the query as `trl.RewardTrainer` tokenizes it."""
        if not demonstration_ids:
            return []
        prefix = list(self.bos_ids) + list(self.header_ids)
        for ids in demonstration_ids:
            prefix.extend(ids)
        return prefix + list(self.footer_ids)

    def fit_demonstrations(
        self,
        demonstration_ids: Sequence[Sequence[int]],
        query_length: int,
        max_length: int | None,
        name: str = "query",
    ) -> int:
        """How many leading demonstrations fit with a query of `query_length` tokens (whole ones dropped from the
        end). Raises [`QueryTooLongError`] if the query alone does not fit."""
        if max_length is None:
            return len(demonstration_ids)
        if query_length > max_length:
            raise QueryTooLongError(
                f"{name} is {query_length} tokens long without demonstrations, more than max_length={max_length}. "
                "The query (prompt + response) is never cut: raise max_length, shorten or filter this example "
                "(or set the overlong-query policy to 'skip' where the caller offers one)."
            )
        budget = max_length - query_length - len(self.bos_ids) - len(self.header_ids) - len(self.footer_ids)
        kept = 0
        for ids in demonstration_ids:
            if len(ids) > budget:
                break
            budget -= len(ids)
            kept += 1
        return kept

    def assemble(
        self,
        query_ids: Sequence[int],
        demonstration_ids: Sequence[Sequence[int]],
        max_length: int | None = None,
        name: str = "query",
    ) -> EncodedQuery:
        """Prefix (bos, demonstrations) and query ids for one response, dropping whole demonstrations to fit."""
        query_ids = list(query_ids)
        kept = self.fit_demonstrations(demonstration_ids, len(query_ids), max_length, name)
        return EncodedQuery(
            self.build_prefix(demonstration_ids[:kept]), query_ids, kept, len(demonstration_ids) - kept
        )

    def assemble_pair(
        self,
        chosen_ids: Sequence[int],
        rejected_ids: Sequence[int],
        demonstration_ids: Sequence[Sequence[int]],
        max_length: int | None = None,
        name: str = "pair",
    ) -> EncodedPair:
        """Both sides of a pair with the same demonstrations (as many as fit with the longer side)."""
        chosen = self.assemble(chosen_ids, demonstration_ids, max_length, f"{name} (chosen side)")
        rejected = self.assemble(rejected_ids, demonstration_ids, max_length, f"{name} (rejected side)")
        kept = min(chosen.num_demonstrations, rejected.num_demonstrations)
        if kept < max(chosen.num_demonstrations, rejected.num_demonstrations):
            chosen = self.assemble(chosen_ids, demonstration_ids[:kept])
            rejected = self.assemble(rejected_ids, demonstration_ids[:kept])
        return EncodedPair(
            chosen.input_ids, rejected.input_ids, kept, len(demonstration_ids) - kept, len(chosen.prefix_ids)
        )

    def encode_pair(
        self,
        prompt: Text | None,
        chosen: Text,
        rejected: Text,
        demonstrations: Sequence[Mapping[str, Any]] = (),
        max_length: int | None = None,
        name: str = "pair",
    ) -> EncodedPair:
        """Encode a pair with its demonstrations from raw (standard or conversational) values."""
        return self.assemble_pair(
            self.encode_query(prompt, chosen),
            self.encode_query(prompt, rejected),
            [self.encode_demonstration(d) for d in demonstrations],
            max_length,
            name,
        )

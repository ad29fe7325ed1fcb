# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Reward callables for TRL's `GRPOTrainer` / `RLOOTrainer` `reward_funcs` (and best-of-N).

[`ICRMReward`] scores each completion with an ICRM reward model steered by its prompt's own demonstrations;
[`SequenceClassifierReward`] wraps a conventional BT reward model (e.g. one trained by `trl.RewardTrainer`). Both take
TRL's reward-function call `f(prompts=..., completions=..., completion_ids=..., **columns, trainer_state=...,
log_extra=..., log_metric=...)` and return one float per completion.

Under `accelerate launch` each process scores its own completions with its own copy of the reward model: a model
given by path is loaded whole even under DeepSpeed ZeRO-3 (a partitioned copy could not be called outside an engine;
see `trl_icrm.distributed`). A loaded model passed in must not be ZeRO-3 partitioned either. With the math-verify correctness reward
(`trl_icrm.verifier.MathVerifyReward`) a recipe switches between them by name ([`build_reward`]).

Example:

```python
from trl import GRPOConfig, GRPOTrainer
from trl_icrm.reward import ICRMReward

reward = ICRMReward("icrm-model", demonstrations_column="demonstrations")  # one list of pairs per dataset row
trainer = GRPOTrainer(model=policy, reward_funcs=[reward, my_format_reward], args=GRPOConfig(...), train_dataset=data)
```
"""

from __future__ import annotations

import copy
import logging
import math
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel
from trl.trainer.utils import pad

from .default_model import resolve_model_name_or_path
from .demonstrations import DemonstrationRenderer, EncodedQuery, MalformedDemonstrationError, validate_demonstration
from .distributed import zero3_init_disabled
from .modeling import (
    classify_suffixes,
    encode_prefix,
    icrm_settings_of,
    load_icrm_model,
    prepare_tokenizer,
    split_heads,
    unwrap_peft,
)
from .objective import confidence, response_posterior
from .overoptimization import penalized_reward


logger = logging.getLogger(__name__)

REWARD_KINDS = ("logit", "mean", "lcb", "var_penalty")


def _model_device(model) -> torch.device:
    return next(model.parameters()).device


def _pad(rows: Sequence[Sequence[int]], pad_token_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and attention mask, as TRL's reward collator pads."""
    ids = pad([torch.tensor(row, dtype=torch.long) for row in rows], padding_value=pad_token_id, padding_side="right")
    mask = pad([torch.ones(len(row), dtype=torch.long) for row in rows], padding_value=0, padding_side="right")
    return ids.to(device), mask.to(device)


class _SequenceScorer:
    """Batched scoring of token sequences with a sequence classifier, optionally reusing a shared prefix's KV cache.

    The cached path encodes each distinct prefix once with the backbone, then runs only the suffixes against a copy
    of its key-value cache, pools the last non-pad token as the classifier does and applies its head. Backbones that
    cannot take a cache fall back to the full-sequence path with a one-time warning.
    """

    def __init__(self, model, pad_token_id: int, batch_size: int = 16, use_prefix_cache: bool = True):
        self.model = model
        self.pad_token_id = pad_token_id
        self.batch_size = batch_size
        self.use_prefix_cache = use_prefix_cache
        self._cache_failed = False

    def _forward_full(self, rows: list[list[int]]) -> torch.Tensor:
        ids, mask = _pad(rows, self.pad_token_id, _model_device(self.model))
        return self.model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float()

    def _forward_cached(self, prefix: list[int], suffixes: list[list[int]]) -> torch.Tensor:
        device = _model_device(self.model)
        cache = encode_prefix(self.model, torch.tensor(prefix, device=device))
        out = []
        for start in range(0, len(suffixes), self.batch_size):
            ids, mask = _pad(suffixes[start : start + self.batch_size], self.pad_token_id, device)
            out.append(classify_suffixes(self.model, ids, mask, self.pad_token_id, copy.deepcopy(cache)).float())
        return torch.cat(out)

    @torch.inference_mode()
    def score(self, encoded: Sequence[EncodedQuery]) -> torch.Tensor:
        """Classifier outputs `(len(encoded), num_labels)` for the sequences `prefix_ids + query_ids`."""
        logits: list[torch.Tensor | None] = [None] * len(encoded)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, item in enumerate(encoded):
            groups.setdefault(tuple(item.prefix_ids), []).append(i)
        naive = []
        for prefix, members in groups.items():
            if prefix and self.use_prefix_cache and not self._cache_failed:
                try:
                    scored = self._forward_cached(list(prefix), [encoded[i].query_ids for i in members])
                except (TypeError, AttributeError, NotImplementedError, ValueError) as error:
                    self._cache_failed = True
                    logger.warning(
                        "Shared-prefix caching is not available for this model (%s); scoring full sequences.", error
                    )
                else:
                    for i, row in zip(members, scored, strict=True):
                        logits[i] = row
                    continue
            naive.extend(members)
        for start in range(0, len(naive), self.batch_size):
            members = naive[start : start + self.batch_size]
            scored = self._forward_full([encoded[i].input_ids for i in members])
            for i, row in zip(members, scored, strict=True):
                logits[i] = row
        return torch.stack(logits)  # type: ignore[arg-type]


class _RewardFunction:
    """Shared call conventions of trl-icrm's reward callables: TRL's interface, names, logging helpers."""

    __name__: str

    def _log(self, log_metric, key: str, value: float) -> None:
        if log_metric is not None:
            log_metric(f"{self.__name__}/{key}", value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.__name__!r})"


class ICRMReward(_RewardFunction):
    """
    An ICRM reward model as a TRL reward function, steered per prompt by demonstrations.

    Demonstrations come, for each prompt, from exactly one source:

    - a dataset column (`demonstrations_column`, default `"demonstrations"`): each row holds a list of
      `{"prompt", "chosen", "rejected"}` pairs (standard strings or conversational message lists);
    - a bank (`demonstration_bank`): a mapping from the value of `bank_key_column` (e.g. `"preference_id"`) to a list
      of pairs, of which `num_demonstrations` are drawn per prompt (seeded by `seed` and the prompt);
    - a fixed set (`fixed_demonstrations`) used for every prompt.

    Reward kinds (`reward_kind`): `"logit"` (r, the default: GRPO and RLOO normalize within a group), `"mean"`
    (sigmoid(r)), `"lcb"` (mean - k * sqrt(var)) and `"var_penalty"` (mean - k * var), with k = `penalty_coef` and
    the posterior of a response against a neutral reference: mean = sigmoid(r), var = mean (1 - mean) / (kappa + 1).

    Args:
        model: A trained ICRM model: folder, hub id, PEFT adapter folder, or a loaded model (then pass `tokenizer`).
        tokenizer: The model's tokenizer when `model` is a loaded model.
        reward_kind: One of `"logit"`, `"mean"`, `"lcb"`, `"var_penalty"`.
        penalty_coef: k of the uncertainty penalties.
        demonstrations_column: Dataset column of per-row demonstrations (column mode).
        demonstration_bank, bank_key_column, num_demonstrations: Bank mode.
        fixed_demonstrations: Fixed mode.
        allow_zero_shot: If `True`, a prompt with no demonstrations is scored zero-shot (K = 0) instead of raising.
        max_length: Bound of demonstrations + query; whole demonstrations are dropped to fit (default: none).
        batch_size: Sequences per forward pass.
        use_prefix_cache: Encode each distinct demonstration prefix once and score only the suffixes against it.
        seed: Seed of bank draws.
        name: The name TRL logs the reward under (default `"icrm"`).
    """

    def __init__(
        self,
        model: str | PreTrainedModel,
        tokenizer=None,
        *,
        reward_kind: str = "logit",
        penalty_coef: float = 1.0,
        demonstrations_column: str | None = "demonstrations",
        demonstration_bank: Mapping[Any, Sequence[Mapping[str, Any]]] | None = None,
        bank_key_column: str | None = None,
        num_demonstrations: int = 4,
        fixed_demonstrations: Sequence[Mapping[str, Any]] | None = None,
        allow_zero_shot: bool = False,
        max_length: int | None = None,
        batch_size: int = 16,
        use_prefix_cache: bool = True,
        seed: int = 0,
        name: str = "icrm",
        trust_remote_code: bool = False,
    ):
        if reward_kind not in REWARD_KINDS:
            raise ValueError(f"reward_kind must be one of {REWARD_KINDS}, got {reward_kind!r}.")
        if (demonstration_bank is None) != (bank_key_column is None):
            raise ValueError("Bank mode needs both `demonstration_bank` and `bank_key_column`.")
        if demonstration_bank is not None and fixed_demonstrations is not None:
            raise ValueError("Give either a demonstration bank or fixed demonstrations, not both.")
        if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
            with zero3_init_disabled():  # a whole copy per process, even while a ZeRO-3 config is active
                model, loaded_tokenizer = load_icrm_model(
                    model, trust_remote_code=trust_remote_code, allow_new_head=False
                )
            tokenizer = tokenizer or loaded_tokenizer
        elif tokenizer is None:
            raise ValueError("Pass the tokenizer along with a loaded model.")
        prepare_tokenizer(tokenizer, unwrap_peft(model))
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.settings = icrm_settings_of(unwrap_peft(model))
        self.renderer = DemonstrationRenderer(tokenizer, self.settings.template)
        self.reward_kind = reward_kind
        self.penalty_coef = penalty_coef
        self.demonstrations_column = demonstrations_column
        self.bank = {
            key: self._validated(pairs, f"bank entry {key!r}") for key, pairs in (demonstration_bank or {}).items()
        }
        self.bank_key_column = bank_key_column
        self.num_demonstrations = num_demonstrations
        self.fixed = self._validated(fixed_demonstrations, "fixed demonstrations") if fixed_demonstrations else None
        self.allow_zero_shot = allow_zero_shot
        self.max_length = max_length
        self.seed = seed
        self.scorer = _SequenceScorer(model, tokenizer.pad_token_id, batch_size, use_prefix_cache)
        self._demo_ids: dict[str, list[int]] = {}
        self.__name__ = name

    @staticmethod
    def _validated(pairs, where: str) -> list[Mapping[str, Any]]:
        if isinstance(pairs, Mapping) or isinstance(pairs, str) or not isinstance(pairs, Sequence):
            raise MalformedDemonstrationError(
                f"{where}: expected a list of demonstration pairs, got {type(pairs).__name__}."
            )
        for j, pair in enumerate(pairs):
            validate_demonstration(pair, f"{where}, demonstration {j}")
        return list(pairs)

    # Which demonstrations each completion gets
    def demonstrations_for(self, index: int, prompt: Any, columns: Mapping[str, Sequence[Any]]) -> list[Mapping]:
        """The demonstrations of completion `index` (row `index` of the batch's columns)."""
        if self.fixed is not None:
            return self.fixed
        if self.bank_key_column is not None:
            if self.bank_key_column not in columns:
                raise ValueError(
                    f"{self.__name__}: the dataset has no column {self.bank_key_column!r} to key the bank."
                )
            key = columns[self.bank_key_column][index]
            pairs = self.bank.get(key)
            if pairs is None:
                if self.allow_zero_shot:
                    return []
                raise ValueError(f"{self.__name__}: row {index}: no demonstrations in the bank for key {key!r}.")
            k = min(self.num_demonstrations, len(pairs))
            rng = np.random.default_rng([self.seed, zlib.crc32(repr((key, prompt)).encode())])
            return [pairs[j] for j in rng.choice(len(pairs), size=k, replace=False)]
        column = self.demonstrations_column
        if column is None or column not in columns:
            if self.allow_zero_shot:
                return []
            raise ValueError(
                f"{self.__name__}: the dataset has no column {column!r} of demonstrations. Add one (a list of "
                "{prompt, chosen, rejected} per row), use a bank or fixed demonstrations, or pass allow_zero_shot=True."
            )
        pairs = columns[column][index]
        if not pairs:
            if self.allow_zero_shot:
                return []
            raise ValueError(
                f"{self.__name__}: row {index} has no demonstrations in column {column!r} (pass allow_zero_shot=True "
                "to score such prompts without demonstrations)."
            )
        return self._validated(pairs, f"row {index}, column {column!r}")

    def _encode_demonstration(self, pair: Mapping[str, Any]) -> list[int]:
        key = repr((pair["prompt"], pair["chosen"], pair["rejected"]))
        if key not in self._demo_ids:
            self._demo_ids[key] = self.renderer.encode_demonstration(pair)
        return self._demo_ids[key]

    def encode(self, prompts: Sequence[Any], completions: Sequence[Any], **columns) -> list[EncodedQuery]:
        """Prefix (demonstrations) and query token ids of every completion."""
        encoded = []
        for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
            demos = [self._encode_demonstration(pair) for pair in self.demonstrations_for(i, prompt, columns)]
            query = self.renderer.encode_query(prompt, completion)
            encoded.append(self.renderer.assemble(query, demos, self.max_length, name=f"completion {i}"))
        return encoded

    # Scoring
    def posterior(self, prompts: Sequence[Any], completions: Sequence[Any], **columns):
        """Rewards r, confidence logits c and the encodings of the completions."""
        encoded = self.encode(prompts, completions, **columns)
        rewards, confidence_logits = split_heads(self.scorer.score(encoded))
        return rewards, confidence_logits, encoded

    def score_with_uncertainty(self, prompts, completions, **kwargs) -> tuple[list[float], list[float]]:
        """Posterior mean sigmoid(r) and variance of each completion against a neutral reference."""
        rewards, confidence_logits, _ = self.posterior(prompts, completions, **_columns_only(kwargs))
        mean, var = response_posterior(rewards, confidence_logits, self.settings.eps)
        return mean.tolist(), var.tolist()

    def __call__(self, prompts, completions, completion_ids=None, **kwargs) -> list[float]:
        log_metric = kwargs.get("log_metric")
        rewards, confidence_logits, encoded = self.posterior(prompts, completions, **_columns_only(kwargs))
        mean, var = response_posterior(rewards, confidence_logits, self.settings.eps)
        if self.reward_kind == "logit":
            values = rewards.tolist()
        else:  # "mean", or mean with an uncertainty penalty
            penalty = None if self.reward_kind == "mean" else self.reward_kind
            values = penalized_reward(mean.tolist(), var.tolist(), penalty, self.penalty_coef).tolist()
        self._log(log_metric, "confidence", float(confidence(confidence_logits, self.settings.eps).mean()))
        self._log(log_metric, "num_demonstrations", float(np.mean([e.num_demonstrations for e in encoded] or [0])))
        self._log(log_metric, "dropped_demonstrations", float(sum(e.num_dropped for e in encoded)))
        return [float(v) for v in values]


_TRL_CALL_KEYS = ("trainer_state", "log_extra", "log_metric", "completion_ids")


def _columns_only(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if k not in _TRL_CALL_KEYS}


class SequenceClassifierReward(_RewardFunction):
    """
    A conventional (Bradley-Terry) reward model as a TRL reward function: any `AutoModelForSequenceClassification`
    with one output, e.g. one trained by `trl.RewardTrainer` (full folder or PEFT adapter folder).

    Completions are rendered as `trl.RewardTrainer` renders them (chat template for conversational data,
    `prompt + completion + eos` otherwise), so the model scores what it was trained on.

    Args:
        model: Folder, hub id, PEFT adapter folder or loaded model (then pass `tokenizer`).
        tokenizer: The model's tokenizer when `model` is loaded.
        batch_size: Sequences per forward pass.
        name: The name TRL logs the reward under (default `"bt_reward"`).
    """

    def __init__(
        self, model, tokenizer=None, *, batch_size: int = 16, name: str = "bt_reward", trust_remote_code: bool = False
    ):
        if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
            path = resolve_model_name_or_path(model)
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
            with zero3_init_disabled():
                model = AutoModelForSequenceClassification.from_pretrained(
                    path, dtype=torch.float32, use_safetensors=True, trust_remote_code=trust_remote_code
                )
        elif tokenizer is None:
            raise ValueError("Pass the tokenizer along with a loaded model.")
        if unwrap_peft(model).config.num_labels != 1:
            raise ValueError(
                f"A conventional reward model has one output; this one has {unwrap_peft(model).config.num_labels}. For an "
                "ICRM model use `ICRMReward`."
            )
        prepare_tokenizer(tokenizer, unwrap_peft(model))
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.renderer = DemonstrationRenderer(tokenizer)
        self.scorer = _SequenceScorer(model, tokenizer.pad_token_id, batch_size, use_prefix_cache=False)
        self.__name__ = name

    def __call__(self, prompts, completions, completion_ids=None, **kwargs) -> list[float]:
        encoded = [
            EncodedQuery([], self.renderer.encode_query(prompt, completion), 0, 0)
            for prompt, completion in zip(prompts, completions, strict=True)
        ]
        scores = self.scorer.score(encoded)[:, 0]
        self._log(kwargs.get("log_metric"), "mean", float(scores.mean()) if len(scores) else math.nan)
        return [float(v) for v in scores]


def build_reward(kind: str, model_name_or_path: str | None = None, **kwargs):
    """A reward function by name: `"icrm"` ([`ICRMReward`]), `"bt"` ([`SequenceClassifierReward`]) or `"verifier"`
    (math-verify correctness, `trl_icrm.verifier.MathVerifyReward`)."""
    if kind == "verifier":
        from .verifier import MathVerifyReward

        return MathVerifyReward(**kwargs)
    if kind not in ("icrm", "bt"):
        raise ValueError(f"Unknown reward {kind!r}: choose 'icrm', 'bt' or 'verifier'.")
    if model_name_or_path is None:
        raise ValueError(f"The {kind!r} reward needs a reward model (`model_name_or_path`).")
    if kind == "icrm":
        return ICRMReward(model_name_or_path, **kwargs)
    return SequenceClassifierReward(model_name_or_path, **kwargs)

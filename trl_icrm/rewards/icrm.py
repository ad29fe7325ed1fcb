# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""[`ICRMReward`]: an ICRM reward model steered per prompt by its own demonstrations, as a reward posterior and a TRL
reward function (`GRPOTrainer` / `RLOOTrainer` `reward_funcs`, best-of-N).

It takes TRL's reward-function call `f(prompts=..., completions=..., completion_ids=..., **columns, trainer_state=...,
log_extra=..., log_metric=...)` and returns one float per completion; [`ICRMReward.score`] gives the posterior
([`~trl_icrm.rewards.RewardPosterior`]: r, the Beta mean sigmoid(r) and its variance).

Under `accelerate launch` each process scores its own completions with its own copy of the reward model: a model
given by path is loaded whole even under DeepSpeed ZeRO-3 (a partitioned copy could not be called outside an engine;
see `trl_icrm.utils.distributed`). A loaded model passed in must not be ZeRO-3 partitioned either.
`trl_icrm.load_reward` loads any saved reward model by its kind.

Example:

```python
from trl import GRPOConfig, GRPOTrainer
from trl_icrm.rewards.icrm import ICRMReward

reward = ICRMReward("icrm-model", demonstrations_column="demonstrations")  # one list of pairs per dataset row
trainer = GRPOTrainer(model=policy, reward_funcs=[reward, my_format_reward], args=GRPOConfig(...), train_dataset=data)
```
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from transformers import PreTrainedModel

from ..demonstrations import (
    DemonstrationBank,
    DemonstrationRenderer,
    EncodedQuery,
    validate_demonstrations,
)
from ..icrm.modeling import icrm_settings_of, load_icrm_model, split_heads
from ..icrm.objective import confidence, response_posterior
from .base import RewardPosterior
from .scoring import DEFAULT_PREFIX_CACHE_BYTES, SequenceScorer, TrainedRewardModel


class ICRMReward(TrainedRewardModel, load_model=load_icrm_model, settings_of=icrm_settings_of, default_name="icrm"):
    """
    An ICRM reward model as a TRL reward function, steered per prompt by demonstrations.

    Demonstrations come, for each prompt, from exactly one source:

    - a dataset column (`demonstrations_column`, default `"demonstrations"`): each row holds a list of
      `{"prompt", "chosen", "rejected"}` pairs (standard strings or conversational message lists);
    - a bank (`demonstration_bank`): a mapping from the value of `bank_key_column` (e.g. `"preference_id"`) to a list
      of pairs, of which `num_demonstrations` are drawn per prompt (seeded by `seed`, the key and the prompt) or, with
      `bank_draw="per_key"`, once per key (seeded by `seed` and the key: every prompt of a key shares one set);
    - a fixed set (`fixed_demonstrations`) used for every prompt.

    The reward (`penalty`): `None` gives r (the logit; the default: GRPO and RLOO normalize within a group), `"mean"`
    sigmoid(r), `"lcb"` mean - k * sqrt(var) and `"var_penalty"` mean - k * var, with k = `penalty_coef` and the
    posterior of a response against a neutral reference: mean = sigmoid(r), var = mean (1 - mean) / (kappa + 1).

    Args:
        model: A trained ICRM model: folder, hub id, PEFT adapter folder, or a loaded model (then pass `tokenizer`).
        tokenizer: The model's tokenizer when `model` is a loaded model.
        demonstrations_column: Dataset column of per-row demonstrations (column mode).
        demonstration_bank, bank_key_column, num_demonstrations: Bank mode (`num_demonstrations` is the K drawn from a
            key's pairs, read in bank mode only: column and fixed demonstrations are used as given).
        fixed_demonstrations: Fixed mode.
        allow_zero_shot: If `True`, a prompt with no demonstrations is scored zero-shot (K = 0) instead of raising.
        max_length: Bound of demonstrations + query; whole demonstrations are dropped to fit (default: the
            `max_length` the model was trained with, if it recorded one).
        batch_size: Sequences per forward pass.
        use_prefix_cache: Score rows as a prefix tree (demonstrations -> prompt -> completions): each distinct
            demonstration set is encoded once and its key-value cache read by every row after it, as is a prompt
            shared by several completions; only the rest is run. `False` scores every full sequence (the scores are
            the same up to float rounding, the cost is not).
        prefix_cache_bytes: Limit of the demonstration key-value caches kept across calls (least recently used
            dropped first; default 1 GiB; `0` keeps none). Valid because the reward model is frozen while it scores;
            the cache empties itself when the model's weights change. A demonstration set larger than the limit is
            encoded for each call (one warning).
        bank_draw: `"per_prompt"` (default) or `"per_key"`: how bank demonstrations are drawn (see above).
        seed: Seed of bank draws.
        max_cached_demonstrations: Most demonstrations whose token ids are kept between calls (least recently used
            ones are dropped first), so a long-running reward (e.g. a server) stays bounded.
        **common: `penalty` (`None`: r, `"mean"`, `"lcb"` or `"var_penalty"`), `penalty_coef` (k of the uncertainty
            penalties), `name` (default `"icrm"`) and `trust_remote_code`: see [`TrainedRewardModel`].
    """

    scale = "probability"

    def __init__(
        self,
        model: str | PreTrainedModel,
        tokenizer=None,
        *,
        demonstrations_column: str | None = "demonstrations",
        demonstration_bank: Mapping[Any, Sequence[Mapping[str, Any]]] | None = None,
        bank_key_column: str | None = None,
        num_demonstrations: int = 4,
        fixed_demonstrations: Sequence[Mapping[str, Any]] | None = None,
        allow_zero_shot: bool = False,
        max_length: int | None = None,
        batch_size: int = 16,
        use_prefix_cache: bool = True,
        prefix_cache_bytes: int = DEFAULT_PREFIX_CACHE_BYTES,
        bank_draw: str = "per_prompt",
        seed: int = 0,
        max_cached_demonstrations: int = 100_000,
        **common: Any,
    ):
        _check_demonstration_sources(demonstration_bank, bank_key_column, fixed_demonstrations)
        super().__init__(model, tokenizer, **common)
        self.renderer = DemonstrationRenderer(self.tokenizer, self.settings.template)
        self.demonstrations_column = demonstrations_column
        self.bank = DemonstrationBank(
            {
                key: validate_demonstrations(pairs, f"bank entry {key!r}")
                for key, pairs in (demonstration_bank or {}).items()
            }
        )
        self.bank_key_column = bank_key_column
        self.num_demonstrations = num_demonstrations
        self.fixed = (
            validate_demonstrations(fixed_demonstrations, "fixed demonstrations") if fixed_demonstrations else None
        )
        self.allow_zero_shot = allow_zero_shot
        self.max_length = max_length if max_length is not None else self.settings.max_length
        self.seed = seed
        if bank_draw not in ("per_prompt", "per_key"):
            raise ValueError(f"bank_draw must be 'per_prompt' or 'per_key', got {bank_draw!r}.")
        self.bank_draw = bank_draw
        self.scorer = SequenceScorer(
            self.model, self.tokenizer.pad_token_id, batch_size, use_prefix_cache, prefix_cache_bytes
        )
        self._demo_ids: OrderedDict[str, list[int]] = OrderedDict()
        self.max_cached_demonstrations = max_cached_demonstrations

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
            if key not in self.bank:
                if self.allow_zero_shot:
                    return []
                raise ValueError(f"{self.__name__}: row {index}: no demonstrations in the bank for key {key!r}.")
            per_key = self.bank_draw == "per_key"
            return self.bank.draw_for_key(key, self.num_demonstrations, self.seed, prompt, per_key=per_key)
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
        return validate_demonstrations(pairs, f"row {index}, column {column!r}")

    def _encode_demonstration(self, pair: Mapping[str, Any]) -> list[int]:
        key = repr((pair["prompt"], pair["chosen"], pair["rejected"]))
        if key in self._demo_ids:
            self._demo_ids.move_to_end(key)
            return self._demo_ids[key]
        ids = self._demo_ids[key] = self.renderer.encode_demonstration(pair)
        while len(self._demo_ids) > self.max_cached_demonstrations:  # least recently used first
            self._demo_ids.popitem(last=False)
        return ids

    def encode(self, prompts: Sequence[Any], completions: Sequence[Any], **columns) -> list[EncodedQuery]:
        """Prefix (demonstrations) and query token ids of every completion."""
        encoded = []
        for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
            demos = [self._encode_demonstration(pair) for pair in self.demonstrations_for(i, prompt, columns)]
            query = self.renderer.encode_query(prompt, completion)
            encoded.append(self.renderer.assemble(query, demos, self.max_length, name=f"completion {i}"))
        return encoded

    # Scoring
    def clear_cache(self) -> None:
        """Drop the demonstration key-value caches kept across calls (they are also dropped by themselves when the
        model's weights change)."""
        self.scorer.clear_cache()

    def cache_info(self) -> dict[str, int]:
        """Entries, bytes and limit of the cross-call demonstration cache, with its hits, misses and evictions."""
        return self.scorer.prefix_cache.info()

    def logits(self, prompts: Sequence[Any], completions: Sequence[Any], **columns):
        """Rewards r, confidence logits c and the encodings of the completions."""
        encoded = self.encode(prompts, completions, **columns)
        rewards, confidence_logits = split_heads(self.scorer.score(encoded))
        return rewards, confidence_logits, encoded

    def score(self, prompts: Sequence[Any], completions: Sequence[Any], **columns) -> RewardPosterior:
        """r, and the Beta posterior of each completion against a neutral reference (mean sigmoid(r), its variance),
        with the confidence kappa and the demonstrations used as extras."""
        rewards, confidence_logits, encoded = self.logits(prompts, completions, **columns)
        mean, variance = response_posterior(rewards, confidence_logits, self.settings.eps)
        extras = {
            "confidence": _numpy(confidence(confidence_logits, self.settings.eps)),
            "num_demonstrations": np.array([e.num_demonstrations for e in encoded], dtype=float),
            "dropped_demonstrations": np.array([e.num_dropped for e in encoded], dtype=float),
        }
        return RewardPosterior(_numpy(rewards), _numpy(mean), _numpy(variance), self.scale, extras)


def _numpy(tensor) -> np.ndarray:
    return tensor.detach().cpu().double().numpy()


def _check_demonstration_sources(demonstration_bank, bank_key_column, fixed_demonstrations) -> None:
    if (demonstration_bank is None) != (bank_key_column is None):
        raise ValueError("Bank mode needs both `demonstration_bank` and `bank_key_column`.")
    if demonstration_bank is not None and fixed_demonstrations is not None:
        raise ValueError("Give either a demonstration bank or fixed demonstrations, not both.")


__all__ = ["ICRMReward"]

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Best-of-N (BoN) sampling with reward models: [`BestOfNSampler`] generates n candidates per prompt from a policy,
scores them with reward functions and keeps the best one.

Best-of-n samples n responses from the reference policy and keeps the one the reward model likes best. Its KL to the
reference policy is `kl_bon(n) = log n - (n - 1) / n`. The pure math (`kl_bon`, the exact order-statistics
estimator, bootstrap intervals, curves) lives in `trl_icrm.best_of_n.estimators`; the uncertainty penalties and
ensembles in `trl_icrm.rewards.penalties`.

Writing curves to JSON, CSV and PNG and the end-to-end over-optimization experiment live in
`trl_icrm.experiments.best_of_n`.

Reward functions follow TRL's reward-function interface, `f(prompts, completions, completion_ids=None, **kwargs) ->
list[float | None]`, where `kwargs` carries the dataset's extra columns with one value per completion. A reward
function may also report its uncertainty: every trl-icrm reward model with a posterior variance
([`~trl_icrm.rewards.RewardModel`]) does, and so does any function with a `score_with_uncertainty(prompts,
completions, **kwargs) -> (means, variances)` method ([`~trl_icrm.rewards.SupportsUncertainty`]; ICRM's Beta
posterior gives `mean = sigmoid(r)` and `var = mean * (1 - mean) / (kappa + 1)`, see `docs/method.md`). The
uncertainty penalties need it.

Missing scores: a reward function may return `None` (TRL's "not applicable") for a completion; a NaN or an infinity
(a fault of the model, not a score) is logged as a warning and counts as missing. Such a score is stored as NaN; an ensemble aggregates over the members that did score the completion (as TRL's GRPO sums rewards
ignoring NaN), and a completion with no score at all ranks below every scored completion (NaN is treated as `-inf` for
selection). Nothing raises deep inside: malformed outputs (wrong length, non-numbers) raise a `ValueError` naming the
reward function.

Example:

```python
>>> from trl_icrm.best_of_n import BestOfNSampler, kl_bon
>>> def brevity(prompts, completions, **kwargs):
...     return [-float(len(c)) for c in completions]
>>> sampler = BestOfNSampler(reward_funcs=brevity, n=4, max_new_tokens=32)  # the embedded model by default
>>> outputs = sampler.sample(["Name a color."])
>>> outputs[0].completion, outputs[0].rewards["brevity"], outputs[0].kl_bon == kl_bon(4)
```
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, PreTrainedModel

from .._trl_compat import cache_argument
from ..rewards.base import SupportsUncertainty, supports_uncertainty
from ..rewards.penalties import ENSEMBLE_METHODS, check_penalty, combine_rewards
from ..utils.default_model import DEFAULT_MODEL, resolve_model_name_or_path
from ..utils.generation import encode_prompts
from .estimators import check_n, kl_bon


logger = logging.getLogger(__name__)

RewardFunc = Callable[..., Sequence[float | None]]
"""A reward function with TRL's interface: `f(prompts, completions, completion_ids=None, **kwargs)`."""


# ---------------------------------------------------------------------------------------------------------------------
# Pure math
# ---------------------------------------------------------------------------------------------------------------------


def reward_func_name(reward_func: Callable) -> str:
    """Display name of a reward function, as TRL derives it (`__name__`, else the class name)."""
    while hasattr(reward_func, "func") and hasattr(reward_func, "args"):  # functools.partial
        reward_func = reward_func.func
    return getattr(reward_func, "__name__", type(reward_func).__name__)


def _resolve(output: Any) -> Any:
    if inspect.isawaitable(output):  # async reward functions (e.g. LLM judges), as TRL supports them
        return asyncio.run(_await(output))
    return output


async def _await(awaitable):
    return await awaitable


def _to_floats(values: Any, expected: int, what: str) -> np.ndarray:
    if values is None or isinstance(values, (str, bytes, Mapping)):
        raise ValueError(f"{what} must return a list of {expected} numbers or None, got {type(values).__name__}.")
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().tolist()
    try:
        values = list(values)
    except TypeError as error:
        raise ValueError(f"{what} must return a list of {expected} numbers or None, got {values!r}.") from error
    if len(values) != expected:
        raise ValueError(
            f"{what} returned {len(values)} values, but {expected} were expected (one per prompt-completion pair)."
        )
    out = np.empty(expected, dtype=float)
    for i, value in enumerate(values):
        if value is None:
            out[i] = np.nan
            continue
        try:
            out[i] = float(value)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{what} returned a non-numeric value {value!r} at position {i}.") from error
    bad = [i for i, value in enumerate(values) if value is not None and not np.isfinite(out[i])]
    if bad:  # a model's NaN or infinity is a fault, not TRL's "not applicable" None: said, then left unscored
        logger.warning(
            "%s returned %d non-finite value(s) (NaN or infinity) at positions %s; those candidates count as "
            "unscored (None).",
            what,
            len(bad),
            bad[:8],
        )
        out[bad] = np.nan
    return out


def _noop_log(*args: Any, **kwargs: Any) -> None:
    """Stands in for the trainer's `log_extra` / `log_metric` outside a trainer."""


def _reward_kwargs(columns: Mapping[str, Sequence[Any]], expected: int) -> dict[str, Any]:
    for key, value in columns.items():
        if len(value) != expected:
            raise ValueError(f"Column {key!r} has {len(value)} values, but {expected} were expected.")
    return {**{key: list(value) for key, value in columns.items()}, "log_extra": _noop_log, "log_metric": _noop_log}


def score_completions(
    reward_func: RewardFunc,
    prompts: Sequence[Any],
    completions: Sequence[Any],
    completion_ids: Sequence[Sequence[int]] | None = None,
    **columns: Sequence[Any],
) -> np.ndarray:
    """Call a TRL reward function on prompt-completion pairs; `None` scores become NaN.

    Args:
        reward_func: A reward function with TRL's interface (sync or async).
        prompts: One prompt per completion.
        completions: The completions.
        completion_ids: Token ids of the completions, passed through.
        **columns: Extra dataset columns, one value per completion (e.g. `solution`).

    Returns:
        Float array of shape `(len(completions),)`.

    Example:

    ```python
    >>> from trl_icrm.best_of_n import score_completions
    >>> def length(prompts, completions, **kwargs):
    ...     return [len(c) or None for c in completions]
    >>> score_completions(length, ["", ""], ["ab", ""])
    array([ 2., nan])
    ```
    """
    if len(prompts) != len(completions):
        raise ValueError(f"Got {len(prompts)} prompts for {len(completions)} completions.")
    output = reward_func(
        prompts=list(prompts),
        completions=list(completions),
        completion_ids=None if completion_ids is None else list(completion_ids),
        **_reward_kwargs(columns, len(completions)),
    )
    return _to_floats(_resolve(output), len(completions), f"The reward function {reward_func_name(reward_func)!r}")


def score_completions_with_uncertainty(
    reward_func: SupportsUncertainty,
    prompts: Sequence[Any],
    completions: Sequence[Any],
    completion_ids: Sequence[Sequence[int]] | None = None,
    **columns: Sequence[Any],
) -> tuple[np.ndarray, np.ndarray]:
    """Means and variances from a reward function implementing [`SupportsUncertainty`]; `None` becomes NaN."""
    name = reward_func_name(reward_func)
    if not supports_uncertainty(reward_func):
        raise ValueError(
            f"The reward function {name!r} has no `score_with_uncertainty` method, which uncertainty penalties need "
            "(see `trl_icrm.rewards.SupportsUncertainty`)."
        )
    if len(prompts) != len(completions):
        raise ValueError(f"Got {len(prompts)} prompts for {len(completions)} completions.")
    kwargs = _reward_kwargs(columns, len(completions))
    if completion_ids is not None:
        kwargs["completion_ids"] = list(completion_ids)
    output = _resolve(reward_func.score_with_uncertainty(list(prompts), list(completions), **kwargs))
    if not isinstance(output, (tuple, list)) or len(output) != 2:
        raise ValueError(f"{name!r}.score_with_uncertainty must return a pair (means, variances).")
    means = _to_floats(output[0], len(completions), f"{name!r}.score_with_uncertainty (means)")
    variances = _to_floats(output[1], len(completions), f"{name!r}.score_with_uncertainty (variances)")
    if np.any(variances < 0):
        raise ValueError(f"{name!r}.score_with_uncertainty returned negative variances.")
    return means, variances


def _unique_names(reward_funcs: Sequence[Callable]) -> list[str]:
    names, seen = [], {}
    for func in reward_funcs:
        name = reward_func_name(func)
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}_{seen[name] - 1}")
    return names


def score_candidates(
    reward_funcs: RewardFunc | Sequence[RewardFunc],
    prompts: Sequence[Any],
    completions: Sequence[Sequence[Any]],
    completion_ids: Sequence[Sequence[Sequence[int]]] | None = None,
    with_uncertainty: bool = False,
    names: Sequence[str] | None = None,
    **columns: Sequence[Any],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Score k candidates per prompt with each reward function, in one call per function.

    Args:
        reward_funcs: One reward function or several.
        prompts: The prompts.
        completions: `completions[i]` holds the k candidates of prompt i (the same k for every prompt).
        completion_ids: Their token ids, passed through.
        with_uncertainty: Call `score_with_uncertainty` (every function must implement [`SupportsUncertainty`]) and
            return variances too.
        names: Names of the functions in the result (default: their `__name__`, made unique).
        **columns: Extra columns with one value per prompt, repeated for each of its candidates as in TRL.

    Returns:
        `(scores, variances)`: `{name: array (num_prompts, k)}` each; NaN where a function returned None; `variances`
        is empty unless `with_uncertainty`.

    Example:

    ```python
    >>> from trl_icrm.best_of_n import score_candidates
    >>> def length(prompts, completions, **kwargs):
    ...     return [float(len(c)) for c in completions]
    >>> score_candidates(length, ["p1", "p2"], [["a", "bb"], ["ccc", ""]])[0]["length"].tolist()
    [[1.0, 2.0], [3.0, 0.0]]
    ```
    """
    reward_funcs = list(reward_funcs) if isinstance(reward_funcs, (list, tuple)) else [reward_funcs]
    names = _unique_names(reward_funcs) if names is None else list(names)
    if len(names) != len(reward_funcs):
        raise ValueError(f"Got {len(names)} names for {len(reward_funcs)} reward functions.")
    if prompts is None or isinstance(prompts, (str, Mapping)):
        raise ValueError("prompts must be a list of prompts.")
    prompts = list(prompts)
    if not prompts:
        raise ValueError("prompts is empty: there is nothing to score.")
    if len(completions) != len(prompts):
        raise ValueError(f"Got {len(completions)} candidate lists for {len(prompts)} prompts.")
    sizes = {len(candidates) for candidates in completions}
    if len(sizes) != 1 or min(sizes) < 1:
        raise ValueError(f"Every prompt needs the same number (>= 1) of candidates, got {sorted(sizes)}.")
    _check_columns(columns, len(prompts))
    k = sizes.pop()
    flat_prompts = [p for p in prompts for _ in range(k)]
    flat_completions = [c for candidates in completions for c in candidates]
    flat_ids = None if completion_ids is None else [list(ids) for row in completion_ids for ids in row]
    flat_columns = {key: [v for v in value for _ in range(k)] for key, value in columns.items()}
    scores, variances = {}, {}
    for name, func in zip(names, reward_funcs, strict=True):
        if with_uncertainty:
            mean, var = score_completions_with_uncertainty(
                func, flat_prompts, flat_completions, flat_ids, **flat_columns
            )
            scores[name], variances[name] = mean.reshape(len(prompts), k), var.reshape(len(prompts), k)
        else:
            scores[name] = score_completions(func, flat_prompts, flat_completions, flat_ids, **flat_columns)
            scores[name] = scores[name].reshape(len(prompts), k)
    return scores, variances


def _check_columns(columns: Mapping[str, Any], num_prompts: int) -> None:
    for key, value in columns.items():
        if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__len__") or len(value) != num_prompts:
            raise ValueError(f"Column {key!r} must hold one value per prompt ({num_prompts}).")


# ---------------------------------------------------------------------------------------------------------------------
# Sampler
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class BestOfNOutput:
    """Result of best-of-n for one prompt.

    Attributes:
        prompt: The prompt (string or list of chat messages).
        completion: The selected completion (string, or `[{"role": "assistant", "content": ...}]` for chat prompts).
        index: Position of the selected completion among `completions`.
        completions: All n candidates, in sampling order.
        completion_ids: Token ids of each candidate (up to and including the first end-of-sequence token).
        rewards: `{reward name: n scores}` (NaN where a reward returned None); with a penalty, the posterior means.
        variances: `{reward name: n variances}` when a penalty is used, else empty.
        scores: The selection score of each candidate (after penalty and ensemble aggregation).
        kl_bon: `kl_bon(n)`.
    """

    prompt: Any
    completion: Any
    index: int
    completions: list[Any]
    completion_ids: list[list[int]]
    rewards: dict[str, list[float]]
    variances: dict[str, list[float]] = field(default_factory=dict)
    scores: list[float] = field(default_factory=list)
    kl_bon: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_conversational(prompt: Any) -> bool:
    if not isinstance(prompt, (list, tuple)) or len(prompt) == 0:
        return False
    return all(isinstance(message, Mapping) and "role" in message for message in prompt)


def _check_reward_funcs(reward_funcs: RewardFunc | Sequence[RewardFunc] | None) -> list[RewardFunc]:
    """The reward functions as a non-empty list of callables (not bare `torch.nn.Module` reward models)."""
    if reward_funcs is None:
        raise ValueError("BestOfNSampler needs at least one reward function.")
    reward_funcs = list(reward_funcs) if isinstance(reward_funcs, (list, tuple)) else [reward_funcs]
    if not reward_funcs:
        raise ValueError("BestOfNSampler needs at least one reward function.")
    for func in reward_funcs:
        if isinstance(func, torch.nn.Module) or not callable(func):
            raise ValueError(
                f"Reward functions must be callables with TRL's reward-function interface, got "
                f"{type(func).__name__}; wrap a reward model in such a callable (see trl_icrm.rewards.icrm)."
            )
    return reward_funcs


def _check_num_candidates(n: int) -> int:
    """`n` as an `int`, checked to be a whole number of candidates >= 1."""
    check_n(n)
    if int(n) != n:
        raise ValueError(f"n must be an integer, got {n}.")
    return int(n)


def _check_selection_rule(
    names: Sequence[str], reward_funcs: Sequence[RewardFunc], penalty: str | None, ensemble: str
) -> None:
    """Checks the penalty and ensemble names, and that a penalty has the uncertainties it needs."""
    check_penalty(penalty)
    if penalty is not None:
        missing = [name for name, func in zip(names, reward_funcs, strict=True) if not supports_uncertainty(func)]
        if missing:
            raise ValueError(
                f"penalty={penalty!r} needs reward functions with a `score_with_uncertainty` method; {missing} "
                "have none (see trl_icrm.rewards.SupportsUncertainty)."
            )
    if ensemble not in ENSEMBLE_METHODS:
        raise ValueError(f"Unknown ensemble method {ensemble!r}; expected one of {ENSEMBLE_METHODS}.")


def _load_policy(
    model: str | os.PathLike | PreTrainedModel,
    model_init_kwargs: dict[str, Any] | None,
    device: str | torch.device | None,
) -> tuple[PreTrainedModel, str]:
    """The policy and the path its tokenizer loads from; a path or hub id is loaded and moved to `device`."""
    if isinstance(model, (str, os.PathLike)):
        path = resolve_model_name_or_path(model)
        kwargs = {"dtype": torch.float32} if model_init_kwargs is None else dict(model_init_kwargs)
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        device = device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
        model.to(device)
    else:
        path = resolve_model_name_or_path(model.name_or_path)
    return model, path


class BestOfNSampler:
    """Sample n candidates per prompt from a policy, score them with reward functions and keep the best.

    Generation is batched (`num_return_sequences`) and seeded: the same seed, prompts and settings give the same
    candidates, and the global torch RNG state is left untouched. Candidates are scored by every reward function; the
    selection score is [`combine_rewards`] of those scores (uncertainty penalty per member, then ensemble aggregation),
    and the selected candidate is the first one with the highest selection score. Unscored candidates (None/NaN) rank
    below every scored one; if a prompt has no scored candidate at all, its first candidate is returned (a uniformly
    random one, since candidates are i.i.d.) and a warning is logged.

    Args:
        model: The policy: a model, or a local path / hub id / [`DEFAULT_MODEL`] (the embedded model, the default).
        reward_funcs: One reward function or a list (an ensemble), with TRL's interface.
        processing_class: Tokenizer of the policy (default: loaded from `model`'s path).
        n: Candidates per prompt.
        generation_config: Generation settings; when given, `max_new_tokens`, `temperature`, `top_p` and `top_k` are
            ignored. It must sample (`do_sample=True`).
        max_new_tokens: Maximum tokens per candidate.
        temperature: Sampling temperature (1.0 with `top_p=1.0, top_k=0` samples the reference policy itself, the
            setting `kl_bon` assumes).
        top_p: Nucleus sampling threshold.
        top_k: Top-k filtering (0: off).
        penalty: Uncertainty penalty: `None`, `"lcb"` (mean - k * sqrt(var)) or `"var_penalty"` (mean - k * var).
            Every reward function must then implement [`SupportsUncertainty`].
        penalty_coef: k of the penalty.
        ensemble: Aggregation over several reward functions: `"mean"`, `"worst_case"`, `"mean_minus_std"` or
            `"uncertainty_weighted"` (mean - k var).
        ensemble_coef: k of `"mean_minus_std"` and `"uncertainty_weighted"`.
        generation_batch_size: Most sequences per `generate` call (prompts per call = this // n, at least 1).
        seed: Seed of the sampling.
        model_init_kwargs: Keyword arguments of `AutoModelForCausalLM.from_pretrained` when `model` is a path
            (default: `{"dtype": torch.float32}`).
        device: Device for a model loaded from a path (default: CUDA if available, else CPU).
        progress_bar: Show a tqdm progress bar over prompts while generating.
        share_prompt_cache: Encode each prompt once and share its KV cache among its n candidates instead of
            encoding it n times (same samples up to floating-point rounding, much less compute for long prompts).

    Example:

    ```python
    >>> from trl_icrm.best_of_n import BestOfNSampler
    >>> def length(prompts, completions, **kwargs):
    ...     return [float(len(c)) for c in completions]
    >>> sampler = BestOfNSampler(reward_funcs=length, n=4, max_new_tokens=16, seed=0)
    >>> [output] = sampler.sample(["Say something."])
    >>> output.index == max(range(4), key=lambda i: output.rewards["length"][i])
    True
    ```
    """

    def __init__(
        self,
        model: str | os.PathLike | PreTrainedModel = DEFAULT_MODEL,
        reward_funcs: RewardFunc | Sequence[RewardFunc] | None = None,
        processing_class: Any | None = None,
        n: int = 4,
        generation_config: GenerationConfig | None = None,
        *,
        max_new_tokens: int = 128,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        penalty: str | None = None,
        penalty_coef: float = 1.0,
        ensemble: str = "mean",
        ensemble_coef: float = 1.0,
        generation_batch_size: int = 64,
        seed: int = 0,
        model_init_kwargs: dict[str, Any] | None = None,
        device: str | torch.device | None = None,
        progress_bar: bool = False,
        share_prompt_cache: bool = True,
    ) -> None:
        self.reward_funcs = _check_reward_funcs(reward_funcs)
        self.reward_names = _unique_names(self.reward_funcs)
        self.n = _check_num_candidates(n)
        _check_selection_rule(self.reward_names, self.reward_funcs, penalty, ensemble)
        if generation_batch_size < 1:
            raise ValueError(f"generation_batch_size must be >= 1, got {generation_batch_size}.")
        self.penalty, self.penalty_coef = penalty, penalty_coef
        self.ensemble, self.ensemble_coef = ensemble, ensemble_coef
        self.generation_batch_size = generation_batch_size
        self.seed = seed
        self.progress_bar = progress_bar

        model, path = _load_policy(model, model_init_kwargs, device)
        self.model = model.eval()
        if processing_class is None:
            processing_class = AutoTokenizer.from_pretrained(path)
        self.processing_class = processing_class
        self.generation_config = self._build_generation_config(
            generation_config, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k
        )
        self.share_prompt_cache = share_prompt_cache
        self._cache_kwarg = cache_argument(self.model)
        eos = self.generation_config.eos_token_id
        self.eos_token_ids = set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}

    def _build_generation_config(
        self,
        generation_config: GenerationConfig | None,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        top_k: int,
    ) -> GenerationConfig:
        """A sampling copy of `generation_config` (or one built from the settings) with pad and eos tokens filled in."""
        processing_class = self.processing_class
        pad_token_id = processing_class.pad_token_id
        if pad_token_id is None:
            pad_token_id = processing_class.eos_token_id
        if generation_config is None:
            generation_config = GenerationConfig(
                do_sample=True, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k
            )
        else:
            generation_config = GenerationConfig.from_dict(generation_config.to_dict())
        if not generation_config.do_sample and self.n > 1:
            raise ValueError("Best-of-n needs sampling: set do_sample=True in the generation config.")
        if generation_config.pad_token_id is None:
            generation_config.pad_token_id = pad_token_id
        if generation_config.eos_token_id is None:
            generation_config.eos_token_id = self.model.generation_config.eos_token_id or processing_class.eos_token_id
        return generation_config

    @property
    def kl_bon(self) -> float:
        """`kl_bon(n)` of this sampler."""
        return float(kl_bon(self.n))

    def _prompt_texts(self, prompts: Sequence[Any]) -> tuple[list[str], bool]:
        conversational = _is_conversational(prompts[0])
        if any(_is_conversational(p) != conversational for p in prompts):
            raise ValueError("Prompts must all be strings or all be lists of chat messages, not a mix.")
        if not conversational:
            if not all(isinstance(p, str) for p in prompts):
                raise ValueError("Prompts must be strings or lists of chat messages ({'role': ..., 'content': ...}).")
            return list(prompts), False
        texts = [
            self.processing_class.apply_chat_template(list(p), add_generation_prompt=True, tokenize=False)
            for p in prompts
        ]
        return texts, True

    def generate(self, prompts: Sequence[Any]) -> tuple[list[list[Any]], list[list[list[int]]]]:
        """Sample `n` completions per prompt.

        Args:
            prompts: Strings, or lists of chat messages (rendered with the tokenizer's chat template and
                `add_generation_prompt=True`).

        Returns:
            `(completions, completion_ids)`, each a list over prompts of n items; completions are strings, or
            `[{"role": "assistant", "content": ...}]` for chat prompts.
        """
        prompts = self._check_prompts(prompts)
        texts, conversational = self._prompt_texts(prompts)
        per_call = max(1, self.generation_batch_size // self.n)
        chunk = min(self.n, self.generation_batch_size)  # candidates of one prompt per call
        configs = {}
        for num in {chunk, self.n % chunk or chunk}:
            configs[num] = copy.deepcopy(self.generation_config)
            configs[num].num_return_sequences = num
        self._single_config = copy.deepcopy(self.generation_config)
        self._single_config.num_return_sequences = 1
        completions: list[list[Any]] = [[] for _ in prompts]
        completion_ids: list[list[list[int]]] = [[] for _ in prompts]
        device = self.model.device
        devices = [device] if device.type == "cuda" else []
        progress = tqdm(
            total=len(texts), unit="prompt", desc=f"Sampling {self.n} per prompt", disable=not self.progress_bar
        )
        with progress, torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(self.seed)
            for start in range(0, len(texts), per_call):
                batch = encode_prompts(self.processing_class, texts[start : start + per_call], conversational, device)
                prompt_length = batch["input_ids"].shape[1]
                prefix = self._prefill(batch) if self.share_prompt_cache and self.n > 1 else None
                for done in range(0, self.n, chunk):
                    num = min(chunk, self.n - done)
                    if prefix is None:
                        output = self.model.generate(**batch, generation_config=configs[num])
                    else:
                        output = self._generate_from_prefix(batch, prefix, num, last=done + num >= self.n)
                    new_tokens = output[:, prompt_length:].tolist()
                    for row, ids in enumerate(new_tokens):
                        ids = self._truncate(ids)
                        text = self.processing_class.decode(ids, skip_special_tokens=True)
                        index = start + row // num
                        completion_ids[index].append(ids)
                        completions[index].append([{"role": "assistant", "content": text}] if conversational else text)
                progress.update(len(texts[start : start + per_call]))
        return completions, completion_ids

    def _prefill(self, batch: Mapping[str, torch.Tensor]) -> Any | None:
        """KV cache of every prompt but its last token, computed once and shared by the prompt's n candidates.

        Without it, `generate(num_return_sequences=n)` encodes each prompt n times; for a 100-token prompt and short
        answers that is a large share of the compute. Returns `None` (plain generation) when the model's forward takes
        no cache argument, its cache cannot be repeated along the batch, or the prompts are a single token.
        """
        if self._cache_kwarg is None or batch["input_ids"].shape[1] < 2:
            return None
        mask = batch["attention_mask"][:, :-1]
        positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)  # as generate computes them
        output = self.model(
            input_ids=batch["input_ids"][:, :-1], attention_mask=mask, position_ids=positions, use_cache=True
        )
        cache = output.get(self._cache_kwarg)
        return cache if hasattr(cache, "batch_repeat_interleave") else None

    def _generate_from_prefix(
        self, batch: Mapping[str, torch.Tensor], prefix: Any, num: int, last: bool
    ) -> torch.Tensor:
        """Generate `num` candidates per prompt, continuing from the shared prompt cache (repeated `num` times)."""
        cache = prefix if last else copy.deepcopy(prefix)  # the last chunk may consume the prefix itself
        cache.batch_repeat_interleave(num)
        return self.model.generate(
            input_ids=batch["input_ids"].repeat_interleave(num, dim=0),
            attention_mask=batch["attention_mask"].repeat_interleave(num, dim=0),
            generation_config=self._single_config,
            **{self._cache_kwarg: cache},
        )

    def _truncate(self, ids: list[int]) -> list[int]:
        for position, token in enumerate(ids):
            if token in self.eos_token_ids:
                return ids[: position + 1]
        return ids

    @staticmethod
    def _check_prompts(prompts: Any) -> list[Any]:
        if prompts is None or isinstance(prompts, (str, Mapping)):
            raise ValueError("prompts must be a list of prompts (wrap a single prompt in a list).")
        prompts = list(prompts)
        if not prompts:
            raise ValueError("prompts is empty: best-of-n needs at least one prompt.")
        if _is_conversational(prompts):
            raise ValueError("prompts looks like one conversation; pass a list of prompts (wrap it in a list).")
        return prompts

    def score(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Sequence[Any]],
        completion_ids: Sequence[Sequence[Sequence[int]]] | None = None,
        **columns: Sequence[Any],
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
        """Score `completions[i][j]` (the j-th candidate of prompt i) with every reward function.

        Columns hold one value per prompt and are repeated for each of its candidates, as in TRL.

        Returns:
            `(rewards, variances, selection_scores)`: `{name: (num_prompts, n)}` scores (means with a penalty),
            `{name: (num_prompts, n)}` variances (empty without a penalty) and the `(num_prompts, n)` selection scores.
        """
        rewards, variances = score_candidates(
            self.reward_funcs,
            prompts,
            completions,
            completion_ids,
            with_uncertainty=self.penalty is not None,
            names=self.reward_names,
            **columns,
        )
        means = np.stack([rewards[name] for name in self.reward_names])
        var = np.stack([variances[name] for name in self.reward_names]) if variances else None
        selection = combine_rewards(means, var, self.penalty, self.penalty_coef, self.ensemble, self.ensemble_coef)
        return rewards, variances, selection

    def sample(self, prompts: Sequence[Any], **columns: Sequence[Any]) -> list[BestOfNOutput]:
        """Generate n candidates per prompt, score them and select the best.

        Args:
            prompts: Strings or lists of chat messages.
            **columns: Extra dataset columns with one value per prompt (e.g. `solution`), passed to the reward
                functions repeated for each of the prompt's n candidates, as in TRL.

        Returns:
            One [`BestOfNOutput`] per prompt.
        """
        prompts = self._check_prompts(prompts)
        _check_columns(columns, len(prompts))
        completions, completion_ids = self.generate(prompts)
        return self.select(prompts, completions, completion_ids, **columns)

    def select(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Sequence[Any]],
        completion_ids: Sequence[Sequence[Sequence[int]]] | None = None,
        **columns: Sequence[Any],
    ) -> list[BestOfNOutput]:
        """Score given candidates (e.g. from [`~BestOfNSampler.generate`]) and select the best of each prompt.

        Re-selecting one set of candidates under other penalties or ensembles costs no generation.

        Args:
            prompts: The prompts.
            completions: `completions[i]` holds the candidates of prompt i (the same number for every prompt).
            completion_ids: Their token ids, passed to the reward functions.
            **columns: Extra dataset columns with one value per prompt.

        Returns:
            One [`BestOfNOutput`] per prompt.
        """
        prompts = self._check_prompts(prompts)
        rewards, variances, selection = self.score(prompts, completions, completion_ids, **columns)
        num_candidates = selection.shape[1]
        outputs = []
        for i, prompt in enumerate(prompts):
            ranked = np.where(np.isnan(selection[i]), -np.inf, selection[i])
            if np.isnan(selection[i]).all():
                logger.warning("No reward function scored a candidate of prompt %d; returning its first candidate.", i)
            index = int(np.argmax(ranked))
            outputs.append(
                BestOfNOutput(
                    prompt=prompt,
                    completion=completions[i][index],
                    index=index,
                    completions=list(completions[i]),
                    completion_ids=[] if completion_ids is None else [list(ids) for ids in completion_ids[i]],
                    rewards={name: value[i].tolist() for name, value in rewards.items()},
                    variances={name: value[i].tolist() for name, value in variances.items()},
                    scores=selection[i].tolist(),
                    kl_bon=float(kl_bon(num_candidates)),
                )
            )
        return outputs

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The two-headed ICRM reward model: loading, the settings saved in its config, and its heads.

An ICRM model is any backbone that `AutoModelForSequenceClassification` supports, with `num_labels=2`: output 0 is the
preference-mean head (the BT reward r of the response given the demonstrations), output 1 the confidence head (its
softplus plus eps is the evidence kappa). The ICRM settings (prior, `kl_coef`, eps, demonstration template) live in
`config.icrm`, so `from_pretrained` on a saved folder restores a model that scores as it did in training. A PEFT
adapter folder carries the same settings in its saved base config.

Example:

```python
>>> from trl_icrm.modeling import load_icrm_model
>>> model, tokenizer = load_icrm_model("embedded:SmolLM2-135M-Instruct")  # a fresh (untrained) ICRM head
>>> model.config.num_labels, sorted(model.config.icrm)
(2, ['eps', 'kl_coef', 'prior_alpha', 'prior_beta', 'template'])
```
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from ._trl_compat import cache_argument, layer_types_and_windows, pad
from .demonstrations import DemonstrationTemplate
from .utils.default_model import resolve_model_name_or_path
from .utils.io import check_model_folder


ICRM_LABELS = {0: "reward", 1: "confidence"}

LORA_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "gate_proj"]
"""The LoRA target modules of the recipes and examples: every linear layer of a Llama-style block (the embedded
SmolLM2, Qwen, Llama). Other architectures can pass `target_modules="all-linear"`."""


@dataclass
class ICRMSettings:
    """The ICRM settings a model is trained and scored with, stored in `config.icrm`."""

    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    kl_coef: float = 0.1
    eps: float = 1e-3
    template: DemonstrationTemplate = field(default_factory=DemonstrationTemplate)
    max_length: int | None = field(default=None, compare=False)
    """The `max_length` the model was trained with (demonstrations + query); scorers default to it. It does not change
    what the model computes, so models with other values compare equal."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "prior_alpha": self.prior_alpha,
            "prior_beta": self.prior_beta,
            "kl_coef": self.kl_coef,
            "eps": self.eps,
            "template": self.template.to_dict(),
            "max_length": self.max_length,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ICRMSettings:
        if not isinstance(values, Mapping):
            raise ValueError(
                f"The `icrm` settings of this model config are not an object of settings (got "
                f"{type(values).__name__} {str(values)[:60]}); the saved model is damaged."
            )
        values = dict(values)
        template = DemonstrationTemplate.from_dict(values.pop("template", None))
        return cls(template=template, **values)

    @classmethod
    def from_config(cls, config) -> ICRMSettings:
        """Settings saved in a model config; raises if the config is not an ICRM model's."""
        values = getattr(config, "icrm", None)
        if values is None:
            raise ValueError(
                f"This model config has no `icrm` settings: it is {describe_model_kind(config)}, not an ICRM reward "
                "model (train one with `ICRMRewardTrainer`, or use `load_icrm_model(..., settings=ICRMSettings())` to "
                "start one; `trl_icrm.load_reward` scores any saved kind)."
            )
        return cls.from_dict(values)

    def save_to_config(self, config) -> None:
        config.icrm = self.to_dict()


def describe_model_kind(config) -> str:
    """A few words naming the kind of reward model a transformers config belongs to (for error messages)."""
    if getattr(config, "vrm", None) is not None:
        return "a VRM reward model (`config.vrm`; score it with `VRMReward`)"
    if getattr(config, "icrm", None) is not None:
        return "an ICRM reward model (`config.icrm`; score it with `ICRMReward`)"
    architectures = getattr(config, "architectures", None) or []
    if getattr(config, "num_labels", None) == 1 and not any(a.endswith("ForCausalLM") for a in architectures):
        return "a Bradley-Terry reward model (a one-output sequence classifier)"
    return "no trained reward model (its config has neither `icrm` nor `vrm` settings)"


def is_peft_folder(path: str | os.PathLike) -> bool:
    return Path(path, "adapter_config.json").is_file()


def check_local_path(path: str) -> None:
    """"No such folder" for a path that names a local folder but is none, before anything would ask the hub for it: an
    absolute or relative (`./`, `~`) path, one of more than two parts, or one whose first part is a local folder (a
    mistyped `runs/bt2` next to `runs/bt1`). Anything else may be a hub id (`org/name`)."""
    if os.path.isdir(path):
        return
    parts = path.replace("\\", "/").split("/")
    local = (
        os.path.isabs(path)
        or path.startswith((".", "~"))
        or len(parts) > 2
        or "" in parts
        or (len(parts) == 2 and os.path.isdir(parts[0]))
    )
    if local:
        raise FileNotFoundError(
            f"No such folder: {path!r} is neither a local model folder nor a model on the hub (a local path that "
            "does not exist; the hub was not asked)."
        )


def model_locations(path: str | os.PathLike) -> tuple[str, str]:
    """`(base_path, config_path)` of a resolved model folder: for a PEFT adapter folder, its base model and the folder
    holding the config (the adapter's own `config.json` if saved with it, else the base model's); else `path` twice."""
    path = os.fspath(path)
    check_local_path(path)
    check_model_folder(path)
    if not is_peft_folder(path):
        return path, path
    with open(Path(path, "adapter_config.json"), encoding="utf-8") as handle:
        base_path = resolve_model_name_or_path(json.load(handle)["base_model_name_or_path"])
    return base_path, path if Path(path, "config.json").is_file() else base_path


def load_config(config_path: str, trust_remote_code: bool = False, name: str | os.PathLike | None = None):
    """`AutoConfig.from_pretrained(config_path)`, with one clear error when there is no model there."""
    try:
        return AutoConfig.from_pretrained(config_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise FileNotFoundError(
            f"{os.fspath(name or config_path)!r} is neither a local model folder nor a model on the hub that can be "
            f"reached (check the path; offline, only local folders load). Details: {str(error).splitlines()[0]}"
        ) from error


def read_model_config(model_name_or_path: str | os.PathLike, trust_remote_code: bool = False):
    """The transformers config of a model folder, PEFT adapter folder (see [`model_locations`]) or hub id."""
    _, config_path = model_locations(resolve_model_name_or_path(model_name_or_path))
    return load_config(config_path, trust_remote_code, model_name_or_path)


def prepare_tokenizer(tokenizer, model: PreTrainedModel | None = None):
    """Give the tokenizer a pad token (its eos for Llama-style tokenizers that have none, as TRL does) and tell the
    model's config, which a sequence classifier needs to find the last non-pad token."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError("The tokenizer has neither a pad token nor an eos token; set `tokenizer.pad_token`.")
        tokenizer.pad_token = tokenizer.eos_token
    if model is not None:
        model.config.get_text_config().pad_token_id = tokenizer.pad_token_id
        model.config.pad_token_id = tokenizer.pad_token_id
    return tokenizer


@contextlib.contextmanager
def transformers_errors_only():
    """Inside the block transformers logs errors only (its public verbosity setting, restored afterwards)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)


def load_icrm_model(
    model_name_or_path: str | os.PathLike,
    settings: ICRMSettings | None = None,
    tokenizer_name_or_path: str | None = None,
    trust_remote_code: bool = False,
    allow_new_head: bool = True,
    **model_init_kwargs,
) -> tuple[PreTrainedModel, Any]:
    """Load an ICRM reward model and its tokenizer.

    Args:
        model_name_or_path: A trained ICRM model folder, a PEFT adapter folder of one, a hub id, or a causal-LM
            backbone (or [`DEFAULT_MODEL`]) to start a new ICRM model from (its 2-output head is then new).
        settings: ICRM settings for a new model. For a saved ICRM model they come from its config; passing
            different ones is an error (the model would score differently from how it was trained).
        tokenizer_name_or_path: Tokenizer location if not the model's.
        trust_remote_code: Forwarded to transformers (off by default).
        allow_new_head: Whether a model without saved ICRM settings may be loaded with a new (random) head; scorers
            pass `False`.
        **model_init_kwargs: Forwarded to `AutoModelForSequenceClassification.from_pretrained` (e.g. `dtype`).

    Returns:
        `(model, tokenizer)`; the model is in eval mode.
    """
    path = resolve_model_name_or_path(model_name_or_path)
    model_init_kwargs.setdefault("dtype", torch.float32)
    if isinstance(model_init_kwargs["dtype"], str) and model_init_kwargs["dtype"] != "auto":
        model_init_kwargs["dtype"] = getattr(torch, model_init_kwargs["dtype"])  # "bfloat16" -> torch.bfloat16
    model_init_kwargs.setdefault("use_safetensors", True)
    adapter = is_peft_folder(path)
    base_path, config_path = model_locations(path)
    config = load_config(config_path, trust_remote_code, model_name_or_path)
    saved = getattr(config, "icrm", None)
    if getattr(config, "vrm", None) is not None:
        raise ValueError(
            f"{model_name_or_path} is {describe_model_kind(config)}, not an ICRM reward model; it cannot be loaded "
            "or scored as one."
        )
    if saved is not None:
        saved_settings = ICRMSettings.from_dict(saved)
        if settings is not None and settings != saved_settings:
            raise ValueError(
                f"{model_name_or_path} was trained with ICRM settings {saved_settings}; refusing to load it with "
                f"different ones {settings}."
            )
        settings = saved_settings if settings is None else settings  # equal but for max_length: the caller's
    elif not allow_new_head:
        raise ValueError(
            f"{model_name_or_path} is not a trained ICRM model (its config has no `icrm` settings); scoring with it "
            "would use a new, random head. Train one with `ICRMRewardTrainer`."
        )
    settings = settings or ICRMSettings()
    settings.save_to_config(config)
    config.id2label, config.label2id = dict(ICRM_LABELS), {v: k for k, v in ICRM_LABELS.items()}
    # With an adapter, the base checkpoint has no ICRM head: transformers reports it "newly initialized", but the
    # adapter restores it right after, so that report is silenced (a new head on a plain backbone is still reported).
    with transformers_errors_only() if adapter else contextlib.nullcontext():
        model = AutoModelForSequenceClassification.from_pretrained(
            base_path, config=config, trust_remote_code=trust_remote_code, **model_init_kwargs
        )
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, path)
    tokenizer_path = tokenizer_name_or_path or path
    tokenizer = AutoTokenizer.from_pretrained(
        resolve_model_name_or_path(tokenizer_path), trust_remote_code=trust_remote_code
    )
    prepare_tokenizer(tokenizer, model)
    model.eval()
    return model, tokenizer


def icrm_settings_of(model) -> ICRMSettings:
    """The ICRM settings of a (possibly PEFT-wrapped) model."""
    return ICRMSettings.from_config(model.config)


def unwrap_peft(model) -> PreTrainedModel:
    """The sequence classifier under a PEFT wrapper (its LoRA layers stay injected in it)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def backbone_and_head(model) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The backbone and the `score` head of a (possibly PEFT-wrapped) sequence classifier."""
    inner = unwrap_peft(model)
    backbone = getattr(inner, inner.base_model_prefix, None)
    head = getattr(inner, "score", None)
    if backbone is None or head is None:
        raise TypeError(f"{type(inner).__name__} has no `{inner.base_model_prefix}` backbone with a `score` head.")
    return backbone, head


PACKABLE_LAYER_TYPES = ("full_attention", "sliding_attention", "chunked_attention")
"""Attention layer types whose masks the prefix-sharing paths build exactly (per layer type, in absolute positions)."""

MASKED_ATTENTION = ("eager", "sdpa")
"""Attention implementations that take a ready 4D mask, which the packed paths need."""


def attention_layout(model) -> dict[str, int | None]:
    """`{layer type: window}` of a model's decoder layers, as transformers' caches read them from the config: the
    window of `sliding_attention` layers, the chunk size of `chunked_attention` layers, `None` for the others."""
    backbone, _ = backbone_and_head(model)
    layer_types, layer_kwargs = layer_types_and_windows(backbone.config.get_text_config(decoder=True))
    layout: dict[str, int | None] = {}
    for layer_type, kwargs in zip(layer_types, layer_kwargs, strict=True):
        window = kwargs.get("sliding_window")
        if layout.setdefault(layer_type, window) != window:
            layout[layer_type] = -1  # several windows under one layer type: no one mask per type fits
    return layout


def prefix_sharing_problem(model) -> str | None:
    """Why the prefix-sharing paths (a kept prefix cache, packed rows) cannot be exact for `model`, or `None` when
    they are: they need a causal decoder whose attention takes a 4D mask (eager or sdpa) and whose layers are full,
    sliding-window or chunked attention, one window per layer type."""
    try:
        backbone, _ = backbone_and_head(model)
    except TypeError as error:
        return str(error)
    config = backbone.config.get_text_config(decoder=True)
    implementation = getattr(config, "_attn_implementation", None) or "eager"
    if implementation not in MASKED_ATTENTION:
        return f"the {implementation!r} attention implementation takes no 4D attention mask (use eager or sdpa)"
    if not getattr(config, "is_causal", True) or getattr(config, "use_bidirectional_attention", False):
        return "its attention is bidirectional"
    layout = attention_layout(model)
    other = sorted(set(layout) - set(PACKABLE_LAYER_TYPES))
    if other:
        return f"its layers of type {other} are not full, sliding-window or chunked attention"
    if any(window == -1 for window in layout.values()):
        return "its layers of one type use different windows"
    return None


def tree_attention_mask(model, allowed: torch.Tensor, query_positions: torch.Tensor, key_positions: torch.Tensor):
    """The additive 4D attention mask(s) of a packed sequence: query `i` sees key `j` where `allowed[i, j]` (the
    rows' tree) and, in sliding-window and chunked layers, where transformers' window or chunk overlay allows it for
    their absolute positions `query_positions[i]`, `key_positions[j]`. One mask when every layer is of one type, else
    `{layer type: mask}` (the per-layer-type masks that transformers' decoders accept in place of building theirs).
    In the model's dtype and on its device."""
    from transformers.masking_utils import chunked_overlay, sliding_window_overlay

    backbone, _ = backbone_and_head(model)
    dtype = next(p for p in backbone.parameters() if p.is_floating_point()).dtype
    query, key = query_positions[:, None], key_positions[None, :]
    masks = {}
    for layer_type, window in attention_layout(model).items():
        keep = allowed
        if layer_type == "sliding_attention":
            keep = keep & sliding_window_overlay(window)(0, 0, query, key)
        elif layer_type == "chunked_attention":
            keep = keep & chunked_overlay(window, torch.zeros(1, dtype=torch.long, device=allowed.device))(
                0, 0, query, key
            )
        mask = torch.zeros(keep.shape, dtype=dtype, device=allowed.device).masked_fill(~keep, torch.finfo(dtype).min)
        masks[layer_type] = mask[None, None]
    return next(iter(masks.values())) if len(masks) == 1 else masks


def _cache_kwargs(backbone, cache) -> dict[str, Any]:
    """The key-value cache keyword of `backbone.forward` (its name in the installed transformers) holding `cache`."""
    name = cache_argument(backbone)
    if name is None:
        raise TypeError(f"{type(backbone).__name__}.forward takes no key-value cache")
    return {name: cache, "use_cache": cache is not None}


def encode_prefix(model, prefix_ids: torch.Tensor):
    """Key-value cache of one token sequence `prefix_ids` (1-D) under the model's backbone (gradients kept).

    Every layer keeps every key and value (a transformers `DynamicCache` of full layers, even for sliding-window
    layers, which a cache built from the config would trim to their window): the rows read after it are masked per
    layer type, so they see exactly what the full sequence would."""
    from transformers.cache_utils import DynamicCache

    backbone, _ = backbone_and_head(model)
    cache = DynamicCache()
    backbone(input_ids=prefix_ids.reshape(1, -1), **_cache_kwargs(backbone, cache))
    return cache


def extend_prefix_cache(model, cache, ids: torch.Tensor):
    """A new one-row key-value cache of `prefix + ids`, from the cache of `prefix` (left unchanged; `None` for an empty
    prefix) and the 1-D token ids `ids` that follow it."""
    backbone, _ = backbone_and_head(model)
    if cache is None:
        return encode_prefix(model, ids)
    try:
        cache = expand_prefix_cache(cache, 1)
    except TypeError:
        cache = copy.deepcopy(cache)
    backbone(input_ids=ids.reshape(1, -1), **_cache_kwargs(backbone, cache))
    return cache


def cache_nbytes(cache) -> int:
    """Bytes held by the key and value tensors of a key-value cache."""
    total = 0
    for layer in getattr(cache, "layers", ()):
        for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if isinstance(tensor, torch.Tensor):
                total += tensor.numel() * tensor.element_size()
    return total


def expand_prefix_cache(cache, rows: int):
    """A new key-value cache that holds the one-row `cache` for each of `rows` rows, as broadcast views (no copy).

    The cache passed in is left as it is: a forward pass appends to the new cache by concatenation, which makes new
    tensors, so one encoded prefix serves any number of batches and calls. Only plain dynamic layers can be viewed
    this way; any other layer type raises a `TypeError` (callers then copy the cache instead).

    Example:

    ```python
    >>> cache = encode_prefix(model, prefix_ids)  # doctest: +SKIP
    >>> batch_cache = expand_prefix_cache(cache, rows=8)  # doctest: +SKIP
    ```
    """
    from transformers.cache_utils import DynamicLayer

    expanded = copy.copy(cache)
    expanded.layers = []
    for layer in cache.layers:
        if type(layer) is not DynamicLayer:
            raise TypeError(f"cannot share a {type(layer).__name__} across rows without copying it")
        layer = copy.copy(layer)
        if layer.is_initialized and layer.keys.numel():
            if layer.keys.shape[0] != 1:
                raise ValueError(f"expected a one-row prefix cache, got {layer.keys.shape[0]} rows")
            layer.keys = layer.keys.expand(rows, *layer.keys.shape[1:])
            layer.values = layer.values.expand(rows, *layer.values.shape[1:])
        expanded.layers.append(layer)
    return expanded


def classify_suffixes(
    model, input_ids: torch.Tensor, attention_mask: torch.Tensor, pad_token_id: int, prefix_cache=None
) -> torch.Tensor:
    """Classifier outputs `(rows, num_labels)` of right-padded token rows, each read after the one prefix held in
    `prefix_cache` (from [`encode_prefix`]; shared by every row and left unchanged) or alone when it is `None`.

    The head reads the rightmost token that is not the pad token (pad may equal eos), exactly as transformers'
    sequence classifiers pool, so `prefix + row` scores as the full sequence would.
    """
    backbone, head = backbone_and_head(model)
    if prefix_cache is not None:
        prefix_length = prefix_cache.get_seq_length()
        try:
            prefix_cache = expand_prefix_cache(prefix_cache, len(input_ids))
        except TypeError:  # another cache layout: repeat a copy of it
            prefix_cache = copy.deepcopy(prefix_cache)
            prefix_cache.batch_repeat_interleave(len(input_ids))
        attention_mask = torch.cat([attention_mask.new_ones(len(input_ids), prefix_length), attention_mask], dim=1)
    cache_kwargs = _cache_kwargs(backbone, prefix_cache) if prefix_cache is not None else {"use_cache": False}
    hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, **cache_kwargs).last_hidden_state
    positions = torch.arange(input_ids.shape[1], device=input_ids.device, dtype=torch.int32)
    last = ((input_ids != pad_token_id).int() * positions).argmax(-1)
    return head(hidden[torch.arange(len(input_ids), device=input_ids.device), last])


def classify_packed_suffixes(model, rows: Sequence[Sequence[int]], pad_token_id: int, prefix_cache=None):
    """Classifier outputs `(len(rows), num_labels)` of token rows that all follow the one prefix of `prefix_cache`
    (left unchanged; `None` for no prefix), run as one packed sequence: each row attends to the prefix and to itself
    only, with position ids that continue from the prefix, so each scores as `prefix + row` alone would.

    Against batching the rows (which repeats the prefix's keys and values once per row and pads rows to each other),
    the prefix is read once and nothing is padded. Each row is pooled at its rightmost token that is not the pad
    token, as transformers' sequence classifiers pool.

    Example:

    ```python
    >>> logits = classify_packed_suffixes(model, [[5, 6, 7], [8, 9]], pad_token_id=0, prefix_cache=cache)  # doctest: +SKIP
    ```
    """
    backbone, head = backbone_and_head(model)
    device = next(backbone.parameters()).device
    prefix_length = prefix_cache.get_seq_length() if prefix_cache is not None else 0
    lengths = torch.tensor([len(row) for row in rows], device=device)
    ids = torch.cat([torch.as_tensor(row, dtype=torch.long, device=device) for row in rows])
    segment = torch.repeat_interleave(torch.arange(len(rows), device=device), lengths)
    starts = torch.cumsum(lengths, 0) - lengths
    local = torch.arange(len(ids), device=device) - starts[segment]
    allowed = (segment[:, None] == segment[None, :]) & (local[None, :] <= local[:, None])
    allowed = torch.cat([allowed.new_ones(len(ids), prefix_length), allowed], dim=1)
    positions = local + prefix_length
    key_positions = torch.cat([torch.arange(prefix_length, device=device), positions])
    mask = tree_attention_mask(model, allowed, positions, key_positions)
    cache_kwargs = {"use_cache": False}
    if prefix_cache is not None:
        try:
            cache = expand_prefix_cache(prefix_cache, 1)
        except TypeError:
            cache = copy.deepcopy(prefix_cache)
        cache_kwargs = _cache_kwargs(backbone, cache)
    hidden = backbone(
        input_ids=ids[None], attention_mask=mask, position_ids=positions[None], **cache_kwargs
    ).last_hidden_state[0]
    last = torch.stack(
        [_last_real(ids[start : start + n], pad_token_id) for start, n in zip(starts, lengths, strict=True)]
    )
    return head(hidden[starts + last])


def packed_pair_logits(
    model, chosen_ids: torch.Tensor, rejected_ids: torch.Tensor, prefix_length: int, pad_token_id: int
):
    """Classifier outputs `(2, num_labels)` of the two sides of a pair that share their first `prefix_length` tokens,
    from one forward pass over `prefix + chosen suffix + rejected suffix` (1-D unpadded rows in, no key-value cache).

    The rejected suffix attends to the prefix and to itself, never to the chosen suffix, and its position ids continue
    from the prefix: each side is computed exactly as its full sequence alone, while the prefix is encoded once. With
    no cache passed between passes, this works under gradient checkpointing. Each side is pooled at its rightmost
    token that is not the pad token, as transformers' sequence classifiers pool.

    Example:

    ```python
    >>> logits = packed_pair_logits(model, chosen, rejected, prefix_length=120, pad_token_id=0)  # doctest: +SKIP
    ```
    """
    backbone, head = backbone_and_head(model)
    device, n_chosen = chosen_ids.device, len(chosen_ids)
    ids = torch.cat([chosen_ids, rejected_ids[prefix_length:]])
    total = len(ids)
    positions = torch.cat(
        [torch.arange(n_chosen, device=device), torch.arange(prefix_length, len(rejected_ids), device=device)]
    )
    query, key = torch.arange(total, device=device)[:, None], torch.arange(total, device=device)[None, :]
    allowed = key <= query
    allowed &= ~((query >= n_chosen) & (key >= prefix_length) & (key < n_chosen))  # rejected never sees chosen
    mask = tree_attention_mask(model, allowed, positions, positions)
    hidden = backbone(
        input_ids=ids[None], attention_mask=mask, position_ids=positions[None], use_cache=False
    ).last_hidden_state[0]
    rejected_index = torch.cat(
        [torch.arange(prefix_length, device=device), torch.arange(n_chosen, total, device=device)]
    )
    last = [_last_real(chosen_ids, pad_token_id), rejected_index[_last_real(rejected_ids, pad_token_id)]]
    return head(hidden[torch.stack([torch.as_tensor(i, device=device) for i in last])])


def _last_real(ids: torch.Tensor, pad_token_id: int) -> torch.Tensor:
    """Index of the rightmost token of a 1-D row that is not the pad token (0 if there is none)."""
    positions = torch.arange(len(ids), device=ids.device, dtype=torch.int32)
    return ((ids != pad_token_id).int() * positions).argmax(-1)


def pad_right(
    rows: Sequence[Sequence[int] | torch.Tensor], pad_token_id: int, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and attention mask of token rows, as TRL's reward collator pads them."""
    rows = [torch.as_tensor(row, dtype=torch.long) for row in rows]
    ids = pad(rows, padding_value=pad_token_id, padding_side="right")
    mask = pad([torch.ones_like(row) for row in rows], padding_value=0, padding_side="right")
    return ids.to(device) if device is not None else ids, mask.to(device) if device is not None else mask


def split_heads(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reward r and confidence logit c from the `(..., 2)` output of an ICRM model."""
    if logits.shape[-1] != 2:
        raise ValueError(f"An ICRM model has 2 outputs (reward, confidence); got {logits.shape[-1]}.")
    return logits[..., 0], logits[..., 1]

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""A head ensemble end to end: encode the pairs with the frozen backbone (cached), train the heads, save and load.

Example:

```python
from trl_icrm.uncertainty.fit import fit_head_ensemble, load_head_ensemble

result = fit_head_ensemble("embedded:SmolLM2-135M-Instruct", train_pairs, eval_pairs, num_members=5,
                           output_dir="outputs/head-ensemble", feature_cache_dir="outputs/feature-cache")
heads, model, tokenizer = load_head_ensemble("outputs/head-ensemble")
```
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..models.features import FeatureEncoder, load_feature_backbone
from ..utils.default_model import resolve_model_name_or_path
from .heads import HeadEnsemble, HeadEnsembleConfig, is_head_ensemble_folder
from .training import HeadTrainingArguments, pairwise_metrics, train_head_ensemble


def recorded_backbone(model_name_or_path: str | os.PathLike) -> str:
    """How a saved head ensemble names its backbone: an absolute path for a local folder, else as given (a hub id
    or an `embedded:` name, resolved again at load)."""
    path = os.fspath(model_name_or_path)
    return os.path.abspath(path) if os.path.isdir(path) else path


def fit_head_ensemble(
    backbone: str | os.PathLike,
    train_pairs: Any,
    eval_pairs: Any = None,
    *,
    output_dir: str | os.PathLike | None = None,
    num_members: int = 5,
    head_type: str = "mlp",
    head_hidden_size: int = 128,
    training: HeadTrainingArguments | None = None,
    feature_cache_dir: str | os.PathLike | None = None,
    batch_size: int = 16,
    max_length: int | None = 1024,
    progress_bar: bool = True,
    trust_remote_code: bool = False,
    model_init_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train a [`HeadEnsemble`] on the frozen `backbone`'s features of `train_pairs` (rows with `chosen`,
    `rejected`, optional `prompt`) and, with `output_dir`, save it there with the tokenizer. `model_init_kwargs`
    (e.g. `dtype`) load the backbone.

    Returns:
        `{"heads", "encoder", "history", "eval"}`: the trained heads, the [`FeatureEncoder`], the per-epoch losses
        and the held-out metrics of `eval_pairs` ([`pairwise_metrics`]; `None` without).
    """
    training = training or HeadTrainingArguments()
    kwargs = {k: v for k, v in (model_init_kwargs or {}).items() if k != "trust_remote_code"}
    model, tokenizer = load_feature_backbone(backbone, trust_remote_code=trust_remote_code, **kwargs)
    encoder = FeatureEncoder(
        model, tokenizer, cache_dir=feature_cache_dir, batch_size=batch_size, max_length=max_length,
        progress_bar=progress_bar,
    )  # fmt: skip
    config = HeadEnsembleConfig(
        hidden_size=encoder.hidden_size,
        num_members=num_members,
        head_type=head_type,
        head_hidden_size=head_hidden_size,
        seed=training.seed,
        backbone=recorded_backbone(backbone),
        backbone_fingerprint=encoder.fingerprint,
        max_length=max_length,
    )
    heads = HeadEnsemble(config)
    history = train_head_ensemble(heads, *encoder.encode_pairs(list(train_pairs)), training)
    metrics = pairwise_metrics(heads, *encoder.encode_pairs(list(eval_pairs))) if eval_pairs else None
    if output_dir is not None:
        save_head_ensemble(heads, tokenizer, output_dir)
    return {"heads": heads, "encoder": encoder, "history": history, "eval": metrics}


def save_head_ensemble(heads: HeadEnsemble, tokenizer: Any, output_dir: str | os.PathLike) -> str:
    """Save `heads` and the tokenizer in `output_dir` (a save that does not finish leaves a folder loaders refuse)."""
    from ..utils.io import saving_model

    with saving_model(output_dir):
        heads.save_pretrained(output_dir)
        tokenizer.save_pretrained(output_dir)
    return os.fspath(output_dir)


def load_head_ensemble(
    folder: str | os.PathLike, backbone: str | os.PathLike | None = None, trust_remote_code: bool = False
) -> tuple[HeadEnsemble, Any, Any]:
    """`(heads, backbone model, tokenizer)` of a saved head ensemble: its backbone is the one it recorded, or
    `backbone` (the same weights, moved elsewhere); the tokenizer is the one saved with the heads."""
    from transformers import AutoTokenizer

    from ..models import prepare_tokenizer
    from ..utils.io import check_model_folder

    folder = resolve_model_name_or_path(folder)
    if not is_head_ensemble_folder(folder):
        raise FileNotFoundError(
            f"{folder} holds no head ensemble; train one with `trl-icrm train --method head_ensemble`."
        )
    check_model_folder(folder)
    heads = HeadEnsemble.from_pretrained(folder)
    backbone = backbone or heads.config.backbone
    if backbone is None:
        raise ValueError(f"The head ensemble in {folder} records no backbone; pass `backbone=`.")
    if os.path.isabs(os.fspath(backbone)) and not os.path.isdir(backbone):
        raise FileNotFoundError(
            f"The backbone of the head ensemble in {folder}, {backbone}, is not there; pass `backbone=` (the same "
            "weights elsewhere)."
        )
    model, backbone_tokenizer = load_feature_backbone(backbone, trust_remote_code=trust_remote_code)
    has_tokenizer = Path(folder, "tokenizer_config.json").is_file()
    tokenizer = AutoTokenizer.from_pretrained(folder) if has_tokenizer else backbone_tokenizer
    prepare_tokenizer(tokenizer, model)
    return heads, model, tokenizer


__all__ = ["fit_head_ensemble", "load_head_ensemble", "recorded_backbone", "save_head_ensemble"]

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Fitting a Laplace posterior to a trained Bradley-Terry reward model, post hoc, with laplace-torch, and loading one.

The MAP weights are the trained model's (`trl.RewardTrainer` with a LoRA config). [`fit_laplace`] computes the GGN of
the Bradley-Terry likelihood on the preference pairs (laplace-torch's `"reward_modeling"` likelihood, curvlinops
backend), tunes the prior precision lambda of N(0, 1/lambda I) by marginal likelihood and returns a
[`LaplacePosterior`]; a completion's reward is then N(r_MAP, Lambda) with Lambda from the linearized (GLM)
predictive.

- `subset="lora"` (default `hessian_structure="kron"`): every weight PEFT trains (LoRA matrices and the score head);
  the model must be a PEFT LoRA model. Laplace-LoRA proper.
- `subset="last_layer"` (default `"full"`): the score head only, on the pooled features of the frozen backbone;
  works for any BT classifier (merged or not) and costs one forward pass at scoring time.

Example:

```python
from trl_icrm.laplace import fit_laplace, load_bt_model

model, tokenizer = load_bt_model("outputs/math-bt-lora")
posterior = fit_laplace(model, tokenizer, pairs, subset="lora")   # pairs: rows with prompt, chosen, rejected
posterior.save("outputs/math-bt-lora")                             # laplace_lora.safetensors next to the model
```
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..models import is_peft_folder, model_locations, prepare_tokenizer, transformers_errors_only, unwrap_peft
from ..models.features import FeatureEncoder
from ..utils.default_model import resolve_model_name_or_path
from .adapter import (
    HeadAdapter,
    NotARewardModelError,
    PairwiseRewardAdapter,
    check_bt_classifier,
    encode_pairs,
    pack_rows,
    pooled_features,
    score_head,
    select_lora_subset,
    use_eager_attention,
)
from .posterior import (
    DEFAULT_STRUCTURE,
    POSTERIOR_FORMAT,
    LaplacePosterior,
    PosteriorMismatchError,
    make_laplace,
    posterior_file,
    saved_subsets,
    weight_fingerprint,
    weight_signature,
)


logger = logging.getLogger(__name__)


def load_bt_model(model_name_or_path: str | os.PathLike, trust_remote_code: bool = False) -> tuple[Any, Any]:
    """`(model, tokenizer)` of a saved BT reward model in fp32, eval mode: a PEFT adapter folder as a `PeftModel`
    (its LoRA weights kept, for `subset="lora"`), any other folder as a plain sequence classifier."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = resolve_model_name_or_path(model_name_or_path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{model_name_or_path!r} is not a saved reward model folder.")
    base_path, _ = model_locations(path)
    adapter = is_peft_folder(path)
    _check_saved_bt_model(path, adapter, trust_remote_code)
    with transformers_errors_only() if adapter else contextlib.nullcontext():
        model = AutoModelForSequenceClassification.from_pretrained(
            base_path, num_labels=1, dtype=torch.float32, use_safetensors=True, trust_remote_code=trust_remote_code
        )
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, path)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    prepare_tokenizer(tokenizer, unwrap_peft(model))
    return model.eval(), tokenizer


def _check_saved_bt_model(path: str, adapter: bool, trust_remote_code: bool) -> None:
    """A clear error unless `path` holds a BT reward model: a one-output sequence classifier, or a LoRA adapter
    trained as one (PEFT task `SEQ_CLS`, so its score head is saved with it)."""
    import json

    from ..models import read_model_config

    config = read_model_config(path, trust_remote_code)
    if getattr(config, "icrm", None) is not None:
        raise NotARewardModelError(f"{path} is an ICRM model; a Laplace posterior is fitted to a BT reward model.")
    if adapter:
        with open(os.path.join(path, "adapter_config.json"), encoding="utf-8") as handle:
            task = json.load(handle).get("task_type")
        if task != "SEQ_CLS":
            raise NotARewardModelError(
                f"{path} is a PEFT adapter for task {task!r}, not a reward model (a `SEQ_CLS` adapter trained by "
                "trl.RewardTrainer)."
            )
        return
    classifier = any(a.endswith("ForSequenceClassification") for a in config.architectures or [])
    if not classifier or getattr(config, "num_labels", None) != 1:
        raise NotARewardModelError(
            f"{path} is not a Bradley-Terry reward model (architectures {config.architectures}, num_labels "
            f"{getattr(config, 'num_labels', None)}): a Laplace posterior needs a one-output sequence classifier."
        )


def base_model_name(model: Any) -> str:
    """The base model a reward model was trained from (PEFT's record of it, else the config's name)."""
    config = getattr(model, "peft_config", {}).get("default") if hasattr(model, "peft_config") else None
    name = getattr(config, "base_model_name_or_path", None) or getattr(unwrap_peft(model).config, "_name_or_path", "")
    return Path(str(name)).name if os.path.isabs(str(name)) else str(name)


def _adapter(model: Any, subset: str, pad_token_id: int) -> torch.nn.Module:
    """The module laplace-torch differentiates, with exactly the posterior's weights requiring grad."""
    if subset == "lora":
        select_lora_subset(model)
        use_eager_attention(model)
        return PairwiseRewardAdapter(model, pad_token_id)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return HeadAdapter(score_head(model))


def _pair_loader(
    model, subset, pad_token_id, encoded, batch_size, encoder=None
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Batches `(inputs (b, 2, ...), targets (b,) = 0: the chosen side wins)` in the adapter's input format, on the
    model's device; the last-layer features from `encoder` (a `FeatureEncoder` and its cache) when given."""
    batches, device = [], next(model.parameters()).device
    for start in range(0, len(encoded), batch_size):
        rows = [side for pair in encoded[start : start + batch_size] for side in pair]
        if subset == "last_layer" and encoder is not None:
            inputs = encoder.encode_rows(rows).reshape(len(rows) // 2, 2, -1).to(device)
        else:
            inputs = pack_rows(rows, per_item=2).to(device)
            inputs = pooled_features(model, inputs, pad_token_id) if subset == "last_layer" else inputs
        batches.append((inputs, torch.zeros(len(inputs), dtype=torch.long, device=device)))
    return batches


class _Batches(list):
    """A list of batches with the `dataset` laplace-torch reads the number of data points from."""

    @property
    def dataset(self) -> range:
        return range(sum(len(targets) for _, targets in self))


def fit_laplace(
    model: Any,
    tokenizer: Any,
    pairs: Sequence[Mapping[str, Any]],
    subset: str = "last_layer",
    hessian_structure: str | None = None,
    prior_precision: float = 1.0,
    tune_prior: bool = True,
    batch_size: int = 4,
    max_length: int | None = 1024,
    progress_bar: bool = True,
    feature_cache_dir: str | os.PathLike | None = None,
) -> LaplacePosterior:
    """Fit a Laplace posterior to a trained BT reward model on its preference pairs.

    Args:
        model: A one-output sequence classifier; a PEFT LoRA model for `subset="lora"` ([`load_bt_model`]).
        tokenizer: Its tokenizer (pairs are tokenized as `trl.RewardTrainer` tokenizes them).
        pairs: Rows with `chosen`, `rejected` and optionally `prompt` (a list of dicts or a `datasets.Dataset`).
        subset: `"last_layer"` (the default: cheap, and the better calibrated at a few hundred pairs) or `"lora"`.
        hessian_structure: `"kron"`, `"diag"` or `"full"` (default: kron for lora, full for last_layer).
        prior_precision: Initial lambda of the prior N(0, 1/lambda I).
        tune_prior: Tune lambda by marginal likelihood (laplace-torch's `optimize_prior_precision`).
        batch_size: Pairs per curvature batch.
        max_length: Tokens kept per side.
        progress_bar: Show laplace-torch's progress bar over the curvature batches.
        feature_cache_dir: For `subset="last_layer"`, read (and fill) the backbone features of the pairs from this
            feature cache (`trl_icrm.models.features`), so a refit on the same model and pairs skips the backbone.

    Returns:
        The [`LaplacePosterior`]; `.save(model_dir)` writes it next to the model.
    """
    check_bt_classifier(model, subset)
    structure = hessian_structure or DEFAULT_STRUCTURE[subset]
    pairs = [pairs[i] for i in range(len(pairs))]
    if not pairs:
        raise ValueError("fit_laplace needs at least one preference pair.")
    prepare_tokenizer(tokenizer, unwrap_peft(model))
    from ..demonstrations import DemonstrationRenderer

    encoded = encode_pairs(DemonstrationRenderer(tokenizer), pairs, max_length)
    model.eval()
    pad_token_id = tokenizer.pad_token_id
    adapter = _adapter(model, subset, pad_token_id)
    laplace = make_laplace(adapter, structure, prior_precision)
    encoder = None
    if subset == "last_layer" and feature_cache_dir is not None:
        encoder = FeatureEncoder(model, tokenizer, cache_dir=feature_cache_dir, batch_size=2 * batch_size)
    loader = _Batches(_pair_loader(model, subset, pad_token_id, encoded, batch_size, encoder))
    laplace.fit(loader, progress_bar=progress_bar)
    if tune_prior:
        with warnings.catch_warnings():  # the link approximation is not used by marginal-likelihood tuning
            warnings.filterwarnings("ignore", message="By default `link_approx` is `probit`")
            laplace.optimize_prior_precision(method="marglik", pred_type="glm", link_approx="probit", verbose=False)
    metadata = {"base_model": base_model_name(model), "num_pairs": str(len(pairs)), "max_length": str(max_length)}
    posterior = LaplacePosterior(laplace, adapter, model, subset, structure, pad_token_id, metadata)
    posterior.metadata["signature"] = weight_signature(_covered(posterior))
    posterior.metadata["fingerprint"] = weight_fingerprint(model)
    return posterior


def _covered(posterior: LaplacePosterior) -> list[tuple[str, torch.Tensor]]:
    return [(name, p) for name, p in posterior.adapter.named_parameters() if p.requires_grad]


def load_posterior(
    model: str | os.PathLike | Any,
    tokenizer: Any = None,
    subset: str = "auto",
    path: str | os.PathLike | None = None,
) -> LaplacePosterior:
    """Load the posterior saved next to a reward model and check it belongs to that model.

    Args:
        model: The model folder (loaded with [`load_bt_model`]), or the loaded model (then pass `path`).
        tokenizer: The tokenizer of a loaded model.
        subset: `"lora"`, `"last_layer"` or `"auto"` (the LoRA posterior if saved, else the last-layer one).
        path: The posterior file (default: `laplace_<subset>.safetensors` in the model folder).

    Raises:
        PosteriorMismatchError: the file was fitted to other weights (names, shapes, values) or another base model.
    """
    if isinstance(model, (str, os.PathLike)):
        folder = resolve_model_name_or_path(model)
        if path is None:
            subset = _subset_in(folder, subset)
            path = posterior_file(folder, subset)
        model, tokenizer = load_bt_model(folder)
    elif path is None or tokenizer is None:
        raise ValueError("With a loaded model, pass its tokenizer and the posterior file (`path`).")
    tensors, metadata = _read_posterior(path)
    if subset not in ("auto", metadata["subset"]):
        raise PosteriorMismatchError(f"{path} holds a {metadata['subset']!r} posterior, not {subset!r}.")
    check_bt_classifier(model, metadata["subset"])
    adapter = _adapter(model, metadata["subset"], tokenizer.pad_token_id)
    laplace = make_laplace(adapter, metadata["structure"])
    posterior = LaplacePosterior(
        laplace, adapter, model, metadata["subset"], metadata["structure"], tokenizer.pad_token_id, metadata
    )
    _check_matches(posterior, tensors, metadata, path)
    laplace.load_state_dict(_state_dict(tensors, metadata))
    return posterior


def _subset_in(folder: str, subset: str) -> str:
    saved = saved_subsets(folder)
    if subset == "auto" and saved:
        return saved[0]
    if subset in saved:
        return subset
    raise FileNotFoundError(
        f"No Laplace posterior{'' if subset == 'auto' else f' for subset {subset!r}'} next to {folder}; fit one with "
        f"`trl-icrm laplace --model_name_or_path {folder}`."
    )


def _read_posterior(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    if not os.path.isfile(path):
        raise FileNotFoundError(f"No posterior file {os.fspath(path)!r}.")
    with safe_open(os.fspath(path), framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - safe_open has no iterator
    if metadata.get("format") != POSTERIOR_FORMAT:
        raise PosteriorMismatchError(
            f"{path} is not a trl-icrm Laplace posterior (format {metadata.get('format')!r})."
        )
    return tensors, metadata


def _check_matches(posterior: LaplacePosterior, tensors, metadata, path) -> None:
    covered = _covered(posterior)
    if metadata.get("signature") != weight_signature(covered):
        count = sum(p.numel() for _, p in covered)
        raise PosteriorMismatchError(
            f"{path} covers other weights (names or shapes) than this model's {metadata['subset']} subset "
            f"({len(covered)} tensors, {count} weights; the file has {tensors['mean'].numel()})."
        )
    mean = torch.cat([p.detach().reshape(-1) for _, p in covered]).float()
    if not torch.allclose(mean, tensors["mean"], rtol=1e-5, atol=1e-6):
        raise PosteriorMismatchError(
            f"{path} was fitted to other weights: its MAP mean differs from this model's (max difference "
            f"{(mean - tensors['mean']).abs().max():.3g}). Refit it for this model."
        )
    if "fingerprint" in metadata:  # the model by content: any path to the same weights loads the posterior
        if metadata["fingerprint"] != weight_fingerprint(posterior.model):
            raise PosteriorMismatchError(
                f"{path} was fitted to another model (base model {metadata.get('base_model')!r}): the fingerprint of "
                "the weights differs. Refit it for this model."
            )
    elif metadata.get("base_model"):  # a file written before fingerprints: compare the base model's name only
        base = base_model_name(posterior.model)
        if Path(metadata["base_model"]).name != Path(base).name:
            raise PosteriorMismatchError(
                f"{path} was fitted to a reward model on {metadata['base_model']!r}, this one is on {base!r}."
            )


def _state_dict(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> dict[str, Any]:
    if metadata["structure"] == "kron":
        blocks = sorted({int(key.split(".")[1]) for key in tensors if key.startswith("H.")})
        curvature: Any = [
            [tensors[key] for key in sorted((k for k in tensors if k.startswith(f"H.{i}.")), key=_factor_index)]
            for i in blocks
        ]
    else:
        curvature = tensors["H"]
    return {
        "mean": tensors["mean"],
        "H": curvature,
        "loss": tensors["loss"].reshape(()),
        "prior_mean": tensors["prior_mean"].reshape(())
        if tensors["prior_mean"].numel() == 1
        else tensors["prior_mean"],
        "prior_precision": tensors["prior_precision"],
        "sigma_noise": torch.tensor(float(metadata["sigma_noise"])),
        "n_data": int(metadata["n_data"]),
        "n_outputs": int(metadata["n_outputs"]),
        "likelihood": "reward_modeling",
        "temperature": float(metadata["temperature"]),
        "enable_backprop": False,
        "cls_name": metadata["cls_name"],
    }


def _factor_index(key: str) -> int:
    return int(key.split(".")[2])


def describe(posterior: LaplacePosterior) -> dict[str, Any]:
    """A JSON-able summary: subset, structure, weights covered, prior precision, pairs."""
    covered = _covered(posterior)
    return {
        "subset": posterior.subset,
        "structure": posterior.structure,
        "num_weights": sum(p.numel() for _, p in covered),
        "num_tensors": len(covered),
        "prior_precision": posterior.prior_precision,
        **{key: posterior.metadata[key] for key in ("base_model", "num_pairs") if key in posterior.metadata},
    }


__all__ = ["base_model_name", "describe", "fit_laplace", "load_bt_model", "load_posterior"]

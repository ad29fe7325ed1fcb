# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The trainers' shared base: what the pair-based reward trainers of trl-icrm (`ICRMRewardTrainer`,
`VRMRewardTrainer`) share on top of `trl.RewardTrainer` ([`PairRewardTrainer`] and its helpers): arguments and model
loading, the PEFT path, the checks of a preference data set and its length policy, the pair collation, per-pair metric
records, and saving (a LoRA adapter keeps the model's settings and a
portable base-model name; a model card is written beside it).

Example:

```python
from trl_icrm.trainer.base import collate_pairs

batch = collate_pairs([([1, 2, 3], [1, 2])], pad_token_id=0)  # TRL's batch: chosen rows, then rejected rows
batch["input_ids"].shape  # (2, 3)
```
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
from datasets import Dataset
from transformers import AutoTokenizer, PreTrainedModel
from trl import RewardTrainer

from .._trl_compat import check_reward_trainer, preference_collator
from ..demonstrations import QueryTooLongError
from ..models import prepare_tokenizer, unwrap_peft
from ..utils.default_model import portable_model_name
from ..utils.io import saving_model


logger = logging.getLogger(__name__)


def default_args(args: Any, model: str | PreTrainedModel, config_class: type, suffix: str) -> Any:
    """`args`, or a default `config_class("<model>-<suffix>")`; anything but a `config_class` is an error."""
    if args is None:
        name = model if isinstance(model, str) else model.config.name_or_path
        return config_class(f"{os.path.basename(str(name).rstrip('/')).replace(':', '-')}-{suffix}")
    if not isinstance(args, config_class):
        raise TypeError(f"`args` must be a {config_class.__name__}, got {type(args).__name__}.")
    return args


def model_init_kwargs(args: Any, quantization_config) -> dict[str, Any]:
    """`args.model_init_kwargs` with the trainer's `quantization_config`, as `trl.RewardTrainer` builds them."""
    kwargs = dict(args.model_init_kwargs or {})
    kwargs.pop("trust_remote_code", None)  # `args.trust_remote_code` is passed on its own
    if quantization_config is not None:
        if "quantization_config" in kwargs:
            raise ValueError(
                "`quantization_config` is set both as a trainer argument and in `args.model_init_kwargs`; set it in "
                "one place, preferably as a trainer argument."
            )
        kwargs["quantization_config"] = quantization_config
    if args.distributed_state.distributed_type in ("MULTI_GPU", "DEEPSPEED"):
        kwargs["device_map"] = None  # distributed training needs every process to hold its own copy
    return kwargs


def load_model_from_path(
    model: str | os.PathLike, args: Any, quantization_config, load: Callable[..., tuple[Any, Any]]
) -> tuple[PreTrainedModel, Any]:
    """`load(model, trust_remote_code=..., **model_init_kwargs)` with the seed set first (new heads are random and
    must be reproducible); `args.model_init_kwargs` are consumed."""
    from transformers import set_seed

    set_seed(args.seed)
    kwargs = model_init_kwargs(args, quantization_config)
    loaded, tokenizer = load(model, trust_remote_code=args.trust_remote_code, **kwargs)
    args.model_init_kwargs = None
    return loaded, tokenizer


def warn_unused_init_kwargs(args: Any, quantization_config) -> None:
    if quantization_config is not None or args.model_init_kwargs:
        logger.warning(
            "quantization_config and model_init_kwargs apply to a model loaded from a path; this model is already "
            "instantiated, so they are ignored (as trl.RewardTrainer does)."
        )


def tokenizer_for(model: PreTrainedModel, processing_class, trust_remote_code: bool):
    """`processing_class` (or the model's own tokenizer) with a pad token the model knows."""
    if processing_class is None:
        processing_class = AutoTokenizer.from_pretrained(
            model.config.name_or_path, trust_remote_code=trust_remote_code
        )
    prepare_tokenizer(processing_class, model)
    return processing_class


def use_sequence_classification(peft_config, kind: str = "ICRM", heads: str = "the two heads") -> None:
    """A pair reward model is a sequence classifier: its PEFT task type must be SEQ_CLS so the head trains and saves."""
    task_type = getattr(peft_config, "task_type", None)
    if peft_config is None or task_type == "SEQ_CLS":
        return
    if task_type is not None:
        logger.warning(
            "An %s model is a sequence classifier: PEFT task_type %s is replaced by SEQ_CLS so that %s are trained "
            "and saved with the adapter.",
            kind,
            task_type,
            heads,
        )
    peft_config.task_type = "SEQ_CLS"


def record_portable_base_model(adapter_dir: str) -> None:
    """Name the base model of a saved adapter portably (`embedded:...` rather than this machine's cache folder)."""
    path = os.path.join(adapter_dir, "adapter_config.json")
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as handle:
        adapter_config = json.load(handle)
    base = adapter_config.get("base_model_name_or_path")
    portable = portable_model_name(base) if base else base
    if portable != base:
        adapter_config["base_model_name_or_path"] = portable
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(adapter_config, handle, indent=2, sort_keys=True)


def check_responses(example: dict[str, Any], index: int, name: str) -> None:
    """Raise a `ValueError` naming the row and column of a response that is not text (a string or chat messages)."""
    for column in ("chosen", "rejected"):
        value = example[column]
        if not isinstance(value, str) and not (isinstance(value, list) and value):
            raise ValueError(
                f"Row {index} of the {name} dataset: {column!r} must be a string or a list of chat messages, got "
                f"{type(value).__name__}."
            )


def check_pair_dataset(dataset, trainer_name: str, dataset_name: str, method: str, why: str) -> None:
    """A non-empty map-style `datasets.Dataset` (`why` says what the trainer indexes it for)."""
    if not isinstance(dataset, Dataset):
        raise TypeError(
            f"{trainer_name} needs a map-style `datasets.Dataset` for {dataset_name} ({why}), got "
            f"{type(dataset).__name__}."
        )
    if len(dataset) == 0:
        raise ValueError(f"The {dataset_name} dataset is empty: {method} needs preference pairs.")


def apply_length_policy(dataset: Dataset, args: Any, dataset_name: str, index_column: str | None = None) -> Dataset:
    """Pairs whose longer side alone exceeds `max_length`: an error naming the first (`overlong_query="error"`) or
    dropped (`"skip"`, then `index_column` is renumbered)."""
    if args.max_length is None:
        return dataset
    lengths = [max(len(c), len(r)) for c, r in zip(dataset["chosen_ids"], dataset["rejected_ids"], strict=True)]
    overlong = [i for i, n in enumerate(lengths) if n > args.max_length]
    if not overlong:
        return dataset
    if args.overlong_query == "error":
        i = overlong[0]
        raise QueryTooLongError(
            f"{len(overlong)} pair(s) of the {dataset_name} dataset are longer than max_length="
            f"{args.max_length} without any demonstration, e.g. row {i} ({lengths[i]} tokens, prompt "
            f"{str(dataset[i].get('prompt'))[:80]!r}). The query is never cut: raise max_length, filter "
            "these rows, or set overlong_query='skip' to drop them."
        )
    logger.warning("Skipping %d overlong pair(s) of the %s dataset.", len(overlong), dataset_name)
    dataset = dataset.select([i for i, n in enumerate(lengths) if n <= args.max_length])
    if index_column is None:
        return dataset
    return dataset.map(lambda _, i: {index_column: i}, with_indices=True)


def collate_pairs(
    pairs: Sequence[tuple[Sequence[int], Sequence[int]]], pad_token_id: int, pad_to_multiple_of: int | None = None
) -> dict[str, torch.Tensor]:
    """TRL's preference batch of `(chosen_ids, rejected_ids)` pairs: `input_ids` and `attention_mask`, right-padded,
    the chosen rows first, then the rejected rows."""
    rows = [{"chosen_ids": list(chosen), "rejected_ids": list(rejected)} for chosen, rejected in pairs]
    return preference_collator(pad_token_id, pad_to_multiple_of).torch_call(rows)


class PairRewardTrainer(RewardTrainer):
    """The base of the pair reward trainers: `trl.RewardTrainer` with the method's model loading, per-pair metric
    records, saving and a model card.

    A subclass names its config class (`_config_class`), its method (`_name`, `_heads`), loader (`_load_model`) and
    settings (`_settings_from`, `_check_loaded_model`); it sets up its collator in `_setup`, records per-pair values
    in `compute_loss` with [`_record_pair_values`], summarizes them in `_pair_summary` and writes its card in
    `_model_card`.
    """

    _config_class: type
    _name: str
    _heads: str = "the head"

    def __init__(
        self,
        model: str | PreTrainedModel,
        args: Any = None,
        data_collator: Any = None,
        train_dataset: Dataset | None = None,
        eval_dataset: Dataset | dict[str, Dataset] | None = None,
        processing_class=None,
        compute_metrics: Callable | None = None,
        callbacks: list | None = None,
        optimizers: tuple = (None, None),
        optimizer_cls_and_kwargs: tuple | None = None,
        preprocess_logits_for_metrics: Callable | None = None,
        peft_config=None,
        quantization_config=None,
    ):
        args = default_args(args, model, self._config_class, self._name)
        model, processing_class, settings = self._model_for_training(
            model, args, processing_class, quantization_config
        )
        use_sequence_classification(peft_config, self._name, self._heads)
        data_collator = self._setup(settings, processing_class, args, data_collator)
        self._init_pair_records()
        with self._parent_init_view(model):
            super().__init__(
                model=model, args=args, data_collator=data_collator, train_dataset=train_dataset,
                eval_dataset=eval_dataset, processing_class=processing_class, compute_metrics=compute_metrics,
                callbacks=callbacks, optimizers=optimizers, optimizer_cls_and_kwargs=optimizer_cls_and_kwargs,
                preprocess_logits_for_metrics=preprocess_logits_for_metrics, peft_config=peft_config,
            )  # fmt: skip
        check_reward_trainer(self)
        self._after_init(args)

    # Hooks of a method
    @staticmethod
    def _load_model(model_name_or_path, settings, **kwargs) -> tuple[PreTrainedModel, Any]:
        raise NotImplementedError

    def _settings_from(self, args: Any) -> Any:
        """The method's settings in `args` (its config's `<name>_settings()`, e.g. `ICRMConfig.icrm_settings`)."""
        return getattr(args, f"{self._name.lower()}_settings")()

    def _check_loaded_model(self, model: PreTrainedModel) -> None:
        """Raise a `ValueError` if an instantiated `model` is not one of the method's models."""

    def _setup(self, settings: Any, processing_class, args: Any, data_collator: Any) -> Any:
        """Keep the method's settings and return the collator to train with."""
        raise NotImplementedError

    def _after_init(self, args: Any) -> None:
        """What the method does once `trl.RewardTrainer.__init__` has run (nothing by default)."""

    def _parent_init_view(self, model: PreTrainedModel):
        """The context in which `trl.RewardTrainer.__init__` runs (none by default)."""
        return contextlib.nullcontext()

    def _pair_summary(self, mode: str) -> dict[str, float]:
        """The metrics logged from the per-pair records since the last log."""
        return {}

    def _model_card(self, model_name: str, base_model: str | None, tags: list[str], dataset_name: str | None) -> str:
        raise NotImplementedError

    def _model_for_training(self, model: str | PreTrainedModel, args: Any, processing_class, quantization_config=None):
        """(model, tokenizer, settings): a path loaded with the method's head (new and seeded on a plain backbone,
        quantized with `quantization_config` if given), or a loaded model checked against the settings in `args`."""
        settings = self._settings_from(args)
        if isinstance(model, (str, os.PathLike)):
            model, tokenizer = load_model_from_path(
                model, args, quantization_config, partial(self._load_model, settings=settings)
            )
            processing_class = processing_class or tokenizer
        else:
            self._check_loaded_model(model)
            saved = getattr(model.config, self._name.lower(), None)
            if saved is not None and type(settings).from_config(model.config) != settings:
                raise ValueError(
                    f"The model's saved {self._name} settings differ from those in `args`; a model keeps the settings "
                    f"it was trained with. Model: {type(settings).from_config(model.config)}; args: {settings}."
                )
            settings.save_to_config(model.config)
            warn_unused_init_kwargs(args, quantization_config)
        return model, tokenizer_for(model, processing_class, args.trust_remote_code), settings

    def _center_rewards(self, loss: torch.Tensor, rewards_a: torch.Tensor, rewards_b: torch.Tensor) -> torch.Tensor:
        """`loss` plus TRL's centering term, `center_rewards_coefficient * mean((r_a + r_b) ** 2)`, when it is set."""
        if self.args.center_rewards_coefficient is None:
            return loss
        return loss + self.args.center_rewards_coefficient * torch.mean((rewards_a + rewards_b) ** 2)

    def _init_pair_records(self) -> None:
        self._pair_records: dict[str, dict[str, list[torch.Tensor]]] = {
            mode: defaultdict(list) for mode in ("train", "eval")
        }

    @torch.no_grad()
    def _record_pair_values(self, mode: str, attention_mask: torch.Tensor, values: dict[str, torch.Tensor]) -> None:
        """Count the batch's tokens (training) and record its per-pair `values`, gathered from every process."""
        if mode == "train":
            tokens = self.accelerator.gather_for_metrics(attention_mask.sum()).sum().item()
            self._total_train_tokens += tokens // self._tp_size
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
        for name, value in values.items():
            gathered = self.accelerator.gather_for_metrics(value.detach().float())
            self._pair_records[mode][name].append(gathered.cpu())

    def _take_pair_records(self, mode: str) -> dict[str, torch.Tensor]:
        """Every per-pair value recorded since the last call (then forgotten), concatenated by name."""
        recorded = self._pair_records[mode]
        records = {name: torch.cat(values) for name, values in recorded.items()}
        recorded.clear()
        return records

    def evaluate(self, eval_dataset=None, ignore_keys: list[str] | None = None, metric_key_prefix: str = "eval"):
        """[`~transformers.Trainer.evaluate`]; the pair metrics are named as the Trainer names its own:
        `<metric_key_prefix>_accuracy`, and `eval_<name>_accuracy` for each of a dict of datasets."""
        outer = getattr(self, "_metric_key_prefix", "eval")
        self._metric_key_prefix = metric_key_prefix
        try:
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        finally:
            self._metric_key_prefix = outer

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """TRL's `RewardTrainer.log` with the pair metrics ([`_pair_summary`]), the evaluation metrics under the
        prefix of the running evaluation (TRL always writes `eval_`)."""
        mode = "train" if self.model.training else "eval"
        for key, value in self._pair_summary(mode).items():
            self._metrics[mode][key] = [value]
        if not self.model.training and self._metrics["eval"]:
            prefix = getattr(self, "_metric_key_prefix", "eval")
            logs.update(
                {f"{prefix}_{key}": sum(values) / len(values) for key, values in self._metrics["eval"].items()}
            )
            self._metrics["eval"].clear()
        super().log(logs, start_time)

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        """[`~transformers.Trainer._load_optimizer_and_scheduler`], refusing a checkpoint that lacks the optimizer's
        or the schedule's state: transformers would silently go on with fresh ones, a different run from the
        interrupted one (`resume_with_fresh_optimizer=True` allows it, with a warning)."""
        if checkpoint is not None and not self.is_deepspeed_enabled:
            names = os.listdir(checkpoint) if os.path.isdir(checkpoint) else []
            missing = [
                what
                for what, stem in (("optimizer.pt", "optimizer"), ("scheduler.pt", "scheduler"))
                if not any(name.startswith(stem) or (name.startswith("rank") and stem in name) for name in names)
            ]
            if missing and not getattr(self.args, "resume_with_fresh_optimizer", False):
                raise FileNotFoundError(
                    f"The checkpoint {checkpoint} has no {' and no '.join(missing)}: resuming would start a fresh "
                    "optimizer or learning-rate schedule and train differently from the interrupted run. Resume from "
                    "a complete checkpoint, or set resume_with_fresh_optimizer=True to go on anyway."
                )
            if missing:
                logger.warning("Resuming from %s without %s: fresh state instead.", checkpoint, " or ".join(missing))
        super()._load_optimizer_and_scheduler(checkpoint)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """[`~transformers.Trainer.save_model`]; a PEFT adapter folder (checkpoints too) also keeps the model's
        settings and head config, in the base model's config saved beside the adapter. The folder then holds exactly
        this model: the weights of a model saved there before are removed first, and a save that does not finish
        leaves a folder that loaders refuse ([`~trl_icrm.utils.io.saving_model`])."""
        output_dir = output_dir or self.args.output_dir
        with saving_model(output_dir, enabled=self.args.should_save):
            super().save_model(output_dir, _internal_call)
            if self.args.should_save and hasattr(self.model, "peft_config"):
                self.model.get_base_model().config.save_pretrained(output_dir)
                record_portable_base_model(output_dir)
        if self.args.should_save and not _internal_call:
            self.create_model_card(output_dir=output_dir)

    def create_model_card(
        self,
        model_name: str | None = None,
        dataset_name: str | None = None,
        tags: str | list[str] | None = None,
        output_dir: str | None = None,
    ) -> None:
        """Write the method's model card (`README.md`, [`_model_card`]): the base model, how to score the model and
        its settings (TRL's reward-model card would offer a `pipeline` quick start that these models cannot serve)."""
        if not self.is_world_process_zero():
            return
        output_dir = output_dir or self.args.output_dir
        base = getattr(unwrap_peft(self.model).config, "name_or_path", None)
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        card = self._model_card(
            model_name or os.path.basename(os.path.normpath(output_dir)),
            portable_model_name(base) if base else None,
            [*tags, *self._tag_names],
            dataset_name,
        )
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, "README.md"), "w", encoding="utf-8") as handle:
            handle.write(card)


__all__ = [
    "PairRewardTrainer",
    "apply_length_policy",
    "check_pair_dataset",
    "check_responses",
    "collate_pairs",
    "default_args",
    "load_model_from_path",
    "model_init_kwargs",
    "record_portable_base_model",
    "tokenizer_for",
    "use_sequence_classification",
    "warn_unused_init_kwargs",
]

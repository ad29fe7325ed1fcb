# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""[`ICRMRewardTrainer`]: trains a Variational In-Context Reward Model on the machinery of `trl.RewardTrainer`."""

from __future__ import annotations

import contextlib
import logging
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from torch.utils.data import Sampler
from transformers import PreTrainedModel, TrainerCallback
from transformers.modeling_outputs import SequenceClassifierOutputWithPast

from .._trl_compat import data_collator_mixin
from ..demonstrations import DemonstrationBank, DemonstrationRenderer, seeded_rng
from ..evaluation.calibration import expected_calibration_error
from ..icrm.modeling import ICRMSettings, load_icrm_model, split_heads
from ..icrm.objective import icrm_loss
from ..models import (
    classify_suffixes,
    encode_prefix,
    packed_pair_logits,
    pad_right,
    prefix_sharing_problem,
    unwrap_peft,
)
from .base import PairRewardTrainer, apply_length_policy, check_pair_dataset, check_responses, collate_pairs
from .icrm_config import ICRMConfig
from .model_card import icrm_model_card


logger = logging.getLogger(__name__)

_COLUMNS = ["chosen_ids", "rejected_ids", "icrm_index", "icrm_pool", "icrm_label", "icrm_unit"]

_PAIR_METRICS = {
    "accuracy": "correct",
    "mean_mu": "mu",
    "mean_tau": "tau",
    "kl": "kl",
    "nll": "nll",
    "margin": "margin",
    "num_demonstrations": "k",
    "dropped_demonstrations": "dropped",
}
"""Logged metric -> recorded per-pair value; each is logged as its mean over the pairs since the last log."""


class UnitShuffleSampler(Sampler[int]):
    """Yields the rows of each unit (e.g. a pair and its flipped twin) one after another, units in a random order
    seeded by (seed, epoch): batches keep the rows of a unit together. The trainer calls `set_epoch` before every
    epoch, so a run resumed in a later epoch sees the same order as the uninterrupted run; without it, every pass
    moves to the next epoch's order."""

    def __init__(self, units: Sequence[Hashable], seed: int = 0):
        members: dict[Hashable, list[int]] = defaultdict(list)
        for i, unit in enumerate(units):
            members[unit].append(i)
        self.units = list(members.values())
        self.seed = seed
        self.epoch = 0
        self.num_rows = len(units)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_rows

    def __iter__(self) -> Iterator[int]:
        order = seeded_rng(self.seed, self.epoch).permutation(len(self.units))
        self.epoch += 1
        for u in order:
            yield from self.units[u]


def pool_key(dataset_name: str, serial: int) -> str:
    """The key of a prepared dataset's demonstration pool: its name (which seeds the draws) and the serial number of
    its preparation (its identity: two datasets prepared under one name never share a pool)."""
    return f"{dataset_name}/{serial}"


def pool_name(key: str) -> str:
    """The dataset name of a pool key."""
    return key.split("/", 1)[0]


@dataclass
class DemonstrationPool:
    """The demonstrations one prepared dataset offers: each row's own rendered tokens, indexed by group (drawn by the
    one [`~trl_icrm.demonstrations.DemonstrationBank`], keyed by row so that a row never draws itself)."""

    demonstrations: Dataset  # one column, "demo_ids"
    groups: list[str]
    members: dict[str, np.ndarray]

    def __post_init__(self):
        rows = {group: [int(i) for i in indices] for group, indices in self.members.items()}
        self.bank = DemonstrationBank(rows, keys=rows)

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> DemonstrationPool:
        """The pool of a prepared dataset (its `demo_ids` and `icrm_group` columns)."""
        groups = dataset["icrm_group"]
        members = defaultdict(list)
        for i, g in enumerate(groups):
            members[g].append(i)
        return cls(dataset.select_columns(["demo_ids"]), groups, {g: np.asarray(m) for g, m in members.items()})

    def draw(self, index: int, rng: np.random.Generator, min_k: int, max_k: int) -> list[list[int]]:
        """K ~ U{min_k..max_k} demonstrations of row `index`'s group, never the row itself."""
        chosen = self.bank.draw_between(self.groups[index], min_k, max_k, rng, exclude=int(index))
        return [self.demonstrations[j]["demo_ids"] for j in chosen]


@dataclass
class DataCollatorForICRM(data_collator_mixin()):
    """Draws each pair's demonstrations, assembles both sides under the length policy and pads like TRL.

    Draws are seeded by (seed, epoch, dataset name, row): repeatable, independent of batch composition, and new each
    epoch for the training pool (evaluation pools ignore the epoch). Pools are keyed by dataset name and identity
    (`"<name>/<serial>"`), so each prepared dataset draws from its own pairs. Returns TRL's preference batch (`input_ids`,
    `attention_mask`: chosen rows first, then rejected) plus `icrm_labels`, `icrm_num_demonstrations`,
    `icrm_num_dropped` and `icrm_prefix_lengths` (tokens the two sides of a pair share).
    """

    renderer: DemonstrationRenderer
    pad_token_id: int
    min_demonstrations: int = 0
    max_demonstrations: int = 8
    max_length: int | None = None
    seed: int = 0
    pad_to_multiple_of: int | None = None
    epoch: int = 0
    train_pool: str = "train"
    return_tensors: str = "pt"
    pools: dict[str, DemonstrationPool] = field(default_factory=dict)

    @classmethod
    def from_config(cls, renderer: DemonstrationRenderer, pad_token_id: int, args: ICRMConfig) -> DataCollatorForICRM:
        """The collator of an [`ICRMConfig`]: its demonstration range, length bound, seed and padding multiple."""
        return cls(
            renderer=renderer,
            pad_token_id=pad_token_id,
            min_demonstrations=args.min_demonstrations,
            max_demonstrations=args.max_demonstrations,
            max_length=args.max_length,
            seed=args.seed if args.demonstration_seed is None else args.demonstration_seed,
            pad_to_multiple_of=args.pad_to_multiple_of if isinstance(args.pad_to_multiple_of, int) else None,
        )

    def rng(self, pool: str, index: int) -> np.random.Generator:
        name = pool_name(pool)
        epoch = self.epoch if name == self.train_pool else 0
        return seeded_rng(self.seed, epoch, name, int(index))

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        pairs, labels, kept, dropped, prefix_lengths = [], [], [], [], []
        for example in examples:
            key, index = example["icrm_pool"], int(example["icrm_index"])
            demonstrations = self.pools[key].draw(
                index, self.rng(key, index), self.min_demonstrations, self.max_demonstrations
            )
            pair = self.renderer.assemble_pair(
                example["chosen_ids"],
                example["rejected_ids"],
                demonstrations,
                self.max_length,
                name=f"{pool_name(key)} example {index}",
            )
            pairs.append((pair.chosen_ids, pair.rejected_ids))
            labels.append(example["icrm_label"])
            kept.append(pair.num_demonstrations)
            dropped.append(pair.num_dropped)
            prefix_lengths.append(pair.prefix_length)
        batch = collate_pairs(pairs, self.pad_token_id, self.pad_to_multiple_of)
        batch["icrm_labels"] = torch.tensor(labels, dtype=torch.float)
        batch["icrm_num_demonstrations"] = torch.tensor(kept)
        batch["icrm_num_dropped"] = torch.tensor(dropped)
        batch["icrm_prefix_lengths"] = torch.tensor(prefix_lengths)
        return batch


def _is_checkpointing(model: PreTrainedModel) -> bool:
    """Whether activation (gradient) checkpointing is on, under the attribute's current or former name."""
    flag = getattr(model, "is_activation_checkpointing", None)
    return bool(getattr(model, "is_gradient_checkpointing", False) if flag is None else flag)


class _RedrawDemonstrationsEachEpoch(TrainerCallback):
    def __init__(self, collator: DataCollatorForICRM):
        self.collator = collator

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.collator.epoch = int(state.epoch or 0)


@contextlib.contextmanager
def _single_label_view(model: PreTrainedModel):
    """`trl.RewardTrainer` checks that a model instance has `num_labels == 1`; an ICRM model has two heads by design.
    Show it one label for the duration of the parent's `__init__`, then restore the two."""
    config = model.config
    id2label, label2id = config.id2label, config.label2id
    config.id2label, config.label2id = {0: id2label[0]}, {id2label[0]: 0}
    try:
        yield
    finally:
        config.id2label, config.label2id = id2label, label2id


def _check_row(example: dict[str, Any], index: int, group_column: str, label_column: str | None, name: str) -> None:
    """Raise a `ValueError` naming the row and column of a response that is not text, a missing group or a
    non-numeric label."""
    check_responses(example, index, name)
    if example[group_column] is None:
        raise ValueError(f"Row {index} of the {name} dataset has no group (column {group_column!r} is None).")
    if label_column is not None:
        label = example[label_column]
        if not isinstance(label, (int, float)):
            raise ValueError(
                f"Row {index} of the {name} dataset: label column {label_column!r} must hold numbers in [0, 1], got "
                f"{label!r}."
            )


def _check_preference_columns(dataset, args: ICRMConfig, dataset_name: str) -> None:
    """A map-style dataset with preference pairs, a group column and (for training) the batch-together column."""
    check_pair_dataset(dataset, "ICRMRewardTrainer", dataset_name, "ICRM", "demonstrations are drawn by index")
    columns = dataset.column_names
    if "icrm_pool" in columns:
        return
    together = args.batch_together_column if dataset_name == "train" else None
    if together is not None and together not in columns:
        raise ValueError(f"The {dataset_name} dataset lacks `batch_together_column={together!r}` (has {columns}).")
    missing = [c for c in ("chosen", "rejected", args.group_column) if c not in columns]
    if missing:
        raise ValueError(
            f"The {dataset_name} dataset lacks the column(s) {missing} (has {columns}). ICRM needs preference "
            f"pairs (prompt/chosen/rejected) and a group column (`group_column={args.group_column!r}`) naming the "
            "preference distribution each pair comes from."
        )


def _check_group_sizes(groups: Sequence[str], args: ICRMConfig, dataset_name: str) -> None:
    """Every group offers `min_demonstrations` other pairs (an error otherwise); a warning names groups that cannot
    offer `max_demonstrations`."""
    sizes = Counter(groups)
    too_small = {g: n for g, n in sizes.items() if n - 1 < args.min_demonstrations}
    if too_small:
        raise ValueError(
            f"Groups of the {dataset_name} dataset with too few pairs for min_demonstrations="
            f"{args.min_demonstrations} (each pair needs that many others of its group): {too_small}."
        )
    capped = {g: n for g, n in sizes.items() if n - 1 < args.max_demonstrations}
    if capped:
        logger.warning(
            "Groups of the %s dataset smaller than max_demonstrations + 1 draw at most (size - 1): %s",
            dataset_name,
            capped,
        )


class ICRMRewardTrainer(PairRewardTrainer):
    """
    Trainer for Variational In-Context Reward Models (ICRM).

    A subclass of [`~trl.RewardTrainer`] that overrides only data preparation (each pair gets demonstrations of its
    own group, re-drawn every epoch), the loss (the negative ELBO of [`trl_icrm.icrm.objective.icrm_loss`]) and the metrics
    (accuracy, accuracy by number of demonstrations, mean mu and tau, expected calibration error). The model is an
    `AutoModelForSequenceClassification` with two outputs (reward, confidence); PEFT works through `peft_config` as
    in TRL.

    Example:

    ```python
    from datasets import Dataset
    from trl_icrm import ICRMConfig, ICRMRewardTrainer

    dataset = Dataset.from_list(
        [
            {"prompt": "Describe the sea.", "chosen": "Blue.", "rejected": "The sea is vast and deep.", "group": "concise"},
            {"prompt": "Describe the sea.", "chosen": "The sea is vast and deep.", "rejected": "Blue.", "group": "detailed"},
            ...,
        ]
    )
    trainer = ICRMRewardTrainer(
        model="embedded:SmolLM2-135M-Instruct",
        args=ICRMConfig(output_dir="icrm-model", max_demonstrations=4),
        train_dataset=dataset,
    )
    trainer.train()
    ```

    Args:
        model (`str` or [`~transformers.PreTrainedModel`]):
            A causal-LM backbone or an ICRM model (path, hub id, or `"embedded:SmolLM2-135M-Instruct"`), loaded with a
            two-output head, or an instantiated `AutoModelForSequenceClassification` with `num_labels=2`.
        args ([`ICRMConfig`], *optional*):
            Configuration; defaults to `ICRMConfig("<model>-ICRM")`.
        train_dataset ([`~datasets.Dataset`]):
            Preference pairs (`prompt`/`chosen`/`rejected`, standard or conversational) with a group column.
        eval_dataset ([`~datasets.Dataset`] or `dict[str, Dataset]`, *optional*):
            Pairs for evaluation; demonstrations are drawn from the same evaluation set and group.
        peft_config ([`~peft.PeftConfig`], *optional*):
            PEFT configuration (e.g. LoRA); `task_type` defaults to `"SEQ_CLS"` so the heads are trained and saved.
        quantization_config ([`~transformers.BitsAndBytesConfig`], *optional*):
            Quantization of a model loaded from a path (QLoRA with `peft_config`), as in `trl.RewardTrainer`.
        Other arguments are those of [`~trl.RewardTrainer`].
    """

    _tag_names = ["trl", "reward-trainer", "icrm"]
    _name = "ICRM"

    _config_class = ICRMConfig
    _heads = "the two heads"

    @staticmethod
    def _load_model(model_name_or_path, **kwargs):
        return load_icrm_model(model_name_or_path, **kwargs)  # the module's loader, read when called

    def _after_init(self, args: ICRMConfig) -> None:
        self.add_callback(_RedrawDemonstrationsEachEpoch(self._icrm_collator))
        self._share_prefix = self._resolve_prefix_sharing(args.share_demonstration_prefix)

    def _check_loaded_model(self, model: PreTrainedModel) -> None:
        if getattr(model.config, "num_labels", None) != 2:
            raise ValueError(
                f"An ICRM model has two outputs (reward, confidence); got num_labels={model.config.num_labels}. "
                "Load it with `trl_icrm.load_icrm_model` or pass a model path."
            )

    def _setup(self, settings: ICRMSettings, processing_class, args: ICRMConfig, data_collator):
        self._icrm_settings = settings
        self._icrm_renderer = DemonstrationRenderer(processing_class, settings.template)
        self._icrm_collator = data_collator or DataCollatorForICRM.from_config(
            self._icrm_renderer, processing_class.pad_token_id, args
        )
        return self._icrm_collator

    def _parent_init_view(self, model: PreTrainedModel):
        return _single_label_view(model)

    def _resolve_prefix_sharing(self, wanted: bool | None) -> bool:
        """Whether pairs are scored with their shared demonstration prefix encoded once (see `ICRMConfig`)."""
        blockers = [
            reason
            for reason, present in (
                ("more than one process", self.accelerator.num_processes > 1),
                ("DeepSpeed or FSDP", self.is_deepspeed_enabled or self.is_fsdp_enabled),
            )
            if present
        ]
        problem = prefix_sharing_problem(self.model)
        if problem is not None and wanted is not False:
            logger.warning("share_demonstration_prefix is off for this model: %s.", problem)
            return False
        if wanted is None:
            return not blockers and self.accelerator.device.type == "cpu"
        if wanted and blockers:
            logger.warning("share_demonstration_prefix is off: not supported with %s.", ", ".join(blockers))
            return False
        return wanted

    def _shared_prefix_logits(
        self, model, input_ids: torch.Tensor, attention_mask: torch.Tensor, prefix_lengths: torch.Tensor
    ) -> torch.Tensor:
        """Two-head outputs of TRL's preference batch (chosen rows, then rejected), with each pair's shared prefix
        encoded once: the same values as the batched forward, without padding one pair to another.

        Without gradient checkpointing, the prefix's key-value cache is read by both responses. With it (a cache
        cannot pass between checkpointed layers), each pair is one sequence `prefix + chosen + rejected` whose
        attention mask keeps the rejected response from seeing the chosen one ([`packed_pair_logits`])."""
        pad_token_id = self.processing_class.pad_token_id
        num_pairs = len(prefix_lengths)
        packed = model.training and _is_checkpointing(unwrap_peft(model))
        logits: list[torch.Tensor] = []
        for i, length in enumerate(prefix_lengths.tolist()):
            rows = [input_ids[j][attention_mask[j].bool()] for j in (i, num_pairs + i)]
            if packed:
                logits.append(packed_pair_logits(model, rows[0], rows[1], length, pad_token_id))
                continue
            suffixes, mask = pad_right([row[length:] for row in rows], pad_token_id)
            cache = encode_prefix(model, rows[0][:length]) if length else None
            logits.append(classify_suffixes(model, suffixes, mask, pad_token_id, cache))
        return torch.cat([torch.stack([pair[0] for pair in logits]), torch.stack([pair[1] for pair in logits])])

    def _pair_outputs(self, model, inputs: dict[str, torch.Tensor], prefix_lengths: torch.Tensor | None):
        """Two-head outputs of the batch: shared-prefix where on, else (and, with one warning, where a model rejects
        the shared path's masks at run time) the batched forward."""
        if self._share_prefix and prefix_lengths is not None:
            try:
                logits = self._shared_prefix_logits(
                    model, inputs["input_ids"], inputs["attention_mask"], prefix_lengths
                )
                return SequenceClassifierOutputWithPast(logits=logits)
            except (TypeError, AttributeError, KeyError) as error:
                self._share_prefix = False
                logger.warning("share_demonstration_prefix is off: this model rejects its masks (%s).", error)
        return model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], use_cache=False)

    # Data
    def _prepare_dataset(self, dataset, processing_class, args: ICRMConfig, dataset_name: str) -> Dataset:
        """TRL's dataset hook: tokenize the pairs and their own demonstrations, apply the length policy, check the
        groups, and register the dataset's demonstration pool with the collator (demonstrations are drawn from it
        by row index when batches are collated)."""
        _check_preference_columns(dataset, args, dataset_name)
        if "icrm_pool" in dataset.column_names:  # already prepared
            return dataset
        key = pool_key(dataset_name, len(self._icrm_collator.pools))
        dataset = self._encode_pairs(dataset, args, dataset_name, key)
        dataset = apply_length_policy(dataset, args, dataset_name, "icrm_index")
        _check_group_sizes(dataset["icrm_group"], args, dataset_name)
        self._icrm_collator.pools[key] = DemonstrationPool.from_dataset(dataset)
        return dataset.remove_columns([c for c in dataset.column_names if c not in _COLUMNS])

    def _encode_pairs(self, dataset: Dataset, args: ICRMConfig, dataset_name: str, key: str) -> Dataset:
        """Token ids of both responses and of the pair as a demonstration, with its index, group, label and unit."""
        renderer, group_column, label_column = self._icrm_renderer, args.group_column, args.label_column
        has_labels = label_column in dataset.column_names
        together = args.batch_together_column if dataset_name == "train" else None

        def encode(example: dict[str, Any], index: int) -> dict[str, Any]:
            _check_row(example, index, group_column, label_column if has_labels else None, dataset_name)
            prompt = example.get("prompt")
            demonstration = {
                "prompt": "" if prompt is None else prompt,
                **{k: example[k] for k in ("chosen", "rejected")},
            }
            return {
                "chosen_ids": renderer.encode_query(prompt, example["chosen"]),
                "rejected_ids": renderer.encode_query(prompt, example["rejected"]),
                "demo_ids": renderer.encode_demonstration(demonstration),
                "icrm_index": index,
                "icrm_group": str(example[group_column]),
                "icrm_pool": key,
                "icrm_label": float(example[label_column]) if has_labels else 1.0,
                **({"icrm_unit": str(example[together])} if together else {}),
            }

        dataset = dataset.map(
            encode, with_indices=True, num_proc=args.dataset_num_proc, desc=f"Tokenizing {dataset_name} dataset"
        )
        if has_labels and any(not 0.0 <= z <= 1.0 for z in dataset["icrm_label"]):
            raise ValueError(f"Column {label_column!r} of the {dataset_name} dataset must hold labels in [0, 1].")
        ties = sum(c == r for c, r in zip(dataset["chosen_ids"], dataset["rejected_ids"], strict=True))
        if ties:
            logger.warning(
                "%d pair(s) of the %s dataset have chosen == rejected: they teach nothing.", ties, dataset_name
            )
        return dataset

    def _get_train_sampler(self, train_dataset: Dataset | None = None):
        train_dataset = self.train_dataset if train_dataset is None else train_dataset
        if self.args.batch_together_column is None or "icrm_unit" not in train_dataset.column_names:
            return super()._get_train_sampler(train_dataset)
        return UnitShuffleSampler(train_dataset["icrm_unit"], seed=self.args.seed)

    # Loss and metrics
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        labels = inputs.pop("icrm_labels")
        num_demonstrations = inputs.pop("icrm_num_demonstrations")
        num_dropped = inputs.pop("icrm_num_dropped")
        prefix_lengths = inputs.pop("icrm_prefix_lengths", None)
        outputs = self._pair_outputs(model, inputs, prefix_lengths)
        rewards, confidence_logits = split_heads(outputs.logits)
        rewards_chosen, rewards_rejected = rewards.chunk(2)
        confidence_chosen, confidence_rejected = confidence_logits.chunk(2)
        settings = self._icrm_settings
        out = icrm_loss(
            rewards_chosen,
            rewards_rejected,
            confidence_chosen,
            confidence_rejected,
            labels.to(rewards.dtype),
            prior_alpha=settings.prior_alpha,
            prior_beta=settings.prior_beta,
            kl_coef=settings.kl_coef,
            eps=settings.eps,
        )
        loss = self._center_rewards(out.loss, rewards_chosen, rewards_rejected)

        margin = (rewards_chosen - rewards_rejected).detach()
        self._record_metrics(mode, inputs["attention_mask"], out, labels, margin, num_demonstrations, num_dropped)
        return (loss, outputs) if return_outputs else loss

    @torch.no_grad()
    def _record_metrics(self, mode: str, attention_mask, out, labels, margin, num_demonstrations, num_dropped) -> None:
        """Gather the batch's per-pair values (from every process) and record them; `log` turns them into means over
        pairs, so no metric depends on the batch size."""
        mu = out.mu.detach()
        values = {
            "correct": ((mu > 0.5) == (labels > 0.5)).float(),
            "mu": mu,
            "tau": out.tau,
            "kl": out.kl,
            "nll": out.nll,
            "label": labels.float(),
            "k": num_demonstrations.float(),
            "dropped": num_dropped.float(),
            "margin": margin,
        }
        self._record_pair_values(mode, attention_mask, values)

    def evaluate(
        self,
        eval_dataset: Dataset | dict[str, Dataset] | str | None = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
        num_demonstrations: int | None = None,
    ) -> dict[str, float]:
        """[`~trl.RewardTrainer.evaluate`], optionally with exactly `num_demonstrations` per pair (as many as the
        pair's group offers) instead of K drawn from [K_min, K_max]."""
        if num_demonstrations is None:
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        if num_demonstrations < 0:
            raise ValueError(f"num_demonstrations must be >= 0, got {num_demonstrations}.")
        # This call's batches come from a copy of the collator with K fixed (the pools are shared, not copied); the
        # trainer's collator itself is never changed.
        self.data_collator = replace(
            self._icrm_collator, min_demonstrations=num_demonstrations, max_demonstrations=num_demonstrations
        )
        try:
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        finally:
            self.data_collator = self._icrm_collator

    def _pair_summary(self, mode: str) -> dict[str, float]:
        """Metrics of every pair recorded since the last log, each a mean over pairs (never of batch means): accuracy,
        mean mu / tau, KL, NLL, margin, demonstrations used and dropped; at evaluation also accuracy by number of
        demonstrations and the expected calibration error."""
        records = self._take_pair_records(mode)
        if not records:
            return {}
        summary = {name: records[key].mean().item() for name, key in _PAIR_METRICS.items()}
        if mode == "eval":
            for k in records["k"].unique().tolist():
                summary[f"accuracy_k{int(k)}"] = records["correct"][records["k"] == k].mean().item()
            # Calibration of P(first side preferred) over both orders of each pair, so outcomes are not all 1.
            probabilities = torch.cat([records["mu"], 1 - records["mu"]])
            outcomes = torch.cat([records["label"], 1 - records["label"]])
            summary["ece"] = expected_calibration_error(probabilities, outcomes, self.args.ece_bins)
        return summary

    def _model_card(self, model_name: str, base_model: str | None, tags: list[str], dataset_name: str | None) -> str:
        """The ICRM model card: the base model, that the model reads demonstrations, how to score with
        [`~trl_icrm.ICRMReward`], its settings and the method's citation."""
        return icrm_model_card(
            model_name,
            base_model,
            self._icrm_settings.to_dict(),
            self.args.min_demonstrations,
            self.args.max_demonstrations,
            self.args.max_length,
            tags=tags,
            dataset_name=dataset_name,
        )

    def demonstration_pools(self) -> dict[str, DemonstrationPool]:
        """The demonstration pools of the prepared datasets, by key (`"<dataset name>/<serial>"`)."""
        return dict(self._icrm_collator.pools)

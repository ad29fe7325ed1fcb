# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""[`VRMRewardTrainer`]: trains a variational reward model (VRM) on the machinery of `trl.RewardTrainer`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from datasets import Dataset
from transformers import PreTrainedModel

from .._trl_compat import data_collator_mixin
from ..demonstrations import DemonstrationRenderer
from ..models import unwrap_peft
from ..vrm.modeling import VRMHead, VRMSettings, encode_prompt, load_vrm_model, prompt_length, vrm_forward
from ..vrm.objective import mean_weights, vrm_loss
from .base import PairRewardTrainer, apply_length_policy, check_pair_dataset, check_responses, collate_pairs
from .model_card import vrm_model_card
from .vrm_config import VRMConfig


logger = logging.getLogger(__name__)

_COLUMNS = ["chosen_ids", "rejected_ids", "vrm_prompt_length"]

_PAIR_METRICS = ("accuracy", "margin", "nll", "kl_w", "kl_z", "supervision", "weight_entropy", "concentration")
"""Per-pair values logged as their means over the pairs since the last log."""


@dataclass
class DataCollatorForVRM(data_collator_mixin()):
    """TRL's preference batch (`input_ids`, `attention_mask`: chosen rows, then rejected) plus `vrm_prompt_lengths`,
    the prompt tokens of each pair (shared by both sides)."""

    pad_token_id: int
    pad_to_multiple_of: int | None = None
    return_tensors: str = "pt"

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        pairs = [(example["chosen_ids"], example["rejected_ids"]) for example in examples]
        batch = collate_pairs(pairs, self.pad_token_id, self.pad_to_multiple_of)
        batch["vrm_prompt_lengths"] = torch.tensor([int(example["vrm_prompt_length"]) for example in examples])
        return batch


class VRMRewardTrainer(PairRewardTrainer):
    """
    Trainer for variational reward models (VRM): latent objective weights w ~ q(w | x) on the simplex, set by the
    prompt, and semantic features z ~ q(z | x, y) of each response; the reward is r = w^T (G z + b).

    A subclass of [`~trl.RewardTrainer`] that overrides only data preparation (it also records where each prompt
    ends), the loss (the negative ELBO plus supervision of [`trl_icrm.vrm.objective.vrm_loss`]) and the metrics
    (accuracy of the mean-path reward, KL terms, the entropy of E[w]). The collation, the PEFT path and saving are
    those of [`ICRMRewardTrainer`] (`trl_icrm.trainer.base`).

    Example:

    ```python
    from datasets import Dataset
    from trl_icrm import VRMConfig, VRMRewardTrainer

    dataset = Dataset.from_list([{"prompt": "2+2?", "chosen": "4", "rejected": "5"}, ...])
    trainer = VRMRewardTrainer(
        model="embedded:SmolLM2-135M-Instruct",
        args=VRMConfig(output_dir="vrm-model", num_objectives=16, num_features=4),
        train_dataset=dataset,
    )
    trainer.train()
    trainer.save_model()  # then: trl_icrm.load_reward("vrm-model")
    ```

    Args:
        model (`str` or [`~transformers.PreTrainedModel`]):
            A causal-LM backbone (a new VRM head is added), a saved VRM model, or a model loaded with
            [`~trl_icrm.vrm.modeling.load_vrm_model`].
        args ([`VRMConfig`], *optional*): Configuration; defaults to `VRMConfig("<model>-VRM")`.
        train_dataset ([`~datasets.Dataset`]): Preference pairs (`prompt`/`chosen`/`rejected`, standard or
            conversational).
        eval_dataset ([`~datasets.Dataset`] or `dict[str, Dataset]`, *optional*): Pairs for evaluation.
        peft_config ([`~peft.PeftConfig`], *optional*): PEFT configuration (e.g. LoRA); `task_type` is SEQ_CLS so
            the VRM head is trained and saved with the adapter.
        quantization_config ([`~transformers.BitsAndBytesConfig`], *optional*): As in `trl.RewardTrainer`.
        Other arguments are those of [`~trl.RewardTrainer`].
    """

    _tag_names = ["trl", "reward-trainer", "vrm"]
    _name = "VRM"

    _heads = "the VRM head"
    _config_class = VRMConfig

    @staticmethod
    def _load_model(model_name_or_path, **kwargs):
        return load_vrm_model(model_name_or_path, **kwargs)  # the module's loader, read when called

    def _check_loaded_model(self, model: PreTrainedModel) -> None:
        head = getattr(unwrap_peft(model), "score", None)
        if not isinstance(head, VRMHead):
            raise ValueError(
                "A VRM model is a sequence classifier whose `score` head is a VRMHead; this model's is "
                f"{type(head).__name__}. Load it with `trl_icrm.vrm.modeling.load_vrm_model` or pass a model path."
            )

    def _setup(self, settings: VRMSettings, processing_class, args: VRMConfig, data_collator):
        self._vrm_settings = settings
        self._vrm_renderer = DemonstrationRenderer(processing_class)
        multiple = args.pad_to_multiple_of if isinstance(args.pad_to_multiple_of, int) else None
        return data_collator or DataCollatorForVRM(processing_class.pad_token_id, multiple)

    # Data
    def _prepare_dataset(self, dataset, processing_class, args: VRMConfig, dataset_name: str) -> Dataset:
        """TRL's dataset hook: tokenize both responses as `trl.RewardTrainer` does, record the prompt's length (where
        the weight head reads) and apply the length policy."""
        check_pair_dataset(dataset, "VRMRewardTrainer", dataset_name, "VRM", "pairs are read by row")
        if "vrm_prompt_length" in dataset.column_names:  # already prepared
            return dataset
        missing = [c for c in ("chosen", "rejected") if c not in dataset.column_names]
        if missing:
            raise ValueError(
                f"The {dataset_name} dataset lacks the column(s) {missing} (has {dataset.column_names}). VRM needs "
                "preference pairs (prompt/chosen/rejected)."
            )
        renderer = self._vrm_renderer

        def encode(example: dict[str, Any], index: int) -> dict[str, Any]:
            check_responses(example, index, dataset_name)
            prompt = example.get("prompt")
            chosen = renderer.encode_query(prompt, example["chosen"])
            rejected = renderer.encode_query(prompt, example["rejected"])
            prompt_ids = encode_prompt(renderer.tokenizer, prompt)
            length = min(prompt_length(chosen, prompt_ids), prompt_length(rejected, prompt_ids))
            return {"chosen_ids": chosen, "rejected_ids": rejected, "vrm_prompt_length": length}

        dataset = dataset.map(
            encode, with_indices=True, num_proc=args.dataset_num_proc, desc=f"Tokenizing {dataset_name} dataset"
        )
        dataset = apply_length_policy(dataset, args, dataset_name)
        return dataset.remove_columns([c for c in dataset.column_names if c not in _COLUMNS])

    # Loss and metrics
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        prompt_lengths = inputs.pop("vrm_prompt_lengths")
        head = vrm_forward(model, inputs["input_ids"], inputs["attention_mask"], prompt_lengths.repeat(2))
        concentration = head.concentration.chunk(2)[0]  # one q(w | x) per pair: the prompt is shared
        mean_a, mean_b = head.feature_mean.chunk(2)
        std_a, std_b = head.feature_std.chunk(2)
        s = self._vrm_settings
        out = vrm_loss(
            concentration,
            mean_a,
            std_a,
            mean_b,
            std_b,
            head.score_weight,
            head.score_bias,
            prior_concentration=s.prior_concentration,
            prior_std=s.prior_std,
            beta_w=s.beta_w,
            beta_z=s.beta_z,
            supervision_weight=s.supervision_weight,
            supervision=s.supervision_loss,
            hinge_margin=s.hinge_margin,
            num_samples=s.train_samples,
        )
        loss = self._center_rewards(out.loss, out.reward_a, out.reward_b)
        weights = mean_weights(concentration.detach())
        values = {
            "accuracy": (out.margin > 0).float(),
            "margin": out.margin,
            "nll": out.nll,
            "kl_w": out.kl_w,
            "kl_z": out.kl_z,
            "supervision": out.supervision,
            "weight_entropy": -(weights * weights.clamp_min(1e-12).log()).sum(-1),
            "concentration": concentration.sum(-1),
        }
        self._record_pair_values(mode, inputs["attention_mask"], values)
        rewards = torch.cat([out.reward_a, out.reward_b]).detach().unsqueeze(-1)
        return (loss, {"logits": rewards}) if return_outputs else loss

    def _pair_summary(self, mode: str) -> dict[str, float]:
        records = self._take_pair_records(mode)
        return {name: records[name].mean().item() for name in _PAIR_METRICS if name in records}

    def _model_card(self, model_name: str, base_model: str | None, tags: list[str], dataset_name: str | None) -> str:
        """The VRM model card: the base model, the latent structure, how to score it with [`~trl_icrm.VRMReward`]
        and its settings."""
        return vrm_model_card(
            model_name, base_model, self._vrm_settings.to_dict(), tags=tags, dataset_name=dataset_name
        )


__all__ = ["DataCollatorForVRM", "VRMRewardTrainer"]

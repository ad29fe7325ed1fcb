# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The model toolkit every method uses (ICRM, VRM, Laplace, the BT classifier).

- `loading`: finding a model folder, adapter folder or hub id and its config, the one loading skeleton of a sequence
  classifier with a method's head ([`load_sequence_classifier_with_head`]), the tokenizer's pad token, reaching the
  backbone and head under a PEFT wrapper;
- `features`: the pooled backbone features a score head reads, encoded once and cached on disk by the backbone's
  weights and each sequence's tokens ([`~trl_icrm.models.features.FeatureEncoder`]);
- `packing`: the prefix cache (encode a shared prefix once, classify suffixes on top of it) and the packed forward
  (rows sharing tokens in one sequence under a tree attention mask).
"""

from .loading import (
    LORA_TARGET_MODULES,
    backbone_and_head,
    describe_model_kind,
    is_peft_folder,
    load_config,
    load_sequence_classifier_with_head,
    model_locations,
    prepare_tokenizer,
    read_model_config,
    transformers_errors_only,
    unwrap_peft,
)
from .packing import (
    attention_layout,
    cache_nbytes,
    classify_packed_suffixes,
    classify_suffixes,
    encode_prefix,
    expand_prefix_cache,
    extend_prefix_cache,
    packed_pair_logits,
    pad_right,
    prefix_sharing_problem,
    tree_attention_mask,
)


__all__ = [
    "LORA_TARGET_MODULES",
    "attention_layout",
    "backbone_and_head",
    "cache_nbytes",
    "classify_packed_suffixes",
    "classify_suffixes",
    "describe_model_kind",
    "encode_prefix",
    "expand_prefix_cache",
    "extend_prefix_cache",
    "is_peft_folder",
    "load_config",
    "load_sequence_classifier_with_head",
    "model_locations",
    "packed_pair_logits",
    "pad_right",
    "prefix_sharing_problem",
    "prepare_tokenizer",
    "read_model_config",
    "transformers_errors_only",
    "tree_attention_mask",
    "unwrap_peft",
]

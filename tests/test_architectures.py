# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The architecture matrix: on tiny random models of every attention layout the tests build (full, sliding-window on
every layer or per layer type, soft-capped, tied embeddings, GQA, absolute positions), the default prefix-sharing
paths (the cached scorer, the packed suffixes, the shared-prefix trainer with and without gradient checkpointing)
give what each sequence scored alone, or the unshared batched forward, gives."""

import logging

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from trl_icrm import ICRMConfig, ICRMRewardTrainer
from trl_icrm.icrm.modeling import ICRMSettings
from trl_icrm.models import prefix_sharing_problem, prepare_tokenizer
from trl_icrm.rewards import ICRMReward, SequenceClassifierReward
from trl_icrm.trainer import icrm_trainer
from trl_icrm.utils.testing import ARCHITECTURES, conflicting_pairs, random_config

from conftest import training_args


TOLERANCE = 1e-5
ARCHS = sorted(ARCHITECTURES)
_DEMOS = [{k: row[k] for k in ("prompt", "chosen", "rejected")} for row in conflicting_pairs(6, seed=5)]
MODES = {
    "column": {},
    "bank": {"demonstration_bank": {"A": _DEMOS[:4], "B": _DEMOS[2:]}, "bank_key_column": "preference_id"},
    "fixed": {"fixed_demonstrations": _DEMOS[:3]},
}
PROMPT = "Please consider the following question with care and answer it in one word: "


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread(one_torch_thread_for_module):
    """Tiny models gain nothing from intra-op threads (see conftest)."""


@pytest.fixture(scope="module")
def tokenizer(default_model_dir):
    return prepare_tokenizer(AutoTokenizer.from_pretrained(default_model_dir))


@pytest.fixture(scope="module")
def build(tokenizer):
    """`build(arch, num_labels=2, dtype=float32)`: a tiny random sequence classifier in eval mode (one per key)."""
    made = {}

    def model(arch: str, num_labels: int = 2, dtype: torch.dtype = torch.float32):
        key = (arch, num_labels, dtype)
        if key not in made:
            config = random_config(tokenizer, arch, num_labels=num_labels)
            if num_labels == 2:
                ICRMSettings().save_to_config(config)
            torch.manual_seed(0)
            made[key] = AutoModelForSequenceClassification.from_config(config).to(dtype).eval()
            prepare_tokenizer(tokenizer, made[key])
        return made[key]

    return model


def _batch(num_prompts: int = 3, group_size: int = 4):
    prompts, completions, groups, columns = [], [], [], []
    for p in range(num_prompts):
        for g in range(group_size):
            prompts.append(f"Item {p}. {PROMPT}")
            completions.append([" yes", " no", " yes indeed, certainly", " no, not at all"][g] + " !" * p)
            groups.append("AB"[p % 2])
            columns.append(_DEMOS[p % 3 : p % 3 + 1 + p])
    return prompts, completions, {"demonstrations": columns, "preference_id": groups}


def _alone(model, encoded) -> torch.Tensor:
    """Outputs of each full sequence scored alone (a batch of one, no padding)."""
    with torch.inference_mode():
        return torch.cat([model(input_ids=torch.tensor([e.input_ids]), use_cache=False).logits for e in encoded])


@pytest.mark.parametrize("arch", ARCHS)
def test_icrm_cached_scores_equal_each_sequence_alone(arch, build, tokenizer, caplog):
    model = build(arch)
    assert prefix_sharing_problem(model) is None
    prompts, completions, columns = _batch()
    with caplog.at_level(logging.WARNING, logger="trl_icrm"):
        for mode, settings in MODES.items():
            reference = None
            for padding_side in ("right", "left"):
                tokenizer.padding_side = padding_side
                # batch_size 3 splits the groups of 4 completions of a prompt across packed sequences
                reward = ICRMReward(model, tokenizer, batch_size=3, num_demonstrations=3, **settings)
                encoded = reward.encode(prompts, completions, **columns)
                if reference is None:
                    reference = _alone(model, encoded)[:, 0]
                assert max(len(e.prefix_ids) for e in encoded) > 3 * 8  # demonstrations longer than the windows
                for _ in range(2):  # the second call reads the demonstrations' caches kept from the first
                    rewards = reward.logits(prompts, completions, **columns)[0]
                    torch.testing.assert_close(rewards, reference, rtol=0, atol=TOLERANCE, msg=f"{arch} {mode}")
                assert reward.cache_info()["hits"] > 0
    tokenizer.padding_side = "right"
    assert not [r for r in caplog.records if "full sequences" in r.getMessage()]  # the fast path, never the fallback


@pytest.mark.parametrize("arch", ARCHS)
def test_bt_cached_scores_equal_each_sequence_alone(arch, build, tokenizer):
    model = build(arch, num_labels=1)
    prompts, completions, _ = _batch()
    cached = SequenceClassifierReward(model, tokenizer, batch_size=3)
    encoded = [
        type("Row", (), {"input_ids": ids})
        for ids in (cached.renderer.encode_query(p, c) for p, c in zip(prompts, completions, strict=True))
    ]
    reference = _alone(model, encoded)[:, 0].double().numpy()
    np.testing.assert_allclose(cached.score(prompts, completions).reward, reference, rtol=0, atol=TOLERANCE)
    assert not cached.scorer._cache_failed


def _pair_rows(n: int = 8) -> list[dict]:
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
    return [
        {
            "prompt": f"Question {i}? {PROMPT}",
            "chosen": " " + " ".join(words[: 1 + i % 5]),
            "rejected": " " + " ".join(words[: 6 - i % 4]),
            "group": "AB"[i % 2],
        }
        for i in range(n)
    ]


def _trainer_losses(model, tokenizer, output_dir) -> tuple[dict, dict]:
    """Loss and gradients of one batch under `(share_prefix, gradient_checkpointing)` for the three settings."""
    args = ICRMConfig(**training_args(output_dir), min_demonstrations=2, max_demonstrations=3)
    trainer = ICRMRewardTrainer(
        model, args=args, processing_class=tokenizer, train_dataset=Dataset.from_list(_pair_rows())
    )
    assert trainer._share_prefix  # the default (CPU) setting is the one tested
    prepared = trainer.train_dataset
    batch = trainer._icrm_collator([prepared[i] for i in range(len(prepared))])
    assert int(batch["icrm_prefix_lengths"].min()) > 8  # pairs share more than the windows
    losses, grads = {}, {}
    trainer.model.train()
    for share, checkpointing in ((False, False), (True, True), (True, False)):
        if checkpointing:
            trainer.model.gradient_checkpointing_enable(trainer.args.gradient_checkpointing_kwargs)
        else:
            trainer.model.gradient_checkpointing_disable()
        assert icrm_trainer._is_checkpointing(trainer.model) == checkpointing
        trainer._share_prefix = share
        trainer.model.zero_grad()
        loss = trainer.compute_loss(trainer.model, dict(batch))
        loss.backward()
        losses[share, checkpointing] = loss.detach()
        grads[share, checkpointing] = {
            n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None
        }
    return losses, grads


@pytest.mark.parametrize("arch", ARCHS)
def test_shared_prefix_training_equals_the_unshared_forward(arch, tokenizer, tmp_path):
    config = random_config(tokenizer, arch, num_labels=2)
    ICRMSettings().save_to_config(config)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config)
    losses, grads = _trainer_losses(model, tokenizer, tmp_path)
    reference = (False, False)
    for key in losses:
        torch.testing.assert_close(losses[key], losses[reference], rtol=0, atol=TOLERANCE, msg=f"{arch} {key}")
        assert grads[key].keys() == grads[reference].keys() and len(grads[key]) > 0
        for name in grads[key]:
            torch.testing.assert_close(grads[key][name], grads[reference][name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("arch", ARCHS)
def test_laplace_last_layer_fit_and_score(arch, tokenizer):
    from trl_icrm.laplace import fit_laplace
    from trl_icrm.rewards.laplace import LaplaceReward

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(random_config(tokenizer, arch, num_labels=1)).eval()
    prepare_tokenizer(tokenizer, model)
    pairs = _pair_rows(6)
    posterior = fit_laplace(model, tokenizer, pairs, subset="last_layer", tune_prior=False, progress_bar=False)
    prompts, completions = [p["prompt"] for p in pairs[:3]], [p["chosen"] for p in pairs[:3]]
    laplace = LaplaceReward(posterior, tokenizer).score(prompts, completions)
    plain = SequenceClassifierReward(model, tokenizer, use_prefix_cache=False).score(prompts, completions)
    np.testing.assert_allclose(laplace.mean, plain.mean, rtol=1e-4, atol=1e-5)
    assert (laplace.variance > 0).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_vrm_scores_equal_each_sequence_alone(arch, tokenizer):
    from trl_icrm.rewards import VRMReward
    from trl_icrm.vrm.modeling import VRMSettings, attach_vrm_head

    settings = VRMSettings(num_objectives=3, num_features=2)
    config = random_config(tokenizer, arch, num_labels=1)
    settings.save_to_config(config)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config).eval()
    attach_vrm_head(model, settings)
    prompts, completions, _ = _batch(2, 3)
    batched = VRMReward(model, tokenizer, batch_size=6).score(prompts, completions)
    alone = VRMReward(model, tokenizer, batch_size=1).score(prompts, completions)
    np.testing.assert_allclose(batched.mean, alone.mean, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(batched.variance, alone.variance, rtol=1e-4, atol=TOLERANCE)


DTYPE_ARCH = "gemma3"  # sliding window per layer type (one mask per type), its own rotary base per type


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_scorer_and_trainer_in_other_dtypes(dtype, build, tokenizer, tmp_path):
    """float64 at the float32 tolerance. bfloat16 against the bfloat16 alone-path: both run the same math in
    different shapes (a packed row reads the prefix's cached keys instead of recomputing them), so results may differ
    by bfloat16 rounding (8 bits of mantissa: one step is 2**-10 for these logits of magnitude below 0.25, 2**-7 for
    losses near 1). Allowed: 4 steps of a logit (4e-3) and 2 of a loss (1.6e-2), against the 2e-2 to 5e-2 a missing
    window gives."""
    atol, loss_atol = (TOLERANCE, TOLERANCE) if dtype == torch.float64 else (4e-3, 1.6e-2)
    model = build(DTYPE_ARCH, dtype=dtype)
    prompts, completions, columns = _batch()
    reward = ICRMReward(model, tokenizer, batch_size=3, num_demonstrations=3)
    reference = _alone(model, reward.encode(prompts, completions, **columns))[:, 0].float()
    for _ in range(2):
        rewards = reward.logits(prompts, completions, **columns)[0]
        torch.testing.assert_close(rewards, reference, rtol=0, atol=atol)
    assert not reward.scorer._cache_failed
    config = random_config(tokenizer, DTYPE_ARCH, num_labels=2)
    ICRMSettings().save_to_config(config)
    torch.manual_seed(0)
    losses, grads = _trainer_losses(
        AutoModelForSequenceClassification.from_config(config).to(dtype), tokenizer, tmp_path
    )
    for key in losses:
        assert losses[key].dtype == dtype
        torch.testing.assert_close(losses[key], losses[False, False], rtol=0, atol=loss_atol)
        if dtype == torch.float64:  # transformers computes rotary tables in float32: the matrix's tolerances
            for name in grads[key]:
                torch.testing.assert_close(grads[key][name], grads[False, False][name], rtol=1e-4, atol=1e-6)


def test_laplace_head_follows_the_model_dtype(tokenizer):
    from trl_icrm.laplace import fit_laplace
    from trl_icrm.rewards.laplace import LaplaceReward

    torch.manual_seed(0)
    config = random_config(tokenizer, "llama", num_labels=1)
    model = AutoModelForSequenceClassification.from_config(config).to(torch.float64).eval()
    prepare_tokenizer(tokenizer, model)
    posterior = fit_laplace(model, tokenizer, _pair_rows(4), subset="last_layer", tune_prior=False, progress_bar=False)
    assert posterior.adapter.head.weight.dtype == torch.float64
    scored = LaplaceReward(posterior, tokenizer).score(["Say apple."], [" apple"])
    assert np.isfinite(scored.mean).all() and (scored.variance > 0).all()


def test_layouts_without_an_exact_fast_path_score_full_sequences_with_one_warning(tokenizer, caplog, tmp_path):
    """An attention implementation that takes no 4D mask is detected from the config up front: the scorer and the
    trainer take the exact unshared path, each saying why once. (The decision is made at construction; the scores
    are then computed with sdpa, as there are no flash kernels on the CPU.)"""
    torch.manual_seed(0)
    config = random_config(tokenizer, "mistral", num_labels=2)
    ICRMSettings().save_to_config(config)
    model = AutoModelForSequenceClassification.from_config(config).eval()
    args = ICRMConfig(**training_args(tmp_path), max_demonstrations=2)
    trainer = ICRMRewardTrainer(
        model, args=args, processing_class=tokenizer, train_dataset=Dataset.from_list(_pair_rows())
    )
    prompts, completions, columns = _batch(2, 2)
    with caplog.at_level(logging.WARNING, logger="trl_icrm"):
        for implementation in ("flash_attention_2", "flex_attention"):
            model.config._attn_implementation = implementation
            assert implementation in prefix_sharing_problem(model)
            reward = ICRMReward(model, tokenizer, num_demonstrations=2)
            assert trainer._resolve_prefix_sharing(None) is False
            model.config._attn_implementation = "sdpa"
            reference = _alone(model, reward.encode(prompts, completions, **columns))[:, 0]
            rewards = reward.logits(prompts, completions, **columns)[0]
            torch.testing.assert_close(rewards, reference, rtol=0, atol=TOLERANCE)
            assert reward.scorer._cache_failed and reward.cache_info()["entries"] == 0
    messages = [r.getMessage() for r in caplog.records]
    for implementation in ("flash_attention_2", "flex_attention"):
        assert sum("Shared-prefix scoring is off" in m and implementation in m for m in messages) == 1
        assert sum("share_demonstration_prefix is off" in m and implementation in m for m in messages) == 1


def test_chunked_attention_masks_follow_absolute_positions(build):
    """Chunked layers (Llama 4's local attention) see only keys of their own chunk, counted in absolute positions:
    a packed row after a prefix is masked as its full sequence would be."""
    from trl_icrm.models import tree_attention_mask

    model = build("llama")
    model.config.layer_types = ["chunked_attention", "full_attention"]
    model.config.attention_chunk_size = 4
    try:
        positions = torch.tensor([0, 1, 2, 3, 4, 5, 2, 3, 4])  # a prefix of 2, then rows of 4 and 3 tokens
        allowed = torch.ones(9, 9, dtype=torch.bool).tril()
        allowed[6:, 2:6] = False  # the second row never sees the first
        masks = tree_attention_mask(model, allowed, positions, positions)
    finally:
        del model.config.layer_types, model.config.attention_chunk_size
    assert set(masks) == {"chunked_attention", "full_attention"}
    full, chunked = (masks[k][0, 0] == 0 for k in ("full_attention", "chunked_attention"))
    assert torch.equal(full, allowed)
    expected = allowed & ((positions[:, None] // 4) == (positions[None, :] // 4))
    assert torch.equal(chunked, expected)
    assert chunked[5].tolist() == [False] * 4 + [True, True, False, False, False]  # position 5 sees positions 4, 5
    assert masks["full_attention"].dtype == torch.float32

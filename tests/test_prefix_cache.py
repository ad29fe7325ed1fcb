# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The demonstration prefix tree and its cross-call key-value cache (scoring), and the shared-prefix training path
under gradient checkpointing: every cached or shared path gives the scores, losses and gradients of full sequences."""

import logging

import pytest
import torch
from datasets import Dataset

from trl_icrm import ICRMConfig, ICRMRewardTrainer
from trl_icrm.demonstrations import EncodedQuery
from trl_icrm.icrm.modeling import load_icrm_model, split_heads
from trl_icrm.models import encode_prefix, expand_prefix_cache, packed_pair_logits
from trl_icrm.rewards import ICRMReward
from trl_icrm.rewards.scoring import PrefixCache, group_by_prefix, weights_fingerprint
from trl_icrm.utils.testing import conflicting_pairs

from conftest import training_args as _args


TOLERANCE = 2e-6
_ROWS = conflicting_pairs(6, seed=5)
DEMOS = [{k: row[k] for k in ("prompt", "chosen", "rejected")} for row in _ROWS]
LONG_PROMPT = "Please consider the following question with care and answer it in one word: "


def _batch(num_prompts: int = 3, group_size: int = 4):
    prompts, completions, groups, columns = [], [], [], []
    for p in range(num_prompts):
        for g in range(group_size):
            prompts.append(f"Item {p}. {LONG_PROMPT}")
            completions.append([" yes", " no", " yes indeed, certainly", " no, not at all"][g % 4] + " !" * p)
            groups.append("AB"[p % 2])
            columns.append(DEMOS[p % 3 : p % 3 + 1 + p])  # a distinct set per prompt, of 1 to num_prompts pairs
    return prompts, completions, {"demonstrations": columns, "preference_id": groups}


def _reference(reward: ICRMReward, prompts, completions, columns) -> torch.Tensor:
    """Rewards of each full sequence scored alone (batch of one, no padding): the naive reference."""
    model = reward.model
    with torch.inference_mode():
        return torch.stack(
            [
                model(input_ids=torch.tensor([e.input_ids]), use_cache=False).logits[0, 0].float()
                for e in reward.encode(prompts, completions, **columns)
            ]
        )


def _rewards(reward: ICRMReward, prompts, completions, columns) -> torch.Tensor:
    return reward.logits(prompts, completions, **columns)[0]


@pytest.fixture(scope="module")
def icrm(random_icrm_dir):
    return load_icrm_model(random_icrm_dir)


MODES = {
    "column": {},
    "bank_per_prompt": {"demonstration_bank": {"A": DEMOS[:4], "B": DEMOS[2:]}, "bank_key_column": "preference_id"},
    "bank_per_key": {
        "demonstration_bank": {"A": DEMOS[:4], "B": DEMOS[2:]},
        "bank_key_column": "preference_id",
        "bank_draw": "per_key",
    },
    "fixed": {"fixed_demonstrations": DEMOS[:3]},
}


@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("mode", sorted(MODES))
def test_cached_scores_equal_full_sequences_in_every_mode(mode, padding_side, icrm):
    model, tokenizer = icrm
    tokenizer.padding_side = padding_side
    prompts, completions, columns = _batch()
    cached = ICRMReward(model, tokenizer, batch_size=3, num_demonstrations=3, **MODES[mode])
    naive = ICRMReward(model, tokenizer, batch_size=5, num_demonstrations=3, use_prefix_cache=False, **MODES[mode])
    reference = _reference(naive, prompts, completions, columns)
    for _ in range(2):  # the second call reads the demonstrations' caches kept from the first
        torch.testing.assert_close(_rewards(cached, prompts, completions, columns), reference, rtol=0, atol=TOLERANCE)
    torch.testing.assert_close(_rewards(naive, prompts, completions, columns), reference, rtol=0, atol=TOLERANCE)
    info = cached.cache_info()
    distinct = len({tuple(e.prefix_ids) for e in cached.encode(prompts, completions, **columns)})
    assert info["misses"] == distinct and info["hits"] == distinct and info["entries"] == distinct, info
    tokenizer.padding_side = "right"


def test_prefix_tree_shares_demonstrations_and_prompts(icrm):
    model, tokenizer = icrm
    prompts, completions, columns = _batch(num_prompts=2, group_size=4)
    reward = ICRMReward(model, tokenizer, fixed_demonstrations=DEMOS[:2])
    encoded = reward.encode(prompts, completions, **columns)
    tree = group_by_prefix(encoded)
    assert {prefix for prefix, _ in tree} == {tuple(encoded[0].prefix_ids)}  # one demonstration set
    assert len(tree) == 2 and all(len(shared) >= 8 for _, shared in tree)  # one shared prompt run per prompt
    for (prefix, shared), rows in tree.items():
        assert sorted(rows) in ([0, 1, 2, 3], [4, 5, 6, 7])
        assert all(encoded[i].input_ids[: len(prefix) + len(shared)] == list(prefix + shared) for i in rows)
        assert all(len(encoded[i].input_ids) > len(prefix) + len(shared) for i in rows)  # each row keeps a token
    assert set(group_by_prefix(encoded, share_prompts=False)) == {(tuple(encoded[0].prefix_ids), ())}
    # Without demonstrations, rows still share a prompt (the plain reward's own tree), and score the same.
    zero_shot = ICRMReward(model, tokenizer, allow_zero_shot=True, demonstrations_column=None)
    torch.testing.assert_close(
        _rewards(zero_shot, prompts, completions, {}),
        _reference(zero_shot, prompts, completions, {}),
        rtol=0,
        atol=TOLERANCE,
    )


def test_lru_hits_and_evictions_keep_scores_exact(icrm):
    model, tokenizer = icrm
    prompts, completions, columns = _batch()
    sizes = []
    probe = ICRMReward(model, tokenizer)
    for e in {tuple(e.prefix_ids): e for e in probe.encode(prompts, completions, **columns)}.values():
        sizes.append(_cache_bytes(model, e.prefix_ids))
    limit = max(sizes)  # room for one demonstration set at a time: every new set evicts the last one
    reward = ICRMReward(model, tokenizer, prefix_cache_bytes=limit, batch_size=4)
    reference = _reference(reward, prompts, completions, columns)
    for _ in range(3):
        torch.testing.assert_close(_rewards(reward, prompts, completions, columns), reference, rtol=0, atol=TOLERANCE)
    info = reward.cache_info()
    assert info["evictions"] >= 2 and info["entries"] == 1 and info["bytes"] <= limit, info
    # One prompt's rows, called again: a hit, same scores.
    hits = info["hits"]
    last = slice(8, 12)
    cols = {k: v[last] for k, v in columns.items()}
    torch.testing.assert_close(
        _rewards(reward, prompts[last], completions[last], cols), reference[last], rtol=0, atol=TOLERANCE
    )
    assert reward.cache_info()["hits"] == hits + 1


def _cache_bytes(model, prefix_ids) -> int:
    from trl_icrm.models import cache_nbytes

    with torch.inference_mode():
        return cache_nbytes(encode_prefix(model, torch.tensor(prefix_ids)))


def test_too_small_a_limit_warns_once_and_scores_exactly(icrm, caplog):
    model, tokenizer = icrm
    prompts, completions, columns = _batch()
    reward = ICRMReward(model, tokenizer, prefix_cache_bytes=16)
    reference = _reference(reward, prompts, completions, columns)
    with caplog.at_level(logging.WARNING, logger="trl_icrm.rewards.scoring"):
        for _ in range(2):
            torch.testing.assert_close(
                _rewards(reward, prompts, completions, columns), reference, rtol=0, atol=TOLERANCE
            )
    warnings = [r for r in caplog.records if "exceeds the prefix cache limit" in r.getMessage()]
    assert len(warnings) == 1 and reward.cache_info()["entries"] == 0
    with pytest.raises(ValueError, match=">= 0 bytes"):
        PrefixCache(-1)
    off = ICRMReward(model, tokenizer, prefix_cache_bytes=0)
    torch.testing.assert_close(_rewards(off, prompts, completions, columns), reference, rtol=0, atol=TOLERANCE)
    assert off.cache_info()["entries"] == 0


@pytest.mark.parametrize("how", ["no_grad", "data", "replace", "load_state_dict"])
def test_weight_changes_invalidate_the_cache(how, random_icrm_dir):
    model, tokenizer = load_icrm_model(random_icrm_dir)  # its own copy: this test edits the weights
    prompts, completions, columns = _batch()
    reward = ICRMReward(model, tokenizer)
    before = _rewards(reward, prompts, completions, columns)
    assert reward.cache_info()["entries"] > 0
    weight = model.model.layers[0].self_attn.v_proj
    if how == "no_grad":
        with torch.no_grad():
            weight.weight.mul_(3.0)
    elif how == "data":
        weight.weight.data.mul_(3.0)  # behind autograd's back: no version bump, seen by the value probe
    elif how == "replace":
        weight.weight = torch.nn.Parameter(weight.weight.detach() * 3.0)
    else:
        state = {k: v.clone() for k, v in model.state_dict().items()}
        state["model.layers.0.self_attn.v_proj.weight"] *= 3.0
        model.load_state_dict(state)
    after = _rewards(reward, prompts, completions, columns)
    reference = _reference(reward, prompts, completions, columns)
    assert (reference - before).abs().max() > 1e-3  # the change matters
    torch.testing.assert_close(after, reference, rtol=0, atol=TOLERANCE)


def test_fingerprint_is_stable_without_changes(icrm):
    model, _ = icrm
    assert weights_fingerprint(model) == weights_fingerprint(model)


def test_frozen_scorer_fingerprints_once_and_scores_exactly(icrm, monkeypatch):
    """A frozen scorer (the reward server's) reads its weights' fingerprint on the first call only, and its cached
    scores still equal full sequences."""
    import trl_icrm.rewards.scoring as scoring

    model, tokenizer = icrm
    prompts, completions, columns = _batch()
    reward = ICRMReward(model, tokenizer)
    reward.scorer.frozen = True
    calls = []
    monkeypatch.setattr(scoring, "weights_fingerprint", lambda m: calls.append(m) or weights_fingerprint(m))
    for _ in range(3):
        rewards = _rewards(reward, prompts, completions, columns)
    assert len(calls) == 1
    assert reward.cache_info()["hits"] > 0
    torch.testing.assert_close(rewards, _reference(reward, prompts, completions, columns), rtol=0, atol=TOLERANCE)


def test_expanded_cache_leaves_the_stored_one_unchanged(icrm):
    model, tokenizer = icrm
    with torch.inference_mode():
        cache = encode_prefix(model, torch.arange(5, 25))
        keys = cache.layers[0].keys.clone()
        expanded = expand_prefix_cache(cache, 3)
        model.model(input_ids=torch.arange(30, 36).reshape(3, 2), past_key_values=expanded, use_cache=True)
    assert expanded.get_seq_length() == 22 and cache.get_seq_length() == 20
    assert cache.layers[0].keys.shape[0] == 1 and torch.equal(cache.layers[0].keys, keys)


# Training: the shared-prefix path under gradient checkpointing


def _pair_rows(n: int = 12) -> list[dict]:
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
    return [
        {
            "prompt": f"Question {i}?",
            "chosen": " " + " ".join(words[: 1 + i % 5]),
            "rejected": " " + " ".join(words[: 6 - i % 4]),
            "group": "AB"[i % 2],
        }
        for i in range(n)
    ]


def _trainer(model_path, output_dir, share: bool, checkpointing: bool) -> ICRMRewardTrainer:
    args = ICRMConfig(
        **_args(output_dir, gradient_checkpointing=checkpointing),
        max_demonstrations=3,
        share_demonstration_prefix=share,
    )
    return ICRMRewardTrainer(model_path, args=args, train_dataset=Dataset.from_list(_pair_rows()))


def test_shared_prefix_is_on_under_gradient_checkpointing_by_default(tiny_causal_lm, tmp_path):
    args = ICRMConfig(**_args(tmp_path))  # TRL's default: gradient checkpointing on
    assert args.gradient_checkpointing
    trainer = ICRMRewardTrainer(tiny_causal_lm, args=args, train_dataset=conflicting_pairs(4, 0))
    assert trainer._share_prefix


def test_checkpointed_shared_prefix_matches_batched_loss_and_gradients(tiny_causal_lm, tmp_path, monkeypatch):
    from trl_icrm.trainer import icrm_trainer

    packed_calls = []
    monkeypatch.setattr(
        icrm_trainer, "packed_pair_logits", lambda *a, **k: packed_calls.append(1) or packed_pair_logits(*a, **k)
    )
    trainers = {
        (share, gc): _trainer(tiny_causal_lm, tmp_path / f"{share}-{gc}", share, gc)
        for share, gc in ((True, True), (False, True), (True, False))
    }
    prepared = trainers[(True, True)].train_dataset
    batch = trainers[(True, True)]._icrm_collator([prepared[i] for i in range(len(prepared))])
    assert set(batch["icrm_num_demonstrations"].tolist()) >= {0, 3}
    losses, grads = {}, {}
    for key, trainer in trainers.items():
        trainer.model.train()
        if key[1]:  # as `Trainer.train` turns it on, with TRL's kwargs
            trainer.model.gradient_checkpointing_enable(trainer.args.gradient_checkpointing_kwargs)
        assert icrm_trainer._is_checkpointing(trainer.model) == key[1]
        trainer.model.zero_grad()
        loss = trainer.compute_loss(trainer.model, dict(batch))
        loss.backward()
        losses[key] = loss.detach()
        grads[key] = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert len(packed_calls) == len(batch["icrm_labels"])  # one packed sequence per pair, only under checkpointing
    reference = (False, True)
    for key in trainers:
        torch.testing.assert_close(losses[key], losses[reference], rtol=0, atol=TOLERANCE)
        assert grads[key].keys() == grads[reference].keys() and len(grads[key]) > 0
        for name in grads[key]:
            torch.testing.assert_close(grads[key][name], grads[reference][name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_packed_pair_equals_each_full_sequence(padding_side, icrm):
    model, tokenizer = icrm
    torch.manual_seed(0)
    prefix = torch.randint(10, 1000, (17,))
    chosen = torch.cat([prefix, torch.randint(10, 1000, (5,)), torch.tensor([tokenizer.pad_token_id])])
    rejected = torch.cat([prefix, torch.randint(10, 1000, (9,))])
    rows = [chosen, rejected]
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id
    padded = torch.full((2, width), pad)
    mask = torch.zeros(2, width, dtype=torch.long)
    for i, row in enumerate(rows):
        where = slice(0, len(row)) if padding_side == "right" else slice(width - len(row), width)
        padded[i, where], mask[i, where] = row, 1
    with torch.no_grad():
        batched = model(input_ids=padded, attention_mask=mask, use_cache=False).logits
        unpadded = [padded[i][mask[i].bool()] for i in range(2)]
        packed = packed_pair_logits(model, unpadded[0], unpadded[1], len(prefix), pad)
        alone = torch.cat([model(input_ids=r[None], use_cache=False).logits for r in rows])
    torch.testing.assert_close(packed, alone, rtol=0, atol=TOLERANCE)
    if padding_side == "right":  # transformers pools a left-padded batch elsewhere; right padding is TRL's
        torch.testing.assert_close(split_heads(batched)[0], split_heads(alone)[0], rtol=0, atol=TOLERANCE)


def test_bank_draw_per_key_shares_one_set_per_key(icrm):
    model, tokenizer = icrm
    prompts, completions, columns = _batch()
    reward = ICRMReward(model, tokenizer, num_demonstrations=2, **MODES["bank_per_key"])
    encoded = reward.encode(prompts, completions, **columns)
    by_key = {}
    for e, key in zip(encoded, columns["preference_id"], strict=True):
        by_key.setdefault(key, set()).add(tuple(e.prefix_ids))
    assert all(len(sets) == 1 for sets in by_key.values()) and len(by_key) == 2
    per_prompt = ICRMReward(model, tokenizer, num_demonstrations=2, **MODES["bank_per_prompt"])
    assert len({tuple(e.prefix_ids) for e in per_prompt.encode(prompts, completions, **columns)}) > 2
    with pytest.raises(ValueError, match="bank_draw"):
        ICRMReward(model, tokenizer, bank_draw="per_group", **MODES["bank_per_prompt"])


def test_plain_reward_shares_prompts_and_scores_exactly(tiny_causal_lm, tmp_path):
    from trl_icrm.rewards import SequenceClassifierReward
    from trl_icrm.utils.testing import save_random_models

    folder = save_random_models(tmp_path, tiny_causal_lm, num_labels=1)["sequence_classifier"]
    prompts, completions, _ = _batch()
    tree = SequenceClassifierReward(folder, batch_size=3)
    full = SequenceClassifierReward(folder, batch_size=5, use_prefix_cache=False)
    rows = [
        EncodedQuery([], tree.renderer.encode_query(p, c), 0, 0) for p, c in zip(prompts, completions, strict=True)
    ]
    assert any(shared for _, shared in group_by_prefix(rows))  # the prompts are long enough to be shared
    torch.testing.assert_close(
        torch.tensor(tree(prompts, completions)), torch.tensor(full(prompts, completions)), rtol=0, atol=TOLERANCE
    )


def test_duplicate_completions_and_trailing_pad_tokens_score_as_full_sequences(tiny_causal_lm, tmp_path, icrm):
    """GRPO groups often hold the same completion twice. Identical rows share everything but their last token, which
    is the eos; when the eos is also the pad token, the row must still be pooled at its last non-pad token (in the
    shared run), as full-sequence scoring pools it, and not at the eos alone."""
    from trl_icrm.rewards import SequenceClassifierReward
    from trl_icrm.utils.testing import save_random_models

    model, tokenizer = icrm
    assert tokenizer.eos_token_id == tokenizer.pad_token_id  # the embedded tokenizer's case this guards
    eos = tokenizer.eos_token
    prompts = [f"Item 0. {LONG_PROMPT}"] * 4 + [f"Item 1. {LONG_PROMPT}"] * 2
    completions = [" yes", " yes", " yes" + eos + eos, " no", " no", " no"]
    reward = ICRMReward(model, tokenizer, fixed_demonstrations=DEMOS[:2])
    encoded = reward.encode(prompts, completions)
    assert any(shared for _, shared in group_by_prefix(encoded, pad_token_id=tokenizer.pad_token_id))
    torch.testing.assert_close(
        _rewards(reward, prompts, completions, {}),
        _reference(reward, prompts, completions, {}),
        rtol=0,
        atol=TOLERANCE,
    )
    folder = save_random_models(tmp_path, tiny_causal_lm, num_labels=1)["sequence_classifier"]
    tree = SequenceClassifierReward(folder, batch_size=3)
    full = SequenceClassifierReward(folder, batch_size=6, use_prefix_cache=False)
    torch.testing.assert_close(
        torch.tensor(tree(prompts, completions)), torch.tensor(full(prompts, completions)), rtol=0, atol=TOLERANCE
    )

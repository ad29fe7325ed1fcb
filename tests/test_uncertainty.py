# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Ensembles that share compute and MC dropout (issue: uncertainty beyond the anchors): precomputed features and their
cache, head ensembles (training, posterior, save/load, registry, CLI), MC dropout on the head and on the LoRA path."""

import json

import numpy as np
import pytest
import torch


pytestmark = pytest.mark.usefixtures("one_torch_thread_for_module")

WORDS = ["apple", "river", "stone", "cloud", "green", "quick", "seven", "table"]
PROMPTS = ["Say apple river.", "Say stone.", "Name a colour.", "Say apple river."]
COMPLETIONS = [" apple river yes", " stone no", " green, I think", " apple river no"]


def _pairs(n: int, seed: int = 0) -> list[dict[str, str]]:
    """Pairs where the chosen answer ends in 'yes' and the rejected one in 'no'."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        words = " ".join(rng.choice(WORDS, size=3))
        pairs.append({"prompt": f"Say {words}.", "chosen": f" {words} yes", "rejected": f" {words} no"})
    return pairs


@pytest.fixture(scope="module")
def bt_dir(tmp_path_factory, default_model_dir) -> str:
    """A tiny random one-output sequence classifier (a BT reward model's shape) with the embedded tokenizer."""
    from trl_icrm.utils.testing import save_random_models

    root = tmp_path_factory.mktemp("uq-bt")
    return save_random_models(root, default_model_dir, num_labels=1, seed=3)["sequence_classifier"]


@pytest.fixture(scope="module")
def other_bt_dir(tmp_path_factory, default_model_dir) -> str:
    from trl_icrm.utils.testing import save_random_models

    root = tmp_path_factory.mktemp("uq-bt-other")
    return save_random_models(root, default_model_dir, num_labels=1, seed=4)["sequence_classifier"]


@pytest.fixture(scope="module")
def head_ensemble_dir(bt_dir, tmp_path_factory) -> str:
    from trl_icrm.uncertainty import HeadTrainingArguments
    from trl_icrm.uncertainty.fit import fit_head_ensemble

    output_dir = tmp_path_factory.mktemp("uq-heads") / "model"
    training = HeadTrainingArguments(num_epochs=3, batch_size=8, learning_rate=1e-2, seed=0)
    fit_head_ensemble(bt_dir, _pairs(32), output_dir=output_dir, num_members=4, head_hidden_size=16, training=training)
    return str(output_dir)


def _features_one_by_one(model_dir, prompts, completions):
    """Each completion's pooled feature, computed alone (no batching, no cache) by the loaded classifier's backbone."""
    from trl_icrm.demonstrations import DemonstrationRenderer
    from trl_icrm.models import backbone_and_head
    from trl_icrm.models.features import last_token_features
    from trl_icrm.rewards.classifier import load_sequence_classifier

    model, tokenizer = load_sequence_classifier(model_dir)
    backbone, _ = backbone_and_head(model.eval())
    renderer = DemonstrationRenderer(tokenizer)
    rows = []
    for prompt, completion in zip(prompts, completions, strict=True):
        ids = torch.tensor([renderer.encode_query(prompt, completion)])
        rows.append(last_token_features(backbone, ids, torch.ones_like(ids), tokenizer.pad_token_id)[0])
    return torch.stack(rows)


def test_features_are_what_the_bt_score_head_reads(bt_dir):
    """The encoder's features through the BT model's score head give the BT reward's scores (same tokenization, chat
    template for conversational data, same pooled token)."""
    from trl_icrm.models.features import FeatureEncoder
    from trl_icrm.rewards import SequenceClassifierReward

    reward = SequenceClassifierReward(bt_dir)
    prompts = [*PROMPTS, [{"role": "user", "content": "Say stone."}]]
    completions = [*COMPLETIONS, [{"role": "assistant", "content": "stone yes"}]]
    encoder = FeatureEncoder(reward.model, reward.tokenizer, batch_size=2)
    features = encoder.encode(prompts, completions)
    from_head = reward.model.score(features).squeeze(-1).detach().double().numpy()
    np.testing.assert_allclose(from_head, reward.score(prompts, completions).mean, rtol=1e-4, atol=1e-5)
    assert features.shape == (5, reward.model.config.hidden_size) and encoder.encoded == 5


def test_feature_cache_hit_returns_identical_features_and_skips_the_backbone(bt_dir, other_bt_dir, tmp_path):
    from trl_icrm.models.features import FeatureEncoder, load_feature_backbone

    cache_dir = tmp_path / "cache"
    first = FeatureEncoder(*load_feature_backbone(bt_dir), cache_dir=cache_dir, batch_size=3)
    encoded = first.encode(PROMPTS, COMPLETIONS)
    assert first.encoded == 4
    second = FeatureEncoder(*load_feature_backbone(bt_dir), cache_dir=cache_dir)  # a new run: a fresh load

    def fail(*args, **kwargs):
        raise AssertionError("the backbone ran on a cache hit")

    second.backbone.forward = fail
    assert second.fingerprint == first.fingerprint
    assert torch.equal(second.encode(PROMPTS, COMPLETIONS), encoded) and second.encoded == 0
    other = FeatureEncoder(*load_feature_backbone(other_bt_dir), cache_dir=cache_dir)
    assert other.fingerprint != first.fingerprint
    assert not torch.equal(other.encode(PROMPTS[:1], COMPLETIONS[:1]), encoded[:1]) and other.encoded == 1
    assert len(list((cache_dir / first.fingerprint).glob("features-*.safetensors"))) == 1


def _member_scores_independently(heads, features: torch.Tensor) -> np.ndarray:
    """`(M, n)` scores, each member's head applied on its own, written out from its own weights."""
    state = {name: value.detach() for name, value in heads.state_dict().items()}
    scores = []
    for m in range(heads.num_members):
        if heads.config.head_type == "linear":
            scores.append(features @ state["weight"][m] + state["bias"][m])
        else:
            hidden = torch.relu(features @ state["weight_in"][m] + state["bias_in"][m])
            scores.append(hidden @ state["weight"][m] + state["bias"][m])
    return torch.stack(scores).double().numpy()


def test_head_ensemble_posterior_is_the_members_mean_and_variance(head_ensemble_dir, bt_dir):
    from trl_icrm.rewards import HeadEnsembleReward, load_reward, reward_model_kind

    assert reward_model_kind(head_ensemble_dir) == "head_ensemble"
    reward = load_reward(head_ensemble_dir)
    assert isinstance(reward, HeadEnsembleReward) and reward.num_members == 4
    members = _member_scores_independently(reward.heads, _features_one_by_one(bt_dir, PROMPTS, COMPLETIONS))
    posterior = reward.score(PROMPTS, COMPLETIONS)
    np.testing.assert_allclose(reward.member_scores(PROMPTS, COMPLETIONS), members, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(posterior.mean, members.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(posterior.variance, members.var(0), rtol=1e-3, atol=1e-8)
    np.testing.assert_allclose(posterior.reward, members.mean(0), rtol=1e-4, atol=1e-6)
    for a in range(4):  # every two members score differently
        for b in range(a + 1, 4):
            assert not np.allclose(members[a], members[b], atol=1e-3), (a, b)


@pytest.mark.parametrize("head_type", ["linear", "mlp"])
def test_members_train_independently_and_differ(head_type):
    """The joint loss is the sum of the members' own per-example means: training M members together gives each the
    weights it gets trained alone (same seed schedule); their initialisations, and with bootstrap their data, differ."""
    from trl_icrm.uncertainty import HeadEnsemble, HeadEnsembleConfig, bootstrap_weights, train_head_ensemble

    generator = torch.Generator().manual_seed(0)
    chosen, rejected = torch.randn(40, 6, generator=generator) + 0.5, torch.randn(40, 6, generator=generator)
    config = HeadEnsembleConfig(hidden_size=6, num_members=3, head_type=head_type, head_hidden_size=5, seed=1)
    together = HeadEnsemble(config)
    history = train_head_ensemble(together, chosen, rejected, num_epochs=3, batch_size=16, learning_rate=0.05)
    alone = HeadEnsemble(HeadEnsembleConfig(**{**config.__dict__, "num_members": 1}))
    train_head_ensemble(alone, chosen, rejected, num_epochs=3, batch_size=16, learning_rate=0.05)
    for name, value in alone.state_dict().items():  # member 0 trained alone == member 0 trained with the others
        torch.testing.assert_close(together.state_dict()[name][0], value[0])
    scores = together(chosen)
    assert not torch.allclose(scores[:, 0], scores[:, 1]) and not torch.allclose(scores[:, 1], scores[:, 2])
    assert len(history) == 3 and history[-1]["loss"] < history[0]["loss"]
    weights = bootstrap_weights(40, 3, seed=0)
    assert weights.sum(0).tolist() == [40.0] * 3 and not torch.equal(weights[:, 0], weights[:, 1])
    boot = HeadEnsemble(config)
    train_head_ensemble(boot, chosen, rejected, num_epochs=3, batch_size=16, learning_rate=0.05, bootstrap=True)
    assert not torch.allclose(boot(chosen), together(chosen))


def test_save_load_round_trip_and_wrong_backbone(head_ensemble_dir, bt_dir, other_bt_dir, tmp_path):
    from trl_icrm.rewards import HeadEnsembleReward
    from trl_icrm.uncertainty import HeadEnsemble

    heads = HeadEnsemble.from_pretrained(head_ensemble_dir)
    heads.save_pretrained(tmp_path / "copy")
    again = HeadEnsemble.from_pretrained(tmp_path / "copy")
    assert again.config == heads.config
    for name, value in heads.state_dict().items():
        assert torch.equal(again.state_dict()[name], value)
    reward = HeadEnsembleReward(head_ensemble_dir)
    loaded = HeadEnsembleReward(heads, reward.tokenizer, backbone=reward.model)
    np.testing.assert_array_equal(
        loaded.member_scores(PROMPTS, COMPLETIONS), reward.member_scores(PROMPTS, COMPLETIONS)
    )
    with pytest.raises(ValueError, match="another backbone"):
        HeadEnsembleReward(head_ensemble_dir, backbone=other_bt_dir)
    with pytest.raises(FileNotFoundError, match="no head ensemble"):
        HeadEnsembleReward(bt_dir)


def test_penalties_and_ensemble_objectives(head_ensemble_dir):
    from trl_icrm.rewards import EnsembleReward, HeadEnsembleReward, aggregate_ensemble

    members = np.array([[1.0, 2.0], [3.0, 2.0], [5.0, 5.0]])
    np.testing.assert_allclose(aggregate_ensemble(members, "worst_case"), [1.0, 2.0])
    np.testing.assert_allclose(
        aggregate_ensemble(members, "uncertainty_weighted", 0.5), members.mean(0) - 0.5 * members.var(0)
    )
    worst = HeadEnsembleReward(head_ensemble_dir, method="worst_case", penalty="lcb", penalty_coef=2.0)
    scores = worst.member_scores(PROMPTS, COMPLETIONS)
    posterior = worst.score(PROMPTS, COMPLETIONS)
    np.testing.assert_allclose(posterior.reward, scores.min(0))
    np.testing.assert_allclose(worst(prompts=PROMPTS, completions=COMPLETIONS), scores.mean(0) - 2.0 * scores.std(0))
    np.testing.assert_allclose(posterior.penalized("var_penalty", 3.0), scores.mean(0) - 3.0 * scores.var(0))
    weighted = HeadEnsembleReward(head_ensemble_dir, method="uncertainty_weighted", coef=3.0)
    np.testing.assert_allclose(weighted.score(PROMPTS, COMPLETIONS).reward, scores.mean(0) - 3.0 * scores.var(0))
    pair = EnsembleReward([worst, weighted], method="uncertainty_weighted", coef=1.0)
    rewards = np.stack([scores.min(0), scores.mean(0) - 3.0 * scores.var(0)])
    np.testing.assert_allclose(pair.score(PROMPTS, COMPLETIONS).reward, rewards.mean(0) - rewards.var(0))
    with pytest.raises(ValueError, match="Unknown ensemble method"):
        HeadEnsembleReward(head_ensemble_dir, method="median")


def test_mc_dropout_on_the_head_is_the_empirical_mean_and_variance_of_its_passes(bt_dir):
    """Pass t equals the BT model with the score head's weights thinned by mask t (seed (seed, t)); the posterior is
    the passes' mean and empirical variance; a completion's passes do not depend on its batch."""
    from trl_icrm.rewards import MCDropoutReward, SequenceClassifierReward, load_reward
    from trl_icrm.uncertainty import head_dropout_masks

    reward = load_reward(bt_dir, kind="mc_dropout", num_passes=6, dropout=0.3, seed=5, batch_size=2)
    assert isinstance(reward, MCDropoutReward)
    passes = reward.pass_scores(PROMPTS, COMPLETIONS)
    bt = SequenceClassifierReward(bt_dir)
    weight = bt.model.score.weight.detach().clone()
    masks = head_dropout_masks(6, weight.shape[1], 0.3, seed=5)
    for t in range(6):
        with torch.no_grad():
            bt.model.score.weight.copy_(weight * masks[t])
        np.testing.assert_allclose(passes[t], bt.score(PROMPTS, COMPLETIONS).mean, rtol=1e-4, atol=1e-5)
    posterior = reward.score(PROMPTS, COMPLETIONS)
    np.testing.assert_allclose(posterior.mean, passes.mean(0))
    np.testing.assert_allclose(posterior.variance, passes.var(0))
    assert np.all(posterior.variance > 0)
    np.testing.assert_allclose(reward.pass_scores(PROMPTS[2:3], COMPLETIONS[2:3])[:, 0], passes[:, 2], rtol=1e-5)


def test_mc_dropout_on_the_lora_path(tmp_path, bt_dir):
    from peft import LoraConfig, get_peft_model

    from trl_icrm.rewards import MCDropoutReward
    from trl_icrm.rewards.classifier import load_sequence_classifier

    model, tokenizer = load_sequence_classifier(bt_dir)
    lora = LoraConfig(task_type="SEQ_CLS", r=2, lora_alpha=4, lora_dropout=0.5, target_modules=["q_proj", "v_proj"])
    model = get_peft_model(model, lora)
    for name, parameter in model.named_parameters():  # LoRA B starts at 0: start off it so dropout shows
        if ".lora_B." in name:
            torch.nn.init.normal_(parameter, std=0.5)
    reward = MCDropoutReward(model.eval(), tokenizer, where="lora", num_passes=5, seed=2)
    passes = reward.pass_scores(PROMPTS, COMPLETIONS)
    np.testing.assert_array_equal(reward.pass_scores(PROMPTS, COMPLETIONS), passes)  # the fixed seed schedule
    assert not np.allclose(passes[0], passes[1])
    posterior = reward.score(PROMPTS, COMPLETIONS)
    np.testing.assert_allclose(posterior.mean, passes.mean(0))
    np.testing.assert_allclose(posterior.variance, passes.var(0))
    assert not any(m.training for m in model.modules())  # dropout off again after scoring
    with pytest.raises(ValueError, match="LoRA"):
        MCDropoutReward(bt_dir, where="lora")


def test_train_command_and_load_reward_end_to_end(bt_dir, tmp_path):
    """`trl-icrm train --method head_ensemble` on tiny data, its features cached for the next run, then the saved
    ensemble through the registry, `--reward` choices, best-of-N selection and the reward server's loader."""
    from datasets import Dataset

    from trl_icrm.best_of_n import combine_rewards
    from trl_icrm.cli import main
    from trl_icrm.rewards import HeadEnsembleReward, load_reward
    from trl_icrm.scripts._common import reward_choices
    from trl_icrm.serving.loading import load_serving_reward

    Dataset.from_list(_pairs(24)).save_to_disk(str(tmp_path / "pairs"))
    args = ["train", "--method", "head_ensemble", "--model_name_or_path", bt_dir, "--dataset_name", str(tmp_path / "pairs"),
            "--eval_fraction", "0.25", "--num_members", "3", "--head_type", "linear", "--bootstrap",
            "--feature_cache_dir", str(tmp_path / "cache"), "--num_train_epochs", "2",
            "--per_device_train_batch_size", "8", "--learning_rate", "1e-2", "--use_cpu", "True", "--report_to", "none"]  # fmt: skip
    main([*args, "--output_dir", str(tmp_path / "heads")])
    metrics = json.loads((tmp_path / "heads" / "reward_model_metrics.json").read_text())
    distinct = {(pair["prompt"], pair[side]) for pair in _pairs(24) for side in ("chosen", "rejected")}
    assert metrics["method"] == "head_ensemble" and metrics["features_encoded"] == len(distinct)  # each sequence once
    assert len(metrics["eval"]["head_ensemble"]["member_accuracy"]) == 3 and len(metrics["log_history"]) == 2
    main([*args, "--output_dir", str(tmp_path / "heads-again")])
    again = json.loads((tmp_path / "heads-again" / "reward_model_metrics.json").read_text())
    assert again["features_encoded"] == 0 and again["log_history"] == metrics["log_history"]
    reward = load_reward(tmp_path / "heads", penalty="lcb")
    assert isinstance(reward, HeadEnsembleReward) and reward.heads.config.head_type == "linear"
    assert {"head_ensemble", "mc_dropout"} <= set(reward_choices())
    means, variances = reward.score_with_uncertainty(PROMPTS, COMPLETIONS)
    selected = combine_rewards([means], [variances], penalty="lcb")
    np.testing.assert_allclose(selected, reward(prompts=PROMPTS, completions=COMPLETIONS))
    served = load_serving_reward([str(tmp_path / "heads")], penalty="var_penalty")
    assert isinstance(served, HeadEnsembleReward) and served.penalty == "var_penalty"


@pytest.fixture(scope="module")
def lora_ensemble_dir(tmp_path_factory, default_model_dir) -> str:
    """Three BT LoRA adapters (each with its own score head) on one tiny 3-block base, adapted in the last block only."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer, LlamaForSequenceClassification

    from trl_icrm.uncertainty.lora_ensemble import write_lora_ensemble_config
    from trl_icrm.utils.testing import random_llama_config

    root = tmp_path_factory.mktemp("uq-lora")
    tokenizer = AutoTokenizer.from_pretrained(default_model_dir)
    torch.manual_seed(0)
    config = random_llama_config(tokenizer, num_labels=1, num_hidden_layers=3, hidden_size=16, intermediate_size=32)
    LlamaForSequenceClassification(config).save_pretrained(root / "base")
    tokenizer.save_pretrained(root / "base")
    members = []
    for m in range(3):
        torch.manual_seed(10 + m)
        base = LlamaForSequenceClassification.from_pretrained(root / "base")
        lora = LoraConfig(
            task_type="SEQ_CLS", r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], layers_to_transform=[2]
        )
        model = get_peft_model(base, lora)
        for (
            name,
            parameter,
        ) in model.named_parameters():  # LoRA B starts at 0: start off it so the members differ there
            if ".lora_B." in name:
                torch.nn.init.normal_(parameter, std=0.3)
        model.save_pretrained(root / "ensemble" / f"member_{m}")
        tokenizer.save_pretrained(root / "ensemble" / f"member_{m}")
        members.append(str(root / "ensemble" / f"member_{m}"))
    write_lora_ensemble_config(root / "ensemble", members, last_layers=1)
    return str(root / "ensemble")


def test_lora_ensemble_shares_the_lower_blocks_and_equals_its_members(lora_ensemble_dir):
    """Each member's scores equal the member loaded alone; running the unadapted blocks once gives the same scores;
    the posterior is the members' mean and variance; the members differ."""
    from trl_icrm.laplace import load_bt_model
    from trl_icrm.models import pad_right
    from trl_icrm.rewards import LoRAEnsembleReward, load_reward, reward_model_kind
    from trl_icrm.uncertainty.lora_ensemble import first_adapted_layer

    assert reward_model_kind(lora_ensemble_dir) == "lora_ensemble"
    reward = load_reward(lora_ensemble_dir, batch_size=3)
    assert isinstance(reward, LoRAEnsembleReward) and reward.num_members == 3
    assert first_adapted_layer(reward.model) == 2
    shared = reward.member_scores(PROMPTS, COMPLETIONS)
    reward.share_lower = False
    np.testing.assert_allclose(reward.member_scores(PROMPTS, COMPLETIONS), shared, rtol=1e-5, atol=1e-6)
    alone = []
    for m in range(3):
        model, tokenizer = load_bt_model(f"{lora_ensemble_dir}/member_{m}")
        rows = [reward.renderer.encode_query(p, c) for p, c in zip(PROMPTS, COMPLETIONS, strict=True)]
        ids, mask = pad_right(rows, tokenizer.pad_token_id)
        with torch.no_grad():
            alone.append(model(input_ids=ids, attention_mask=mask).logits[:, 0].double().numpy())
    np.testing.assert_allclose(shared, np.stack(alone), rtol=1e-4, atol=1e-5)
    posterior = reward.score(PROMPTS, COMPLETIONS)
    np.testing.assert_allclose(posterior.mean, shared.mean(0))
    np.testing.assert_allclose(posterior.variance, shared.var(0))
    assert not np.allclose(shared[0], shared[1]) and not np.allclose(shared[1], shared[2])


def test_train_lora_ensemble_command(tiny_causal_lm, tmp_path):
    from datasets import Dataset

    from trl_icrm.cli import main
    from trl_icrm.rewards import LoRAEnsembleReward, load_reward

    Dataset.from_list(_pairs(16)).save_to_disk(str(tmp_path / "pairs"))
    main(["train", "--method", "lora_ensemble", "--model_name_or_path", tiny_causal_lm, "--dataset_name",
          str(tmp_path / "pairs"), "--eval_fraction", "0.25", "--num_members", "2", "--lora_last_layers", "1",
          "--output_dir", str(tmp_path / "lora"), "--max_steps", "2", "--per_device_train_batch_size", "4",
          "--max_length", "512", "--use_cpu", "True", "--report_to", "none"])  # fmt: skip
    metrics = json.loads((tmp_path / "lora" / "reward_model_metrics.json").read_text())
    assert set(metrics["eval"]) == {"member_0", "member_1", "lora_ensemble"}
    config = json.loads((tmp_path / "lora" / "lora_ensemble_config.json").read_text())
    assert config["members"] == ["member_0", "member_1"] and config["seeds"] == [42, 43]
    reward = load_reward(tmp_path / "lora", method="worst_case")
    assert isinstance(reward, LoRAEnsembleReward)
    scores = reward.member_scores(PROMPTS, COMPLETIONS)
    assert not np.allclose(scores[0], scores[1])
    np.testing.assert_allclose(reward(prompts=PROMPTS, completions=COMPLETIONS), scores.min(0))


def test_last_layer_laplace_fits_on_cached_features(bt_dir, tmp_path):
    """The last-layer Laplace posterior fitted on cached features equals the one fitted on the backbone's; a refit on
    the same model and pairs reads the cache and never runs the backbone."""
    from trl_icrm.demonstrations import DemonstrationRenderer
    from trl_icrm.laplace import fit_laplace, load_bt_model
    from trl_icrm.laplace.adapter import pack_rows
    from trl_icrm.models import backbone_and_head

    pairs = _pairs(12)
    model, tokenizer = load_bt_model(bt_dir)
    plain = fit_laplace(model, tokenizer, pairs, "last_layer", progress_bar=False)
    cached = fit_laplace(model, tokenizer, pairs, "last_layer", progress_bar=False, feature_cache_dir=tmp_path)
    assert cached.prior_precision == pytest.approx(plain.prior_precision, rel=1e-4)
    renderer = DemonstrationRenderer(tokenizer)
    rows = pack_rows([renderer.encode_query(p, c) for p, c in zip(PROMPTS, COMPLETIONS, strict=True)])
    for got, expected in zip(cached.predict_rows(rows), plain.predict_rows(rows), strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
    fresh, tokenizer = load_bt_model(bt_dir)
    backbone, _ = backbone_and_head(fresh)

    def fail(*args, **kwargs):
        raise AssertionError("the backbone ran although every feature is cached")

    backbone.forward = fail
    again = fit_laplace(fresh, tokenizer, pairs, "last_layer", progress_bar=False, feature_cache_dir=tmp_path)
    assert again.prior_precision == pytest.approx(cached.prior_precision, rel=1e-6)

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The reward-posterior interface, written once for every reward model: posteriors, penalties, ensembles, registry."""

import numpy as np
import pytest

from trl_icrm import (
    BestOfNSampler,
    EnsembleReward,
    ICRMReward,
    MathVerifyReward,
    RewardModel,
    RewardPosterior,
    SequenceClassifierReward,
    build_reward,
    load_reward,
    register_reward_kind,
    reward_model_kind,
)
from trl_icrm.rewards import REWARD_KINDS, RewardKind, supports_uncertainty


DEMOS = [{"prompt": "river stone cloud?", "chosen": " yes", "rejected": " no"}]
PROMPTS, COMPLETIONS = ["apple river?", "apple river?", "quick seven?"], [" yes", " no", " yes"]


@pytest.fixture(scope="module")
def bt_dir(tmp_path_factory, default_model_dir) -> str:
    from trl_icrm.utils.testing import save_random_models

    return save_random_models(tmp_path_factory.mktemp("bt"), default_model_dir, num_labels=1)["sequence_classifier"]


@pytest.fixture(scope="module")
def second_icrm_dir(tmp_path_factory, default_model_dir) -> str:
    """An ICRM model with other random weights than `random_icrm_dir`."""
    from trl_icrm.icrm.modeling import load_icrm_model
    from trl_icrm.utils.testing import save_random_models

    backbone = save_random_models(tmp_path_factory.mktemp("backbone"), default_model_dir, seed=7)["causal_lm"]
    model, tokenizer = load_icrm_model(backbone)
    folder = tmp_path_factory.mktemp("icrm-b")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_posterior_penalties_and_checks():
    posterior = RewardPosterior(reward=[2.0, -1.0], mean=[0.8, 0.3], variance=[0.04, 0.01], scale="probability")
    assert posterior.penalized(None).tolist() == [2.0, -1.0]
    assert posterior.penalized("mean").tolist() == [0.8, 0.3]
    np.testing.assert_allclose(posterior.penalized("lcb", 2.0), [0.8 - 2 * 0.2, 0.3 - 2 * 0.1])
    np.testing.assert_allclose(posterior.penalized("var_penalty", 5.0), [0.8 - 0.2, 0.3 - 0.05])
    with pytest.raises(ValueError, match="one value per completion"):
        RewardPosterior(reward=[1.0], mean=[1.0, 2.0], variance=None, scale="score")
    with pytest.raises(ValueError, match="variances must be >= 0"):
        RewardPosterior(reward=[1.0], mean=[1.0], variance=[-0.1], scale="score")
    without_variance = RewardPosterior(reward=[1.0], mean=[1.0], variance=None, scale="score")
    with pytest.raises(ValueError, match="needs a variance"):
        without_variance.penalized("lcb")
    with pytest.raises(ValueError, match="Unknown penalty 'std'"):
        without_variance.penalized("std")


def test_icrm_and_bt_posteriors(random_icrm_dir, bt_dir):
    icrm = ICRMReward(random_icrm_dir, fixed_demonstrations=DEMOS)
    posterior = icrm.score(PROMPTS, COMPLETIONS)
    assert posterior.scale == "probability" and posterior.variance is not None and len(posterior) == 3
    np.testing.assert_allclose(posterior.mean, 1 / (1 + np.exp(-posterior.reward)), rtol=1e-6)
    kappa = posterior.extras["confidence"]
    np.testing.assert_allclose(posterior.variance, posterior.mean * (1 - posterior.mean) / (kappa + 1), rtol=1e-6)
    assert icrm(PROMPTS, COMPLETIONS) == pytest.approx(posterior.reward.tolist(), abs=1e-6)

    bt = SequenceClassifierReward(bt_dir, name="bt")
    scores = bt.score(PROMPTS, COMPLETIONS)
    assert scores.scale == "score" and scores.variance is None and scores.reward.tolist() == scores.mean.tolist()
    assert bt(PROMPTS, COMPLETIONS) == pytest.approx(scores.reward.tolist(), abs=1e-6)
    assert supports_uncertainty(icrm) and not supports_uncertainty(bt)
    with pytest.raises(ValueError, match="needs a reward model with a variance"):
        SequenceClassifierReward(bt_dir, penalty="lcb")


def test_ensemble_is_the_mixture_of_its_members(random_icrm_dir, second_icrm_dir, bt_dir):
    members = [ICRMReward(path, fixed_demonstrations=DEMOS) for path in (random_icrm_dir, second_icrm_dir)]
    posteriors = [member.score(PROMPTS, COMPLETIONS) for member in members]
    means = np.stack([p.mean for p in posteriors])
    variances = np.stack([p.variance for p in posteriors])
    for method, expected_reward in (
        ("mean", np.mean([p.reward for p in posteriors], axis=0)),
        ("worst_case", np.min([p.reward for p in posteriors], axis=0)),
    ):
        ensemble = EnsembleReward(members, method=method)
        posterior = ensemble.score(PROMPTS, COMPLETIONS)
        np.testing.assert_allclose(posterior.reward, expected_reward, rtol=1e-9)
        np.testing.assert_allclose(posterior.mean, means.mean(axis=0), rtol=1e-9)
        np.testing.assert_allclose(posterior.variance, variances.mean(axis=0) + means.var(axis=0), rtol=1e-9)
    lcb = EnsembleReward(members, penalty="lcb", penalty_coef=1.5)(PROMPTS, COMPLETIONS)
    total_std = np.sqrt(variances.mean(axis=0) + means.var(axis=0))
    np.testing.assert_allclose(lcb, means.mean(axis=0) - 1.5 * total_std, rtol=1e-9)
    with pytest.raises(ValueError, match="share one scale"):
        EnsembleReward([members[0], SequenceClassifierReward(bt_dir)])
    with pytest.raises(ValueError, match="Unknown ensemble method"):
        EnsembleReward(members, method="median")


def test_registry_detects_and_loads_every_kind(random_icrm_dir, bt_dir, tiny_sequence_classifier):
    assert reward_model_kind(random_icrm_dir) == "icrm" and reward_model_kind(bt_dir) == "bt"
    assert isinstance(load_reward(random_icrm_dir, penalty="lcb", fixed_demonstrations=DEMOS), ICRMReward)
    assert isinstance(load_reward(bt_dir, name="bt"), SequenceClassifierReward)
    assert isinstance(load_reward("verifier"), MathVerifyReward)
    assert isinstance(build_reward("bt", bt_dir), SequenceClassifierReward)
    with pytest.raises(ValueError, match="none of the known kinds"):
        reward_model_kind(tiny_sequence_classifier)  # two outputs, no ICRM settings
    with pytest.raises(ValueError, match="Unknown reward kind 'laplace-vrm'"):
        load_reward(bt_dir, kind="laplace-vrm")
    with pytest.raises(ValueError, match="is a Bradley-Terry reward model .*, not a VRM reward model"):
        load_reward(bt_dir, kind="vrm")  # a registered kind forced on a model of another kind names the model's
    with pytest.raises(ValueError, match="needs a reward model"):
        build_reward("icrm")


def test_a_new_kind_registers_once_and_loads_everywhere(tiny_sequence_classifier, monkeypatch):
    class Constant(RewardModel):
        def __init__(self, path, value=1.0, **kwargs):
            super().__init__(**kwargs)
            self.value = value

        def score(self, prompts, completions, **columns):
            values = np.full(len(completions), self.value)
            return RewardPosterior(values, values, None, self.scale)

    monkeypatch.setattr("trl_icrm.rewards.registry.REWARD_KINDS", dict(REWARD_KINDS))
    register_reward_kind(RewardKind("constant", lambda config: config.num_labels == 2, Constant, "test"), first=True)
    assert reward_model_kind(tiny_sequence_classifier) == "constant"
    reward = load_reward(tiny_sequence_classifier, value=3.0, name="c")
    assert reward(["p"], ["c"]) == [3.0] and reward.__name__ == "c"


def test_best_of_n_selects_with_any_reward_model(random_icrm_dir, bt_dir, tiny_causal_lm):
    icrm = ICRMReward(random_icrm_dir, fixed_demonstrations=DEMOS)
    sampler = BestOfNSampler(tiny_causal_lm, icrm, n=3, max_new_tokens=3, penalty="lcb", seed=0)
    completions = [[" yes", " no", " maybe"]]
    [output] = sampler.select(["apple river?"], completions)
    posterior = icrm.score(["apple river?"] * 3, completions[0])
    np.testing.assert_allclose(output.scores, posterior.penalized("lcb"), rtol=1e-6)
    assert output.index == int(np.argmax(posterior.penalized("lcb")))
    with pytest.raises(ValueError, match="score_with_uncertainty"):
        BestOfNSampler(tiny_causal_lm, SequenceClassifierReward(bt_dir), n=2, penalty="lcb")

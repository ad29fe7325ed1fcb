# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
import csv
import itertools
import json
import math

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from trl_icrm.best_of_n import (
    BestOfNCurve,
    BestOfNSampler,
    SupportsUncertainty,
    aggregate_ensemble,
    best_of_n_curve,
    best_of_n_weights,
    bootstrap_ci,
    combine_rewards,
    expected_best_of_n,
    kl_bon,
    penalized_reward,
    score_completions,
)
from trl_icrm.experiments.best_of_n import curves_from_scores, load_curves, run_best_of_n_experiment, save_curves
from trl_icrm.rewards import supports_uncertainty


# ---------------------------------------------------------------------------------------------------------------------
# kl_bon
# ---------------------------------------------------------------------------------------------------------------------


def test_kl_bon_known_values():
    assert kl_bon(1) == 0.0
    assert kl_bon(2) == pytest.approx(math.log(2) - 0.5, abs=1e-15)
    assert kl_bon(4) == pytest.approx(math.log(4) - 0.75, abs=1e-15)
    assert kl_bon(32) == pytest.approx(5 * math.log(2) - 31 / 32, abs=1e-15)
    assert round(kl_bon(16), 4) == 1.8351  # log 16 - 15/16
    np.testing.assert_array_equal(kl_bon([1, 2, 4, 32]), [kl_bon(1), kl_bon(2), kl_bon(4), kl_bon(32)])


def test_kl_bon_is_increasing_and_grows_like_log_n():
    values = kl_bon(np.arange(1, 2049))
    assert np.all(np.diff(values) > 0)
    assert values[-1] == pytest.approx(math.log(2048) - 1, abs=1e-3)


@pytest.mark.parametrize("n", [0, 0.5, -1, float("nan")])
def test_kl_bon_rejects_n_below_one(n):
    with pytest.raises(ValueError, match="n must be"):
        kl_bon(n)
    with pytest.raises(ValueError, match="n must be >= 1"):
        kl_bon([1, 2, n])


# ---------------------------------------------------------------------------------------------------------------------
# Order-statistics estimator
# ---------------------------------------------------------------------------------------------------------------------


def brute_force_best_of_n(scores, values, n):
    """Average over every n-subset of the value of its best-scored sample, ties broken uniformly at random."""
    total = 0.0
    subsets = list(itertools.combinations(range(len(scores)), n))
    for subset in subsets:
        best = max(scores[i] for i in subset)
        tied = [i for i in subset if scores[i] == best]
        total += sum(values[i] for i in tied) / len(tied)
    return total / len(subsets)


@pytest.mark.parametrize("with_ties", [False, True])
def test_estimator_equals_brute_force_over_all_subsets(with_ties):
    rng = np.random.default_rng(0)
    for num_samples in range(1, 8):
        for _ in range(5):
            if with_ties:  # few distinct scores: many ties
                scores = rng.integers(0, 3, size=num_samples).astype(float)
            else:
                scores = rng.normal(size=num_samples)
            values = rng.normal(size=num_samples)
            expected = [brute_force_best_of_n(scores.tolist(), values.tolist(), n) for n in range(1, num_samples + 1)]
            np.testing.assert_allclose(expected_best_of_n(scores, values), expected, rtol=1e-12, atol=1e-12)


def test_estimator_handles_prompts_independently():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 4, size=(6, 7)).astype(float)
    values = rng.normal(size=(6, 7))
    result = expected_best_of_n(scores, values, ns=[1, 3, 7])
    assert result.shape == (3, 6)
    for p in range(6):
        expected = [brute_force_best_of_n(scores[p].tolist(), values[p].tolist(), n) for n in (1, 3, 7)]
        np.testing.assert_allclose(result[:, p], expected, rtol=1e-12, atol=1e-12)


def test_weights_are_exact_probabilities():
    weights = best_of_n_weights([5.0, 1.0, 3.0, 2.0, 4.0], 3)
    # Sorted ascending the samples are 1,2,3,4,5; rank i (1-based) has weight C(i-1, 2) / C(5, 3).
    np.testing.assert_allclose(weights, [6 / 10, 0, 1 / 10, 0, 3 / 10], rtol=1e-15)
    np.testing.assert_allclose(best_of_n_weights([2.0, 7.0, 1.0], 1), [1 / 3] * 3, rtol=1e-15)
    np.testing.assert_array_equal(best_of_n_weights([2.0, 7.0, 1.0], 3), [0.0, 1.0, 0.0])
    # Two samples tie for the max: best-of-3 of 3 picks either with probability 1/2.
    np.testing.assert_array_equal(best_of_n_weights([7.0, 7.0, 1.0], 3), [0.5, 0.5, 0.0])
    big = best_of_n_weights(np.random.default_rng(0).normal(size=(3, 200)), 60)
    np.testing.assert_allclose(big.sum(axis=-1), 1.0, rtol=1e-12)
    assert np.all(big >= 0)


def test_estimator_matches_monte_carlo_mean_on_larger_cases():
    rng = np.random.default_rng(2)
    num_samples, n, draws = 40, 10, 100_000
    scores = rng.normal(size=num_samples)
    values = scores + rng.normal(size=num_samples)  # a gold reward correlated with the proxy
    exact = expected_best_of_n(scores, values, ns=[n])[0]
    # The estimator is exact, hence deterministic and independent of the order of the samples.
    assert expected_best_of_n(scores, values, ns=[n])[0] == exact
    permutation = rng.permutation(num_samples)
    assert expected_best_of_n(scores[permutation], values[permutation], ns=[n])[0] == pytest.approx(exact, abs=1e-14)
    subsets = rng.random((draws, num_samples)).argsort(axis=1)[:, :n]
    picked = subsets[np.arange(draws), scores[subsets].argmax(axis=1)]
    monte_carlo = values[picked]
    standard_error = monte_carlo.std() / math.sqrt(draws)
    assert abs(monte_carlo.mean() - exact) < 4 * standard_error
    # Best-of-n differs from the plain mean by far more than that error, so the comparison has power.
    assert exact - values.mean() > 10 * standard_error


def test_estimator_is_increasing_in_n_for_the_selection_score_itself():
    scores = np.random.default_rng(3).normal(size=(5, 16))
    curve = expected_best_of_n(scores)
    assert np.all(np.diff(curve, axis=0) >= -1e-12)
    np.testing.assert_allclose(curve[0], scores.mean(axis=1))
    np.testing.assert_allclose(curve[-1], scores.max(axis=1))


def test_nan_scores_rank_lowest_and_zero_weight_nan_values_do_not_contaminate():
    scores = [np.nan, 1.0, 2.0, np.nan]
    weights = best_of_n_weights(scores, 2)
    # Sorted: nan, nan (tied lowest), 1, 2. Rank weights C(i-1,1)/C(4,2) = 0, 1/6, 2/6, 3/6; the NaN pair averages.
    np.testing.assert_allclose(weights, [1 / 12, 2 / 6, 3 / 6, 1 / 12])
    assert expected_best_of_n([np.nan, 1.0, 2.0], [np.nan, 0.0, 1.0], ns=[3])[0] == 1.0
    assert np.isnan(expected_best_of_n([np.nan, 1.0, 2.0], [np.nan, 0.0, 1.0], ns=[1])[0])


def test_estimator_bad_input():
    with pytest.raises(ValueError, match="at least 4 samples"):
        expected_best_of_n([1.0, 2.0, 3.0], ns=[4])
    with pytest.raises(ValueError, match="n must be >= 1"):
        best_of_n_weights([1.0, 2.0], 0)
    with pytest.raises(ValueError, match="integer"):
        best_of_n_weights([1.0, 2.0], 1.5)
    with pytest.raises(ValueError, match="at least one sample"):
        expected_best_of_n([])
    with pytest.raises(ValueError, match="shape"):
        expected_best_of_n([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="numbers"):
        expected_best_of_n(["a", "b"])


# ---------------------------------------------------------------------------------------------------------------------
# Bootstrap, penalties, ensembles, curves
# ---------------------------------------------------------------------------------------------------------------------


def test_bootstrap_ci():
    samples = np.random.default_rng(0).normal(loc=3.0, size=(200, 2))
    low, high = bootstrap_ci(samples, num_resamples=2000, seed=0)
    assert low.shape == high.shape == (2,)
    assert np.all(low < samples.mean(axis=0)) and np.all(samples.mean(axis=0) < high)
    # About +-1.96 standard errors of the mean for a normal sample (2000 resamples: ~2% error on the width).
    np.testing.assert_allclose(high - low, 2 * 1.96 * samples.std(axis=0) / math.sqrt(200), rtol=0.05)
    again = bootstrap_ci(samples, num_resamples=2000, seed=0)
    np.testing.assert_array_equal(low, again[0])
    low, high = bootstrap_ci(np.full((10, 3), 0.25))
    np.testing.assert_array_equal(low, 0.25)
    np.testing.assert_array_equal(high, 0.25)
    with pytest.raises(ValueError, match="at least one item"):
        bootstrap_ci(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0], confidence=1.0)


def test_penalties_and_ensembles():
    np.testing.assert_allclose(penalized_reward([0.8, 0.6], [0.04, 0.0], "lcb", 2.0), [0.4, 0.6])
    np.testing.assert_allclose(penalized_reward([0.8, 0.6], [0.04, 0.0], "var_penalty", 10.0), [0.4, 0.6])
    np.testing.assert_array_equal(penalized_reward([0.8], [0.04], None), [0.8])
    with pytest.raises(ValueError, match="Unknown penalty"):
        penalized_reward([0.8], [0.04], "std")
    members = [[1.0, 4.0, np.nan, np.nan], [3.0, 0.0, 2.0, np.nan]]
    np.testing.assert_array_equal(aggregate_ensemble(members, "mean"), [2.0, 2.0, 2.0, np.nan])
    np.testing.assert_array_equal(aggregate_ensemble(members, "worst_case"), [1.0, 0.0, 2.0, np.nan])
    np.testing.assert_array_equal(aggregate_ensemble(members, "mean_minus_std", 0.5), [1.5, 1.0, 2.0, np.nan])
    with pytest.raises(ValueError, match="Unknown ensemble"):
        aggregate_ensemble(members, "median")
    # Penalize each member, then average = average mean minus the average std.
    combined = combine_rewards([[0.9, 0.5], [0.7, 0.5]], [[0.04, 0.0], [0.0, 0.0]], penalty="lcb", penalty_coef=1.0)
    np.testing.assert_allclose(combined, [0.7, 0.5])
    with pytest.raises(ValueError, match="variances"):
        combine_rewards([[0.9]], None, penalty="lcb")


def test_curve_over_prompts_with_confidence_intervals_and_skipped_prompts():
    rng = np.random.default_rng(0)
    proxy = rng.normal(size=(30, 8))
    gold = proxy - 0.5 * proxy**2  # rises, then falls: over-optimization
    gold[3, 5] = np.nan  # e.g. a gold verifier that returned None
    curve = best_of_n_curve(proxy, {"proxy": proxy, "gold": gold}, name="toy", num_bootstrap=500)
    assert curve.ns == list(range(1, 9))
    assert curve.kl_bon == [kl_bon(n) for n in range(1, 9)]
    assert (curve.num_prompts, curve.num_prompts_skipped, curve.num_samples) == (29, 1, 8)
    keep = np.arange(30) != 3
    expected_gold = expected_best_of_n(proxy[keep], gold[keep]).mean(axis=1)
    np.testing.assert_allclose(curve.metrics["gold"]["mean"], expected_gold)
    proxy_mean = np.array(curve.metrics["proxy"]["mean"])
    assert np.all(np.diff(proxy_mean) > 0)
    for metric in ("proxy", "gold"):
        stats = curve.metrics[metric]
        assert np.all(np.array(stats["ci_low"]) <= np.array(stats["mean"]))
        assert np.all(np.array(stats["mean"]) <= np.array(stats["ci_high"]))
    assert BestOfNCurve.from_dict(json.loads(json.dumps(curve.to_dict()))) == curve
    subset = best_of_n_curve(proxy, {"gold": gold}, ns=[1, 4])
    assert subset.ns == [1, 4] and len(subset.metrics["gold"]["mean"]) == 2


def test_curve_bad_input():
    proxy = np.zeros((4, 8))
    with pytest.raises(ValueError, match="N >= 16"):
        best_of_n_curve(proxy, {"proxy": proxy}, ns=[1, 16])
    with pytest.raises(ValueError, match="n must be >= 1"):
        best_of_n_curve(proxy, {"proxy": proxy}, ns=[0, 1])
    with pytest.raises(ValueError, match="at least one metric"):
        best_of_n_curve(proxy, {})
    with pytest.raises(ValueError, match="nothing to average"):
        best_of_n_curve(proxy, {"gold": np.full((4, 8), np.nan)})
    with pytest.raises(ValueError, match="num_prompts, N"):
        best_of_n_curve(np.zeros(8), {"proxy": np.zeros(8)})


# ---------------------------------------------------------------------------------------------------------------------
# Sampler
# ---------------------------------------------------------------------------------------------------------------------


def _text(completion) -> str:
    return completion if isinstance(completion, str) else completion[0]["content"]


def length_reward(prompts, completions, **kwargs):
    return [float(len(_text(c))) for c in completions]


def vowel_reward(prompts, completions, **kwargs):
    return [float(sum(ch in "aeiou" for ch in _text(c))) for c in completions]


class FakeUncertainReward:
    """Deterministic reward with a posterior: mean from the length, variance from the count of letter 'e'."""

    __name__ = "fake_uncertain"

    def __call__(self, prompts, completions, **kwargs):
        return self.score_with_uncertainty(prompts, completions, **kwargs)[0]

    def score_with_uncertainty(self, prompts, completions, **kwargs):
        means = [len(_text(c)) / 100.0 for c in completions]
        variances = [(1 + _text(c).count("e") + _text(c).count(" ")) / 100.0 for c in completions]
        return means, variances


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread(one_torch_thread_for_module):
    """Tiny models gain nothing from intra-op threads (see conftest)."""


@pytest.fixture(scope="module")
def policy(tiny_causal_lm):
    model = AutoModelForCausalLM.from_pretrained(tiny_causal_lm, dtype=torch.float32)
    return model, AutoTokenizer.from_pretrained(tiny_causal_lm)


PROMPTS = ["What is 2 + 3?", "Name a color.", "Count to three."]


def _sampler(policy, reward_funcs, **kwargs):
    model, tokenizer = policy
    return BestOfNSampler(model, reward_funcs, tokenizer, **{"n": 8, "max_new_tokens": 8, "seed": 0, **kwargs})


@pytest.fixture(scope="module")
def candidates(policy):
    """8 sampled candidates for each of PROMPTS (seed 0), re-scored by the selection tests without generating again."""
    return _sampler(policy, length_reward).generate(PROMPTS)


def test_sampler_picks_the_argmax_and_reports_everything(policy, candidates):
    outputs = _sampler(policy, length_reward).sample(PROMPTS)
    assert len(outputs) == 3
    # Seeded: the same seed gives the same candidates as the fixture's separate `generate` call.
    assert [o.completions for o in outputs] == candidates[0]
    assert [o.completion_ids for o in outputs] == candidates[1]
    for prompt, output in zip(PROMPTS, outputs, strict=True):
        rewards = output.rewards["length_reward"]
        assert output.prompt == prompt and len(output.completions) == 8 and len(output.completion_ids) == 8
        assert rewards == [float(len(c)) for c in output.completions]
        assert output.index == int(np.argmax(rewards)) and output.completion == output.completions[output.index]
        assert output.scores == rewards and output.variances == {}
        assert output.kl_bon == kl_bon(8)
        assert all(1 <= len(ids) <= 8 for ids in output.completion_ids)
    assert len({c for output in outputs for c in output.completions}) > 3  # actually sampled, not greedy copies


def test_sampler_is_repeatable_and_leaves_the_global_rng_alone(policy, candidates):
    state = torch.random.get_rng_state()
    again = _sampler(policy, length_reward).generate(PROMPTS)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert again == candidates
    assert _sampler(policy, length_reward, seed=1).generate(PROMPTS)[0] != candidates[0]
    # Fewer sequences per generate call than n: still n candidates per prompt.
    completions, completion_ids = _sampler(policy, length_reward, generation_batch_size=3).generate(PROMPTS[:2])
    assert [len(c) for c in completions] == [len(i) for i in completion_ids] == [8, 8]


@pytest.mark.parametrize("generation_batch_size", [64, 3])
def test_shared_prompt_cache_gives_the_same_candidates(policy, generation_batch_size):
    # Each prompt encoded once and its cache shared by the n candidates, or encoded n times: the same samples.
    conversations = [[{"role": "user", "content": p}] for p in PROMPTS]
    for prompts in (PROMPTS, conversations):
        settings = {"n": 5, "generation_batch_size": generation_batch_size}
        sampler = _sampler(policy, length_reward, **settings)
        prefixes, prefill = [], sampler._prefill

        def recording_prefill(batch, prefixes=prefixes, prefill=prefill):
            prefixes.append(prefill(batch))
            return prefixes[-1]

        sampler._prefill = recording_prefill
        shared = sampler.generate(prompts)
        assert prefixes and all(prefix is not None for prefix in prefixes)  # the shared-cache path did run
        assert shared == _sampler(policy, length_reward, share_prompt_cache=False, **settings).generate(prompts)


def test_sampler_conversational_prompts_and_columns_reach_reward_functions(policy):
    calls = []

    def recording_reward(prompts, completions, completion_ids=None, solution=None, **kwargs):
        calls.append((prompts, completions, completion_ids, solution, kwargs))
        return [1.0] * len(completions)

    prompts = [[{"role": "user", "content": "What is 2 + 3?"}], [{"role": "user", "content": "What is 1 + 1?"}]]
    outputs = _sampler(policy, recording_reward, n=3).sample(prompts, solution=["5", "2"])
    [(seen_prompts, completions, completion_ids, solution, kwargs)] = calls
    assert solution == ["5", "5", "5", "2", "2", "2"]
    assert seen_prompts == [prompts[0]] * 3 + [prompts[1]] * 3
    assert all(c[0]["role"] == "assistant" and isinstance(c[0]["content"], str) for c in completions)
    assert completion_ids == [ids for o in outputs for ids in o.completion_ids]
    assert callable(kwargs["log_metric"]) and callable(kwargs["log_extra"])
    assert outputs[1].completion[0]["role"] == "assistant"
    assert all(o.index == 0 for o in outputs)  # all scores tie: the first candidate


def test_uncertainty_penalty_moves_the_choice_toward_confident_candidates(policy, candidates):
    reward = FakeUncertainReward()
    assert isinstance(reward, SupportsUncertainty)
    coefs = (0.0, 0.3, 1.0, 3.0, 100.0)
    for penalty in ("lcb", "var_penalty"):
        selected = {}
        for coef in coefs:
            outputs = _sampler(policy, reward, penalty=penalty, penalty_coef=coef).select(PROMPTS, *candidates)
            for output in outputs:
                means = np.array(output.rewards["fake_uncertain"])
                variances = np.array(output.variances["fake_uncertain"])
                expected = means - coef * (np.sqrt(variances) if penalty == "lcb" else variances)
                np.testing.assert_allclose(output.scores, expected)
                assert output.index == int(np.argmax(expected))
            selected[coef] = [
                (o.rewards["fake_uncertain"][o.index], o.variances["fake_uncertain"][o.index]) for o in outputs
            ]
        # A larger k never selects a less confident candidate, nor one with a higher mean (comparative statics).
        for small, large in itertools.pairwise(coefs):
            for (mean_small, var_small), (mean_large, var_large) in zip(selected[small], selected[large], strict=True):
                assert var_large <= var_small and mean_large <= mean_small
        # k = 0 is plain best-of-n on the mean; a huge k picks the most confident candidate; here they differ.
        for output, (mean_plain, _), (_, var_cautious) in zip(outputs, selected[0.0], selected[100.0], strict=True):
            assert mean_plain == max(output.rewards["fake_uncertain"])
            assert var_cautious == min(output.variances["fake_uncertain"])
        assert selected[0.0] != selected[100.0]


def test_ensembles_change_the_choice_in_the_expected_direction(policy, candidates):
    def disagreement(output):
        return abs(output.rewards["length_reward"][output.index] - output.rewards["vowel_reward"][output.index])

    def scaled_vowels(prompts, completions, **kwargs):  # on the scale of the length
        return [3 * r for r in vowel_reward(prompts, completions)]

    scaled_vowels.__name__ = "vowel_reward"
    results = {}
    for method, coef in (("mean", 1.0), ("worst_case", 1.0), ("mean_minus_std", 2.0)):
        sampler = _sampler(policy, [length_reward, scaled_vowels], ensemble=method, ensemble_coef=coef)
        outputs = sampler.select(PROMPTS, *candidates)
        for output in outputs:
            members = np.array([output.rewards["length_reward"], output.rewards["vowel_reward"]])
            if method == "mean":
                expected = members.mean(axis=0)
            elif method == "worst_case":
                expected = members.min(axis=0)
            else:
                expected = members.mean(axis=0) - coef * members.std(axis=0)
            np.testing.assert_allclose(output.scores, expected)
            assert output.index == int(np.argmax(expected))
        results[method] = outputs
    for plain, worst, cautious in zip(results["mean"], results["worst_case"], results["mean_minus_std"], strict=True):
        members = np.array([plain.rewards["length_reward"], plain.rewards["vowel_reward"]])
        # Worst case selects at least as good a worst member; mean - k std selects at least as much agreement.
        assert members.min(axis=0)[worst.index] >= members.min(axis=0)[plain.index]
        assert disagreement(cautious) <= disagreement(plain)
    assert [o.index for o in results["mean"]] != [o.index for o in results["worst_case"]]
    assert [o.index for o in results["mean"]] != [o.index for o in results["mean_minus_std"]]


def test_missing_rewards_are_skipped_never_selected(policy, candidates, caplog):
    def sometimes_none(prompts, completions, **kwargs):
        return [None if len(_text(c)) % 2 else float(len(_text(c))) for c in completions]

    def nan_everywhere(prompts, completions, **kwargs):
        return [float("nan")] * len(completions)

    outputs = _sampler(policy, sometimes_none).select(PROMPTS, *candidates)
    assert any(np.isnan(o.rewards["sometimes_none"]).any() for o in outputs)
    for output in outputs:
        rewards = np.array(output.rewards["sometimes_none"])
        if not np.isnan(rewards).all():
            assert not np.isnan(rewards[output.index]) and rewards[output.index] == np.nanmax(rewards)
    # In an ensemble, a member's None is left out: the other member alone decides those candidates.
    for output in _sampler(policy, [nan_everywhere, length_reward]).select(PROMPTS, *candidates):
        assert output.scores == output.rewards["length_reward"]
    with caplog.at_level("WARNING"):
        outputs = _sampler(policy, nan_everywhere).select(PROMPTS, *candidates)
    assert [o.index for o in outputs] == [0, 0, 0] and "No reward function scored" in caplog.text
    assert "non-finite value(s)" in caplog.text  # a NaN from a model is said, unlike TRL's None


def test_infinite_or_nan_scores_are_said_and_never_selected(policy, candidates, caplog):
    def infinite_first(prompts, completions, **kwargs):
        return [float("inf") if i % 4 == 0 else float(len(_text(c))) for i, c in enumerate(completions)]

    with caplog.at_level("WARNING"):
        outputs = _sampler(policy, infinite_first).select(PROMPTS, *candidates)
    assert "infinite_first" in caplog.text and "non-finite value(s)" in caplog.text
    for output in outputs:
        rewards = np.array(output.rewards["infinite_first"])
        assert np.isnan(rewards[0]) and output.index != 0  # +inf would have won every prompt
        assert rewards[output.index] == np.nanmax(rewards)


def test_sampler_bad_input(policy, candidates):
    with pytest.raises(ValueError, match="n must be >= 1"):
        _sampler(policy, length_reward, n=0)
    with pytest.raises(ValueError, match="empty"):
        _sampler(policy, length_reward).sample([])
    with pytest.raises(ValueError, match="list of prompts"):
        _sampler(policy, length_reward).sample("What is 2 + 3?")
    with pytest.raises(ValueError, match="one value per prompt"):
        _sampler(policy, length_reward).sample(PROMPTS, solution=["1"])
    with pytest.raises(ValueError, match="score_with_uncertainty"):
        _sampler(policy, length_reward, penalty="lcb")
    with pytest.raises(ValueError, match="Unknown penalty"):
        _sampler(policy, FakeUncertainReward(), penalty="std")
    with pytest.raises(ValueError, match="Unknown ensemble"):
        _sampler(policy, length_reward, ensemble="median")
    with pytest.raises(ValueError, match="at least one reward function"):
        _sampler(policy, [])
    with pytest.raises(ValueError, match="returned 1 values, but 24"):
        _sampler(policy, lambda prompts, completions, **kw: [1.0]).select(PROMPTS, *candidates)
    with pytest.raises(ValueError, match="non-numeric value 'good'"):
        _sampler(policy, lambda prompts, completions, **kw: ["good"] * len(completions)).select(PROMPTS, *candidates)
    with pytest.raises(ValueError, match="mix"):
        _sampler(policy, length_reward).sample(["a", [{"role": "user", "content": "b"}]])


def test_score_completions_accepts_async_and_tensor_outputs():
    async def async_reward(prompts, completions, **kwargs):
        return torch.tensor([1.0, 2.0])

    np.testing.assert_array_equal(score_completions(async_reward, ["p", "p"], ["a", "b"]), [1.0, 2.0])


def test_sampler_loads_a_model_from_a_path(tiny_causal_lm):
    sampler = BestOfNSampler(tiny_causal_lm, length_reward, n=2, max_new_tokens=4)
    assert sampler.model.dtype == torch.float32 and sampler.kl_bon == kl_bon(2)
    [output] = sampler.sample(["Hi"])
    assert len(output.completions) == 2


# ---------------------------------------------------------------------------------------------------------------------
# Curves of the experiment: rules, files, end to end
# ---------------------------------------------------------------------------------------------------------------------


def test_curves_from_scores_builds_one_curve_per_selection_rule():
    rng = np.random.default_rng(0)
    proxy = rng.normal(size=(12, 6))
    variances = rng.uniform(0.0, 1.0, size=(12, 6))
    gold = (proxy - variances > 0).astype(float)
    [plain] = curves_from_scores({"rm": proxy}, gold)
    assert plain.name == "rm"
    np.testing.assert_allclose(plain.metrics["gold"]["mean"], expected_best_of_n(proxy, gold).mean(axis=1))
    curves = curves_from_scores({"rm": proxy}, gold, {"rm": variances}, penalties=[("lcb", 2.0), ("var_penalty", 1)])
    assert [c.name for c in curves] == ["rm", "rm lcb k=2", "rm var_penalty k=1"]
    np.testing.assert_allclose(
        curves[1].metrics["gold"]["mean"], expected_best_of_n(proxy - 2 * np.sqrt(variances), gold).mean(axis=1)
    )
    # Every curve reports the same proxy quantity (the unpenalized score) for the candidate it selects.
    np.testing.assert_allclose(
        curves[2].metrics["proxy"]["mean"], expected_best_of_n(proxy - variances, proxy).mean(axis=1)
    )
    other = rng.normal(size=(12, 6))
    ensemble = curves_from_scores(
        {"a": proxy, "b": other}, gold, ensembles=[("mean", 1.0), ("worst_case", 1.0), ("mean_minus_std", 0.5)]
    )
    names = ["a", "b", "ensemble mean", "ensemble worst_case", "ensemble mean_minus_std k=0.5"]
    assert [c.name for c in ensemble] == names
    np.testing.assert_allclose(
        ensemble[3].metrics["gold"]["mean"], expected_best_of_n(np.minimum(proxy, other), gold).mean(axis=1)
    )
    np.testing.assert_allclose(
        ensemble[0].metrics["proxy"]["mean"], expected_best_of_n(proxy, (proxy + other) / 2).mean(axis=1)
    )
    with pytest.raises(ValueError, match="Unknown penalty"):
        curves_from_scores({"rm": proxy}, gold, {"rm": variances}, penalties=[("std", 1.0)])
    with pytest.raises(ValueError, match="shape"):
        curves_from_scores({"rm": proxy}, gold[:, :3])


def test_save_and_load_curves(tmp_path):
    rng = np.random.default_rng(0)
    proxy = rng.normal(size=(10, 8))
    curves = curves_from_scores({"rm": proxy}, proxy - proxy**2, {"rm": np.ones_like(proxy)}, num_bootstrap=200)
    files = save_curves(curves, tmp_path / "out", config={"note": "toy", "missing": float("nan")}, title="Toy")
    assert set(files) == {"json", "csv", "png"}
    with open(files["png"], "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    text = open(files["json"]).read()
    assert "NaN" not in text  # strict JSON
    loaded, config = load_curves(files["json"])
    assert loaded == curves and config == {"note": "toy", "missing": None}
    with open(files["csv"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 * 8
    assert list(rows[0])[:6] == ["curve", "n", "kl_bon", "proxy_mean", "proxy_ci_low", "proxy_ci_high"]
    assert rows[9]["curve"] == "rm lcb k=1" and int(rows[9]["n"]) == 2
    assert float(rows[9]["gold_mean"]) == pytest.approx(curves[1].metrics["gold"]["mean"][1], rel=1e-15)
    with pytest.raises(ValueError, match="at least one curve"):
        save_curves([], tmp_path)


def test_experiment_end_to_end_on_a_tiny_policy(tiny_causal_lm, tmp_path):
    from trl_icrm.data.math_problems import make_arithmetic_problems
    from trl_icrm.rewards.math_verify import MathVerifyReward

    dataset = make_arithmetic_problems(num_train=0, num_test=3, seed=0, split="test")
    gold_calls = []

    def gold(prompts, completions, solution, **kwargs):  # math-verify, recording the solutions it is given
        gold_calls.append(solution)
        return MathVerifyReward()(prompts, completions, solution=solution)

    result = run_best_of_n_experiment(
        FakeUncertainReward(),
        tmp_path,
        gold=gold,
        model=tiny_causal_lm,
        dataset=dataset,
        num_prompts=3,
        num_samples=4,
        max_new_tokens=6,
        num_bootstrap=100,
        progress_bar=False,
    )
    names = ["fake_uncertain", "fake_uncertain lcb k=1", "fake_uncertain var_penalty k=1"]
    assert [c.name for c in result["curves"]] == names
    assert all(c.ns == [1, 2, 3, 4] and c.num_prompts == 3 for c in result["curves"])
    assert gold_calls[0][:4] == [dataset[0]["solution"]] * 4
    records = [json.loads(line) for line in open(result["files"]["samples"])]
    assert len(records) == 3 and len(records[0]["completions"]) == 4
    assert records[0]["solution"] == dataset[0]["solution"] and records[0]["prompt"] == dataset[0]["prompt"]
    # The curves recomputed from the saved samples are the saved curves.
    proxy = {"fake_uncertain": np.array([r["proxy"]["fake_uncertain"] for r in records])}
    variances = {"fake_uncertain": np.array([r["proxy_variance"]["fake_uncertain"] for r in records])}
    gold_scores = np.array([r["gold"] for r in records])
    again = curves_from_scores(proxy, gold_scores, variances, num_bootstrap=100)
    assert again == load_curves(result["files"]["json"])[0] == result["curves"]
    assert set(result["timings"]) >= {"generation_seconds", "proxy_scoring_seconds", "gold_scoring_seconds"}
    with pytest.raises(ValueError, match="num_samples"):
        run_best_of_n_experiment(FakeUncertainReward(), tmp_path, model=tiny_causal_lm, num_samples=0)
    with pytest.raises(ValueError, match="N >= 8"):  # before any sampling
        run_best_of_n_experiment(FakeUncertainReward(), tmp_path, model=tiny_causal_lm, num_samples=4, ns=[1, 8])
    with pytest.raises(ValueError, match="empty"):
        run_best_of_n_experiment(FakeUncertainReward(), tmp_path, model=tiny_causal_lm, dataset=dataset.select([]))


def test_bon_subcommand_runs_the_same_code(tiny_causal_lm, tmp_path, capsys, monkeypatch):
    from trl_icrm.cli import main, make_command_parser

    argv = ["bon", "--reward_model_name_or_path", "fake-path", "--model_name_or_path", tiny_causal_lm]
    argv += ["--output_dir", str(tmp_path), "--num_prompts", "2", "--num_samples", "3", "--max_new_tokens", "4"]
    argv += ["--num_bootstrap", "50", "--no_progress_bar", "--penalties", "lcb:0.5"]
    module, parser = make_command_parser("bon")
    script_args, settings = parser.parse_args_and_config(argv[1:])
    assert module.__name__ == "trl_icrm.scripts.bon" and parser.prog == "trl-icrm bon"
    assert script_args.reward_model_name_or_path == ["fake-path"] and script_args.reward == "auto"
    assert settings.num_samples == 3 and settings.progress_bar is False and settings.penalties == ["lcb:0.5"]
    kinds, loaded = [], []

    def reward_model_kind(path, **kwargs):
        kinds.append(path)
        return "icrm"

    def load_reward(path, kind="auto", **kwargs):
        loaded.append((path, kind, kwargs))
        return FakeUncertainReward()

    monkeypatch.setattr("trl_icrm.rewards.reward_model_kind", reward_model_kind)
    monkeypatch.setattr("trl_icrm.rewards.load_reward", load_reward)
    assert main(argv) == 0
    assert kinds == ["fake-path"]
    assert loaded == [
        ("fake-path", "icrm", {"fixed_demonstrations": None, "allow_zero_shot": True, "name": "fake-path"})
    ]
    curves, config = load_curves(tmp_path / "best_of_n_curves.json")
    assert [c.name for c in curves] == ["fake_uncertain", "fake_uncertain lcb k=0.5"]
    assert config["num_samples"] == 3 and config["gold"] == "math_verify"
    out = capsys.readouterr().out
    assert "best_of_n_curves.png" in out and "zero-shot" in out  # an ICRM proxy without demonstrations says so
    assert "n   KL_bon    proxy     gold" in out
    first = curves[0]
    assert f"{first.ns[0]:5d} {first.kl_bon[0]:8.3f} {first.metrics['proxy']['mean'][0]:8.3f}" in out
    # Demonstrations steer ICRM proxies only: a BT proxy given some stops the command before any sampling.
    demonstrations = tmp_path / "demonstrations.json"
    demonstrations.write_text(json.dumps([{"prompt": "1 + 1?", "chosen": "2", "rejected": "3"}]))
    with pytest.raises(SystemExit, match="ICRM reward models only"):
        main([*argv, "--reward", "bt", "--demonstrations", str(demonstrations)])
    with pytest.raises(SystemExit, match="needs --reward_model_name_or_path"):
        main(["bon", "--output_dir", str(tmp_path)])
    assert len(loaded) == 1


def test_proxies_load_from_reward_model_folders(tiny_sequence_classifier, tiny_causal_lm, default_model_dir, tmp_path):
    from trl_icrm.rewards import reward_model_kind
    from trl_icrm.scripts.bon import load_proxies
    from trl_icrm.utils.testing import save_random_models

    # A 2-output classifier without ICRM settings is ambiguous, and no trained ICRM model.
    with pytest.raises(ValueError, match="none of the known kinds of reward model"):
        reward_model_kind(tiny_sequence_classifier)
    with pytest.raises(ValueError, match="not a trained ICRM model"):
        load_proxies([tiny_sequence_classifier], "icrm")
    from trl_icrm.icrm.modeling import load_icrm_model

    icrm_model, icrm_tokenizer = load_icrm_model(tiny_causal_lm)
    icrm_model.save_pretrained(tmp_path / "icrm_rm")
    icrm_tokenizer.save_pretrained(tmp_path / "icrm_rm")
    assert reward_model_kind(tmp_path / "icrm_rm") == "icrm"
    (icrm,) = load_proxies([tmp_path / "icrm_rm"])
    assert supports_uncertainty(icrm) and icrm.__name__ == "icrm_rm"
    bt_folder = save_random_models(tmp_path, default_model_dir, num_labels=1)["sequence_classifier"]
    assert reward_model_kind(bt_folder) == "bt"
    (bt,) = load_proxies([bt_folder])
    assert not supports_uncertainty(bt)
    pair = {"prompt": "1 + 1?", "chosen": "2", "rejected": "3"}
    (steered,) = load_proxies([tmp_path / "icrm_rm"], "auto", demonstrations=[pair])
    assert steered.fixed is not None and len(steered.fixed) == 1
    with pytest.raises(ValueError, match="ICRM reward models only"):
        load_proxies([bt_folder], "auto", demonstrations=[pair])
    result = run_best_of_n_experiment(
        [icrm, bt],
        tmp_path / "out",
        model=tiny_causal_lm,
        num_prompts=2,
        num_samples=3,
        max_new_tokens=4,
        num_bootstrap=50,
        progress_bar=False,
        allow_mixed_scales=True,  # an ICRM reward and a BT score: combined only when asked
    )
    names = ["icrm_rm", "sequence_classifier"]
    names += ["ensemble mean", "ensemble worst_case", "ensemble mean_minus_std k=1"]  # no penalties: BT has no var
    assert [c.name for c in result["curves"]] == names
    # Without penalties each member scores through its TRL call (the ICRM logit r here).
    record = json.loads(open(result["files"]["samples"]).readline())
    expected = icrm([record["prompt"]] * 3, record["completions"])
    np.testing.assert_allclose(record["proxy"]["icrm_rm"], expected, rtol=1e-5)


def test_cached_proxy_scores_and_method_curves(tmp_path):
    """A proxy is scored once (then read from its .npz), candidates round-trip, and each selection method's curve
    selects by its own penalized score while reporting its members' mean reward."""
    import numpy as np

    from trl_icrm.best_of_n import best_of_n_curve, combine_rewards
    from trl_icrm.experiments.best_of_n import (
        CandidateSet,
        SelectionMethod,
        cached_proxy_scores,
        load_candidates,
        method_curves,
        save_candidates,
    )
    from trl_icrm.rewards import RewardModel, RewardPosterior

    class Length(RewardModel):
        has_uncertainty = True
        calls = 0

        def score(self, prompts, completions, **columns):
            Length.calls += 1
            values = np.array([float(len(c)) for c in completions])
            return RewardPosterior(values, values, values / 10, "score")

    candidates = CandidateSet(["p", "q"], {"solution": ["1", "2"]}, [["a", "bbb", "cc"], ["dd", "e", "fff"]], [])
    candidates.completion_ids = [[[1], [2, 3, 4], [5, 6]], [[7, 8], [9], [1, 2, 3]]]
    path = save_candidates(candidates, tmp_path / "candidates.json")
    assert load_candidates(path) == candidates
    mean, variance = cached_proxy_scores(
        candidates, "len", Length(name="len"), tmp_path / "scores", progress_bar=False
    )
    again = cached_proxy_scores(candidates, "len", None, tmp_path / "scores")
    assert Length.calls == 1 and (again[0] == mean).all() and (again[1] == variance).all()
    np.testing.assert_array_equal(mean, [[1, 3, 2], [2, 1, 3]])
    gold = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    methods = [SelectionMethod("MAP", ["len"]), SelectionMethod("std k=5", ["len"], "lcb", 5.0)]
    curves = method_curves({"len": mean}, {"len": variance}, gold, methods, num_bootstrap=10)
    penalized = combine_rewards(mean[None], variance[None], "lcb", 5.0)
    expected = best_of_n_curve(penalized, {"proxy": mean, "gold": gold}, num_bootstrap=10)
    assert curves[1].metrics["gold"]["mean"] == expected.metrics["gold"]["mean"]
    assert curves[0].metrics["gold"]["mean"][-1] == 0.0  # best-of-3 by length: "bbb" and "fff", both gold 0


def test_ensemble_curves_refuse_proxies_on_different_scales():
    from trl_icrm.experiments.best_of_n.run import check_proxies

    class Score:
        __name__, scale = "bt", "score"

    class Probability:
        __name__, scale = "icrm", "probability"

    with pytest.raises(ValueError, match="different scales"):
        check_proxies([Score(), Probability()], ensembles=[("mean", 1.0)])
    check_proxies([Score(), Probability()], ensembles=[("mean", 1.0)], allow_mixed_scales=True)
    check_proxies([Score(), Probability()], ensembles=[])  # no ensemble curve: nothing is combined
    check_proxies([Score(), Score()], ensembles=[("mean", 1.0)])

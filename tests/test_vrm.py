# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""VRM: the objective against independent Monte Carlo estimates (values and gradients), its KL terms and symmetry,
the exact reward moments, training on a prompt-family toy task, saving and loading (full and LoRA), the reward
interface (penalties, ensembles, best-of-N selection) and the errors of bad settings and mixed-up model kinds."""

import time

import numpy as np
import pytest
import torch
from datasets import Dataset
from peft import LoraConfig
from scipy import stats
from transformers import AutoModelForCausalLM

from trl_icrm import (
    BestOfNSampler,
    ICRMReward,
    VRMConfig,
    VRMReward,
    VRMRewardTrainer,
    load_icrm_model,
    load_reward,
    reward_model_kind,
)
from trl_icrm.rewards import EnsembleReward, SequenceClassifierReward
from trl_icrm.vrm.modeling import load_vrm_model
from trl_icrm.vrm.objective import kl_terms, mean_reward, reward_moments, supervision_loss, vrm_loss

from conftest import training_args as _args


D, d = 3, 2


def _posterior(seed: int = 0, batch: int = 2, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return {
        "concentration": (torch.rand(batch, D, generator=g, dtype=dtype) * 2 + 0.5),
        "mean_a": torch.randn(batch, d, generator=g, dtype=dtype),
        "std_a": torch.rand(batch, d, generator=g, dtype=dtype) + 0.3,
        "mean_b": torch.randn(batch, d, generator=g, dtype=dtype),
        "std_b": torch.rand(batch, d, generator=g, dtype=dtype) + 0.3,
        "G": torch.randn(D, d, generator=g, dtype=dtype),
        "b": torch.randn(D, generator=g, dtype=dtype),
    }


def _loss(p, **kwargs):
    return vrm_loss(p["concentration"], p["mean_a"], p["std_a"], p["mean_b"], p["std_b"], p["G"], p["b"], **kwargs)


def _numpy_nll_samples(p, i: int, u: np.ndarray, eps: np.ndarray, alpha=None, mean_a=None) -> np.ndarray:
    """Per-sample -log sigmoid(r_a - r_b) of pair i, drawn independently of torch: w by the inverse gamma CDF of
    uniforms `u` (one w per sample, shared by both sides), z = mu + sigma * eps."""
    alpha = p["concentration"][i].numpy() if alpha is None else alpha
    mean_a = p["mean_a"][i].numpy() if mean_a is None else mean_a
    gammas = stats.gamma.ppf(u, alpha)
    w = gammas / gammas.sum(1, keepdims=True)
    G, b = p["G"].numpy(), p["b"].numpy()
    z_a = mean_a + p["std_a"][i].numpy() * eps[:, 0]
    z_b = p["mean_b"][i].numpy() + p["std_b"][i].numpy() * eps[:, 1]
    margin = (w * (z_a @ G.T + b)).sum(1) - (w * (z_b @ G.T + b)).sum(1)
    return np.logaddexp(0.0, -margin)


def _draws(n: int, seed: int):
    rng = np.random.default_rng(seed)
    return rng.uniform(1e-12, 1.0, size=(n, D)), rng.standard_normal((n, 2, d))


def test_objective_matches_an_independent_monte_carlo_estimate():
    p = _posterior()
    torch.manual_seed(0)
    out = _loss(p, beta_w=0.3, beta_z=0.7, supervision_weight=0.5, num_samples=100_000)
    u, eps = _draws(100_000, 1)
    rng = np.random.default_rng(2)
    for i in range(2):
        nll = _numpy_nll_samples(p, i, u, eps)
        assert abs(out.nll[i].item() - nll.mean()) < 5 * nll.std() / np.sqrt(len(nll)) * np.sqrt(2)
        # KL(q(w) || Dir(1)) and KL(q(z) || N(0, I)) as Monte Carlo means of log q - log p (scipy densities)
        alpha = p["concentration"][i].numpy()
        w = rng.dirichlet(alpha, size=50_000)
        log_ratio = stats.dirichlet.logpdf(w.T, alpha) - stats.dirichlet.logpdf(w.T, np.ones(D))
        assert abs(out.kl_w[i].item() - log_ratio.mean()) < 5 * log_ratio.std() / np.sqrt(len(log_ratio))
        kl_z_samples = 0.0
        for side in ("a", "b"):
            mean, std = p[f"mean_{side}"][i].numpy(), p[f"std_{side}"][i].numpy()
            z = mean + std * rng.standard_normal((50_000, d))
            kl_z_samples = kl_z_samples + (stats.norm.logpdf(z, mean, std) - stats.norm.logpdf(z)).sum(1)
        assert abs(out.kl_z[i].item() - kl_z_samples.mean()) < 5 * kl_z_samples.std() / np.sqrt(50_000)
        # the mean-path reward r_bar = E[w]^T (G mu + b) and its BT supervision, by hand
        m_w = alpha / alpha.sum()
        r_a = m_w @ (p["G"].numpy() @ p["mean_a"][i].numpy() + p["b"].numpy())
        r_b = m_w @ (p["G"].numpy() @ p["mean_b"][i].numpy() + p["b"].numpy())
        assert out.margin[i].item() == pytest.approx(r_a - r_b, rel=1e-9)
        assert out.supervision[i].item() == pytest.approx(np.logaddexp(0.0, -(r_a - r_b)), rel=1e-9)
    per_pair = out.nll + 0.3 * out.kl_w + 0.7 * out.kl_z + 0.5 * out.supervision
    assert out.loss.item() == pytest.approx(per_pair.mean().item(), rel=1e-12)


def test_objective_gradients_match_finite_differences_of_the_independent_estimate():
    """Reparameterized gradients of E[nll] (torch: Dirichlet and Normal rsample) against central differences of the
    numpy estimator with common random numbers, for the concentration and a feature mean."""
    p = _posterior(seed=3, batch=1)
    n, h = 100_000, 1e-4
    u, eps = _draws(n, 4)
    alpha, mean_a = p["concentration"][0].numpy(), p["mean_a"][0].numpy()
    numeric = []
    for vector, name in ((alpha, "alpha"), (mean_a, "mean_a")):
        for j in range(len(vector)):
            up, down = vector.copy(), vector.copy()
            up[j] += h
            down[j] -= h
            per_sample = (
                _numpy_nll_samples(p, 0, u, eps, **{name: up}) - _numpy_nll_samples(p, 0, u, eps, **{name: down})
            ) / (2 * h)
            numeric.append((per_sample.mean(), per_sample.std() / np.sqrt(n)))
    concentration = p["concentration"].clone().requires_grad_(True)
    mean = p["mean_a"].clone().requires_grad_(True)
    batches = []
    torch.manual_seed(5)
    for _ in range(10):
        out = vrm_loss(concentration, mean, p["std_a"], p["mean_b"], p["std_b"], p["G"], p["b"], num_samples=10_000)
        grads = torch.autograd.grad(out.nll.sum(), [concentration, mean])
        batches.append(torch.cat([g.reshape(-1) for g in grads]).numpy())
    batches = np.stack(batches)
    analytic, analytic_se = batches.mean(0), batches.std(0, ddof=1) / np.sqrt(len(batches))
    for k, (value, se) in enumerate(numeric):
        assert abs(analytic[k] - value) < 5 * np.sqrt(se**2 + analytic_se[k] ** 2) + 1e-4, (k, analytic[k], value)


def test_deterministic_terms_pass_gradcheck():
    p = _posterior(seed=6)
    inputs = [p[k].clone().requires_grad_(True) for k in ("concentration", "mean_a", "std_a", "mean_b", "std_b")]

    def terms(concentration, mean_a, std_a, mean_b, std_b):
        kl_w, kl_z = kl_terms(concentration, (mean_a, mean_b), (std_a, std_b), 0.7, 1.3)
        margin = mean_reward(concentration, mean_a, p["G"], p["b"]) - mean_reward(
            concentration, mean_b, p["G"], p["b"]
        )
        return kl_w, kl_z, supervision_loss(margin, "bt"), supervision_loss(margin, "hinge", 5.0)

    assert torch.autograd.gradcheck(terms, inputs)


def test_kl_terms_are_zero_at_the_prior_and_positive_elsewhere():
    concentration = torch.full((2, 5), 0.7)
    zeros, stds = torch.zeros(2, 3), torch.full((2, 3), 1.5)
    kl_w, kl_z = kl_terms(concentration, (zeros, zeros), (stds, stds), prior_concentration=0.7, prior_std=1.5)
    assert torch.equal(kl_w, torch.zeros(2)) and torch.allclose(kl_z, torch.zeros(2))
    kl_w, kl_z = kl_terms(concentration + 1, (zeros + 1, zeros), (stds, stds), prior_concentration=0.7, prior_std=1.5)
    assert (kl_w > 0).all() and (kl_z > 0).all()


def test_swapping_the_pair_flips_the_margin_and_keeps_the_kl():
    p = _posterior(seed=7)
    out = _loss(p)
    swapped = vrm_loss(p["concentration"], p["mean_b"], p["std_b"], p["mean_a"], p["std_a"], p["G"], p["b"])
    assert torch.allclose(swapped.margin, -out.margin)
    assert torch.equal(swapped.reward_a, out.reward_b) and torch.equal(swapped.reward_b, out.reward_a)
    assert torch.allclose(swapped.kl_w, out.kl_w) and torch.allclose(swapped.kl_z, out.kl_z)
    # BT supervision of the two orders: P(a > b) + P(b > a) = 1
    assert torch.allclose(
        torch.exp(-out.supervision) + torch.exp(-swapped.supervision), torch.ones(2, dtype=torch.float64)
    )


def test_supervision_choices_and_the_exact_reward_moments():
    margin = torch.tensor([-1.0, 0.5, 3.0])
    assert torch.equal(supervision_loss(margin, "none"), torch.zeros(3))
    assert torch.allclose(supervision_loss(margin, "hinge", 1.0), torch.tensor([2.0, 0.5, 0.0]))
    with pytest.raises(ValueError, match="Unknown supervision loss 'mse'"):
        supervision_loss(margin, "mse")
    p = _posterior(seed=8)
    mean, variance = reward_moments(p["concentration"], p["mean_a"], p["std_a"], p["G"], p["b"])
    w = torch.distributions.Dirichlet(p["concentration"]).sample((400_000,))
    z = torch.distributions.Normal(p["mean_a"], p["std_a"]).sample((400_000,))
    r = (w * (z @ p["G"].T + p["b"])).sum(-1)
    assert torch.allclose(mean, r.mean(0), atol=5 * (r.std(0) / 400_000**0.5).max().item())
    assert torch.allclose(variance, r.var(0), rtol=0.02)
    assert torch.allclose(mean, mean_reward(p["concentration"], p["mean_a"], p["G"], p["b"]))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("num_objectives", 1, "num_objectives \\(D\\) must be >= 2"),
        ("num_features", 0, "num_features \\(d\\) must be >= 1"),
        ("beta_w", -0.1, "beta_w must be >= 0"),
        ("beta_z", -1.0, "beta_z must be >= 0"),
        ("supervision_weight", -0.5, "supervision_weight \\(lambda\\) must be >= 0"),
        ("supervision_loss", "mse", "supervision_loss must be one of"),
        ("prior_concentration", 0.0, "prior_concentration must be > 0"),
        ("train_samples", 0, "train_samples must be >= 1"),
    ],
)
def test_bad_settings_fail_at_config_time(tmp_path, field, value, message):
    with pytest.raises(ValueError, match=message):
        VRMConfig(output_dir=str(tmp_path), **{field: value})


# Training, saving, scoring
WORDS = ["apple", "river", "stone", "cloud", "green", "quick", "seven", "table", "music", "paper", "light", "ocean"]


def _family_prompt(rng: np.random.Generator, family: str) -> str:
    return " ".join(rng.choice(WORDS, 3, replace=False)) + f"? {family}"


def family_pairs(n_a: int, n_b: int, seed: int = 0) -> Dataset:
    """Family A prefers " yes", family B " no", to random prompts ending with the family's letter. A is the larger
    family: features first learn to tell the two responses apart, then the weights learn to flip them for B (with
    exactly balanced opposite families the mean gradient on the features cancels; see docs/method.md)."""
    rng = np.random.default_rng(seed)
    rows = [
        {"prompt": _family_prompt(rng, family), "chosen": " " + good, "rejected": " " + bad, "group": family}
        for family, (good, bad), n in (("A", ("yes", "no"), n_a), ("B", ("no", "yes"), n_b))
        for _ in range(n)
    ]
    return Dataset.from_list(rows).shuffle(seed=seed)


def _vrm_args(output_dir, **overrides) -> VRMConfig:
    values = _args(output_dir)
    values.update(
        per_device_train_batch_size=8, learning_rate=1e-2, max_steps=40, num_objectives=4, num_features=1, beta_w=0.01
    )
    values.update(overrides)
    return VRMConfig(**values)


@pytest.fixture(scope="module")
def toy_trainer(tiny_causal_lm, tmp_path_factory):
    """A tiny VRM model trained on the prompt-family task (one semantic feature: the family must set w)."""
    start = time.perf_counter()
    trainer = VRMRewardTrainer(
        tiny_causal_lm, args=_vrm_args(tmp_path_factory.mktemp("vrm-toy")), train_dataset=family_pairs(48, 16)
    )
    trainer.train()
    trainer.training_seconds = time.perf_counter() - start
    return trainer


def test_toy_task_is_learned_with_weights_that_differ_by_family(toy_trainer):
    reward = VRMReward(toy_trainer.model, toy_trainer.processing_class)
    rng = np.random.default_rng(123)  # prompts never trained on
    prompts = {family: [_family_prompt(rng, family) for _ in range(16)] for family in "AB"}
    correct = []
    for family, preferred in (("A", " yes"), ("B", " no")):
        other = " no" if preferred == " yes" else " yes"
        good = reward.score(prompts[family], [preferred] * 16).reward
        bad = reward.score(prompts[family], [other] * 16).reward
        correct += list(good > bad)
    assert np.mean(correct) >= 0.9
    weights = {family: reward.objective_weights(prompts[family], [" yes"] * 16) for family in "AB"}
    total_variation = 0.5 * np.abs(weights["A"].mean(0) - weights["B"].mean(0)).sum()
    spread = max(weights["A"].std(0).max(), weights["B"].std(0).max())
    assert total_variation > 0.3 and total_variation > 10 * spread, (total_variation, spread)
    logged = [entry for entry in toy_trainer.state.log_history if "kl_w" in entry]
    assert logged and all(np.isfinite(entry[key]) for entry in logged for key in ("nll", "kl_w", "kl_z"))
    assert toy_trainer.training_seconds < 120  # well under a minute on an idle 2-core CPU


def test_save_and_load_round_trip_gives_identical_scores(toy_trainer, tmp_path):
    toy_trainer.save_model(str(tmp_path / "vrm"))
    assert reward_model_kind(tmp_path / "vrm") == "vrm"
    assert (tmp_path / "vrm" / "model.safetensors").is_file()
    loaded = load_reward(tmp_path / "vrm")
    assert isinstance(loaded, VRMReward) and "VRMReward" in (tmp_path / "vrm" / "README.md").read_text()
    in_memory = VRMReward(toy_trainer.model, toy_trainer.processing_class)
    prompts, completions = ["apple river stone? A", "music paper light? B"], [" yes", " no"]
    a, b = in_memory.score(prompts, completions), loaded.score(prompts, completions)
    assert np.array_equal(a.reward, b.reward) and np.array_equal(a.variance, b.variance)
    assert (a.variance > 0).all()
    from trl_icrm.serving.loading import load_serving_reward

    served = load_serving_reward([str(tmp_path / "vrm")], penalty="lcb", batch_size=3)
    assert isinstance(served, VRMReward) and served.batch_size == 3 and served.__name__ == "vrm"
    assert np.allclose(served(prompts=prompts, completions=completions), a.mean - np.sqrt(a.variance))


def test_lora_adapter_round_trip_and_merged_save(tiny_causal_lm, tmp_path):
    peft_config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer = VRMRewardTrainer(
        tiny_causal_lm,
        args=_vrm_args(tmp_path / "lora", max_steps=3),
        train_dataset=family_pairs(8, 8),
        peft_config=peft_config,
    )
    assert peft_config.task_type == "SEQ_CLS"
    trainer.train()
    trainer.save_model(str(tmp_path / "lora"))
    assert (tmp_path / "lora" / "adapter_config.json").is_file() and reward_model_kind(tmp_path / "lora") == "vrm"
    prompts, completions = ["apple river stone? A", "music paper light? B"], [" yes", " no"]
    expected = VRMReward(trainer.model, trainer.processing_class).score(prompts, completions)
    from_adapter = load_reward(tmp_path / "lora").score(prompts, completions)
    assert np.allclose(expected.reward, from_adapter.reward, atol=1e-6)
    trainer.model.merge_and_unload().save_pretrained(tmp_path / "merged")
    trainer.processing_class.save_pretrained(tmp_path / "merged")
    merged = load_reward(tmp_path / "merged").score(prompts, completions)
    assert np.allclose(expected.reward, merged.reward, atol=1e-5)


def test_reward_interface_penalties_ensembles_best_of_n_and_monte_carlo(toy_trainer, tiny_causal_lm):
    model, tokenizer = toy_trainer.model, toy_trainer.processing_class
    prompts, completions = ["apple river stone? A"] * 2 + ["music paper light? B"] * 2, [" yes", " no"] * 2
    exact = VRMReward(model, tokenizer).score(prompts, completions)
    lcb = VRMReward(model, tokenizer, penalty="lcb", penalty_coef=2.0)(prompts=prompts, completions=completions)
    assert np.allclose(lcb, exact.mean - 2.0 * np.sqrt(exact.variance))
    sampled = VRMReward(model, tokenizer, scoring_samples=50_000).score(prompts, completions)
    assert np.allclose(sampled.mean, exact.mean, atol=0.05) and np.allclose(
        sampled.variance, exact.variance, rtol=0.05
    )
    ensemble = EnsembleReward([VRMReward(model, tokenizer), VRMReward(model, tokenizer)], penalty="var_penalty")
    assert np.allclose(ensemble(prompts=prompts, completions=completions), exact.mean - exact.variance)
    sampler = BestOfNSampler(
        AutoModelForCausalLM.from_pretrained(tiny_causal_lm),
        VRMReward(model, tokenizer),
        tokenizer,
        n=2,
        penalty="lcb",
        penalty_coef=1.0,
        max_new_tokens=2,
    )
    selected = sampler.select(prompts[::2], [[" yes", " no"], [" yes", " no"]])
    expected = (exact.mean - np.sqrt(exact.variance)).reshape(2, 2)
    assert [out.index for out in selected] == expected.argmax(1).tolist()
    assert np.allclose([out.scores for out in selected], expected)


def test_models_of_another_kind_are_refused_by_name(toy_trainer, tiny_causal_lm, tmp_path):
    toy_trainer.save_model(str(tmp_path / "vrm"))
    icrm, tokenizer = load_icrm_model(tiny_causal_lm)
    icrm.save_pretrained(tmp_path / "icrm")
    tokenizer.save_pretrained(tmp_path / "icrm")
    with pytest.raises(ValueError, match="is a VRM reward model"):
        ICRMReward(tmp_path / "vrm", allow_zero_shot=True)
    with pytest.raises(ValueError, match="is an ICRM reward model"):
        VRMReward(tmp_path / "icrm")
    with pytest.raises(ValueError, match="is an ICRM reward model"):
        VRMReward(icrm, tokenizer)
    with pytest.raises(ValueError, match="is a VRM reward model"):
        ICRMReward(toy_trainer.model, toy_trainer.processing_class, allow_zero_shot=True)
    with pytest.raises(ValueError, match="is a VRM reward model"):
        SequenceClassifierReward(tmp_path / "vrm")
    with pytest.raises(ValueError, match="no trained reward model"):
        load_vrm_model(tiny_causal_lm, allow_new_head=False)

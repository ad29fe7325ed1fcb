# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Laplace-LoRA reward models on tiny models: the predictive variance against a brute-force computation, variance off
the data, the safetensors round trip, the registry, penalties and ensembles, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch


pytest.importorskip("laplace")

WORDS = ["apple", "river", "stone", "cloud", "green", "quick", "seven", "table", "music", "paper", "light", "ocean"]


def _pairs(n: int, seed: int = 0) -> list[dict[str, str]]:
    """Pairs where the chosen answer is a word list ending in 'yes' and the rejected one ends in 'no'."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        words = " ".join(rng.choice(WORDS, size=3))
        pairs.append({"prompt": f"Say {words}.", "chosen": f" {words} yes", "rejected": f" {words} no"})
    return pairs


def _train(model, tokenizer, pairs, steps: int = 30) -> None:
    from trl_icrm.demonstrations import DemonstrationRenderer
    from trl_icrm.laplace.adapter import PairwiseRewardAdapter, encode_pairs, pack_rows

    rows = pack_rows([side for pair in encode_pairs(DemonstrationRenderer(tokenizer), pairs) for side in pair], 2)
    adapter = PairwiseRewardAdapter(model, tokenizer.pad_token_id)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        rewards = adapter(rows)
        loss = -torch.nn.functional.logsigmoid(rewards[:, 0] - rewards[:, 1]).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


@pytest.fixture(scope="module")
def bt_lora_dir(tmp_path_factory, default_model_dir) -> str:
    """A tiny LoRA BT reward model, trained a few steps on `_pairs`, saved as base model + adapter folder."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer, LlamaForSequenceClassification

    from trl_icrm.utils.testing import random_llama_config

    root = tmp_path_factory.mktemp("laplace-bt")
    tokenizer = AutoTokenizer.from_pretrained(default_model_dir)
    torch.manual_seed(0)
    config = random_llama_config(tokenizer, num_labels=1, num_hidden_layers=1, hidden_size=16, intermediate_size=32)
    base = LlamaForSequenceClassification(config)
    base.save_pretrained(root / "base")
    tokenizer.save_pretrained(root / "base")
    base = LlamaForSequenceClassification.from_pretrained(root / "base")  # PEFT records where the base model is
    lora = LoraConfig(task_type="SEQ_CLS", r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"])
    model = get_peft_model(base, lora)
    torch.manual_seed(1)
    for name, parameter in model.named_parameters():  # LoRA B starts at 0; start off it so every Jacobian is nonzero
        if ".lora_B." in name:
            torch.nn.init.normal_(parameter, std=0.05)
    _train(model, tokenizer, _pairs(24))
    adapter_dir = root / "bt-lora"
    model.save_pretrained(adapter_dir)
    tokenizer.save_pretrained(adapter_dir)
    return str(adapter_dir)


def _fresh(bt_lora_dir):
    from trl_icrm.laplace import load_bt_model

    return load_bt_model(bt_lora_dir)


def _rows(tokenizer, prompts, completions):
    from trl_icrm.demonstrations import DemonstrationRenderer
    from trl_icrm.laplace.adapter import pack_rows

    renderer = DemonstrationRenderer(tokenizer)
    return pack_rows([renderer.encode_query(p, c) for p, c in zip(prompts, completions, strict=True)])


def _jacobian(posterior, tokenizer, rows):
    """Explicit Jacobians `(n, k, num_params)` of the rewards of `(n, k, length)` rows wrt the posterior's weights
    (torch.autograd, one output at a time), and the rewards `(n, k)`."""
    from trl_icrm.laplace.adapter import pooled_features

    params = [p for p in posterior.adapter.parameters() if p.requires_grad]
    inputs = (
        pooled_features(posterior.model, rows, tokenizer.pad_token_id) if posterior.subset == "last_layer" else rows
    )
    outputs = posterior.adapter(inputs)
    jacobians = []
    for value in outputs.reshape(-1):
        grads = torch.autograd.grad(value, params, retain_graph=True)
        jacobians.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(jacobians).reshape(*outputs.shape, -1).double(), outputs.detach().double()


def _pair_rows(tokenizer, pairs):
    from trl_icrm.demonstrations import DemonstrationRenderer
    from trl_icrm.laplace.adapter import encode_pairs, pack_rows

    return pack_rows([side for pair in encode_pairs(DemonstrationRenderer(tokenizer), pairs) for side in pair], 2)


def _brute_force_precision(posterior, pairs, tokenizer, structure):
    """P = GGN of the BT likelihood + prior precision, explicit."""
    jac, rewards = _jacobian(posterior, tokenizer, _pair_rows(tokenizer, pairs))
    chosen_prob = torch.sigmoid(rewards[:, 0] - rewards[:, 1])
    difference = jac[:, 0] - jac[:, 1]
    ggn = torch.einsum("n,np,nq->pq", chosen_prob * (1 - chosen_prob), difference, difference)
    if structure == "diag":
        ggn = torch.diag(torch.diagonal(ggn))
    return ggn + posterior.prior_precision * torch.eye(len(ggn), dtype=torch.float64)


def _brute_force_variance(posterior, pairs, tokenizer, test_rows, structure):
    """Lambda = J P^-1 J^T with P = GGN of the BT likelihood + prior precision, all explicit."""
    precision = _brute_force_precision(posterior, pairs, tokenizer, structure)
    test_jac, test_rewards = _jacobian(posterior, tokenizer, test_rows)
    test_jac = test_jac[:, 0]
    variance = torch.einsum("np,pq,nq->n", test_jac, torch.linalg.inv(precision), test_jac)
    return test_rewards[:, 0], variance


@pytest.mark.parametrize(("subset", "structure"), [("lora", "full"), ("lora", "diag"), ("last_layer", "full")])
def test_predictive_variance_matches_brute_force(bt_lora_dir, subset, structure):
    from trl_icrm.laplace import fit_laplace

    model, tokenizer = _fresh(bt_lora_dir)
    pairs = _pairs(16)
    posterior = fit_laplace(model, tokenizer, pairs, subset=subset, hessian_structure=structure, progress_bar=False)
    rows = _rows(tokenizer, ["Say apple.", "Tell me a story"], [" apple river yes", " once upon a time"])
    mean, variance = posterior.predict_rows(rows)
    expected_mean, expected_variance = _brute_force_variance(posterior, pairs, tokenizer, rows, structure)
    torch.testing.assert_close(mean, expected_mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(variance, expected_variance, rtol=1e-3, atol=1e-7)
    assert (variance > 0).all()


def test_per_row_jacobians_equal_laplace_torch_jacobians(bt_lora_dir):
    """One backward pass of the summed rewards gives each row's Jacobian exactly: equal to laplace-torch's torch.func
    Jacobian (one backward pass per output) on padded (batch, 2, length) pairs of a LoRA model, in laplace-torch's
    parameter order and (batch, outputs, parameters) layout."""
    from laplace.curvature import CurvlinopsGGN

    from trl_icrm.laplace.adapter import PairwiseRewardAdapter, select_lora_subset, use_eager_attention
    from trl_icrm.laplace.jacobians import per_row_backend

    model, tokenizer = _fresh(bt_lora_dir)
    select_lora_subset(model)
    use_eager_attention(model)
    adapter = PairwiseRewardAdapter(model, tokenizer.pad_token_id)
    from trl_icrm.demonstrations import DemonstrationRenderer
    from trl_icrm.laplace.adapter import pack_rows

    renderer = DemonstrationRenderer(tokenizer)
    texts = [" apple", " once upon a time there", " yes", " river", " a b c d e f", " no"]
    rows = pack_rows([renderer.encode_query("Say something.", text) for text in texts], per_item=2)
    assert (rows < 0).any()  # rows of different lengths: padded
    expected_js, expected_f = CurvlinopsGGN(adapter, "regression").jacobians(rows)
    js, f = per_row_backend()(adapter, "regression").jacobians(rows)
    assert js.shape == expected_js.shape == (3, 2, sum(p.numel() for p in adapter.parameters() if p.requires_grad))
    torch.testing.assert_close(f, expected_f.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(js, expected_js.detach(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("structure", ["kron", "diag"])
def test_glm_predictive_equals_laplace_torch(bt_lora_dir, structure):
    """The predictive's mean and (batch, 2, 2) covariance, with the Kronecker square form taken in the eigenbasis
    only, equal laplace-torch's own GLM predictive on the same posterior (LoRA subset, padded pairs)."""
    from trl_icrm.laplace import fit_laplace
    from trl_icrm.laplace.predictive import glm_predictive, kron_inv_square_form

    model, tokenizer = _fresh(bt_lora_dir)
    posterior = fit_laplace(
        model, tokenizer, _pairs(8), subset="lora", hessian_structure=structure, progress_bar=False
    )
    rows = _pair_rows(tokenizer, _pairs(3, seed=4))
    expected_mean, expected_covariance = posterior.laplace(rows, pred_type="glm")
    mean, covariance = glm_predictive(posterior.laplace, rows)
    assert covariance.shape == (3, 2, 2)
    torch.testing.assert_close(mean, expected_mean.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(covariance, expected_covariance.detach(), rtol=1e-4, atol=1e-8)
    js, _ = posterior.laplace.backend.jacobians(rows)
    assert (kron_inv_square_form(posterior.laplace.posterior_precision, js) is None) == (structure != "kron")


def test_pair_probability_is_the_probit_of_the_margin_with_the_joint_covariance(bt_lora_dir):
    """The held-out pair probability reads the pair's 2x2 predictive covariance (explicit J P^-1 J^T here), and the
    Laplace probability never changes which side the MAP model prefers (it only shrinks towards 1/2)."""
    from trl_icrm.laplace import fit_laplace
    from trl_icrm.laplace.evaluation import pair_predictions

    model, tokenizer = _fresh(bt_lora_dir)
    pairs = _pairs(16)
    posterior = fit_laplace(model, tokenizer, pairs, subset="last_layer", progress_bar=False)
    held_out = _pairs(6, seed=3)
    predictions = pair_predictions(posterior, tokenizer, held_out)
    covariance_of_weights = torch.linalg.inv(_brute_force_precision(posterior, pairs, tokenizer, "full"))
    jac, rewards = _jacobian(posterior, tokenizer, _pair_rows(tokenizer, held_out))
    covariance = torch.einsum("nip,pq,njq->nij", jac, covariance_of_weights, jac)
    margin_variance = covariance[:, 0, 0] + covariance[:, 1, 1] - 2 * covariance[:, 0, 1]
    expected = torch.sigmoid((rewards[:, 0] - rewards[:, 1]) / torch.sqrt(1 + torch.pi / 8 * margin_variance))
    torch.testing.assert_close(predictions["laplace_prob"], expected, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(predictions["variance_chosen"], covariance[:, 0, 0], rtol=1e-3, atol=1e-7)
    map_side, laplace_side = predictions["map_prob"] > 0.5, predictions["laplace_prob"] > 0.5
    assert torch.equal(map_side, laplace_side)
    assert ((predictions["laplace_prob"] - 0.5).abs() <= (predictions["map_prob"] - 0.5).abs() + 1e-9).all()


@pytest.mark.parametrize("subset", ["lora", "last_layer"])
def test_mean_is_the_map_reward_of_the_plain_scorer(bt_lora_dir, subset):
    from trl_icrm.laplace import fit_laplace
    from trl_icrm.rewards import SequenceClassifierReward
    from trl_icrm.rewards.laplace import LaplaceReward

    model, tokenizer = _fresh(bt_lora_dir)
    posterior = fit_laplace(model, tokenizer, _pairs(8), subset=subset, progress_bar=False)
    prompts, completions = ["Say apple.", "Say cloud."], [" apple yes", " cloud no"]
    laplace = LaplaceReward(posterior, tokenizer).score(prompts, completions)
    plain = SequenceClassifierReward(*_fresh(bt_lora_dir)).score(prompts, completions)
    np.testing.assert_allclose(laplace.mean, plain.mean, rtol=1e-4, atol=1e-5)
    assert laplace.variance is not None and (laplace.variance > 0).all()


@pytest.mark.parametrize(
    ("subset", "structure", "factor"), [("lora", "full", 1.5), ("last_layer", "full", 1.5), ("lora", "kron", 1.0)]
)
def test_variance_is_larger_far_from_the_data(bt_lora_dir, subset, structure, factor):
    """The data shrink the predictive variance below the prior's (|J|^2 / lambda) much more near the training pairs
    than far from them: by a factor > 1.5 with the exact GGN; KFAC blurs it (on this tiny model about 0.36 near vs
    0.46 far), so only the direction is asserted for it. (Raw variances of a random tiny network also vary with its
    Jacobian norms, which says nothing about the data; the shrinkage Lambda / prior variance is the data's effect.)"""
    from trl_icrm.laplace import fit_laplace

    model, tokenizer = _fresh(bt_lora_dir)
    posterior = fit_laplace(
        model, tokenizer, _pairs(48), subset=subset, hessian_structure=structure, progress_bar=False
    )
    near = _pairs(8, seed=5)
    far_texts = [
        "The mitochondria is the powerhouse of the cell, 1848!",
        "Ξ ж ☃ 12345 %%% ???",
        "def f(x): return x",
    ] * 3
    shrinkage = {}
    for where, rows in (
        ("near", _rows(tokenizer, [p["prompt"] for p in near], [p["chosen"] for p in near])),
        ("far", _rows(tokenizer, ["Question: " + t for t in far_texts], far_texts)),
    ):
        _, variance = posterior.predict_rows(rows)
        jacobian = _jacobian(posterior, tokenizer, rows)[0][:, 0]
        prior_variance = (jacobian**2).sum(-1) / posterior.prior_precision
        shrinkage[where] = (variance / prior_variance).mean().item()
    assert shrinkage["far"] > factor * shrinkage["near"], shrinkage


@pytest.mark.parametrize("subset", ["lora", "last_layer"])
def test_save_load_round_trip_and_registry(bt_lora_dir, tmp_path, subset):
    import shutil

    from trl_icrm.laplace import fit_laplace, load_posterior, posterior_file
    from trl_icrm.rewards import load_reward, reward_model_kind

    folder = tmp_path / "model"
    shutil.copytree(bt_lora_dir, folder)
    assert reward_model_kind(folder) != "laplace"
    model, tokenizer = _fresh(folder)
    posterior = fit_laplace(model, tokenizer, _pairs(12), subset=subset, progress_bar=False)
    path = posterior.save(folder)
    assert Path(path) == posterior_file(folder, subset) and [p.name for p in folder.glob(".*partial")] == []
    from safetensors import safe_open

    with safe_open(path, framework="pt") as handle:
        assert handle.metadata()["subset"] == subset
    rows = _rows(tokenizer, ["Say apple.", "Hi"], [" apple stone yes", " hello there"])
    before = posterior.predict_rows(rows)
    loaded = load_posterior(folder)
    after = loaded.predict_rows(rows)
    assert loaded.prior_precision == posterior.prior_precision
    torch.testing.assert_close(after[0], before[0], rtol=0, atol=0)
    torch.testing.assert_close(after[1], before[1], rtol=0, atol=0)
    laplace_object = loaded.laplace
    moved = loaded.to("cpu").predict_rows(rows)  # the posterior object is rebuilt on the moved model, from its state
    assert loaded.laplace is not laplace_object
    torch.testing.assert_close(moved[0], before[0], rtol=0, atol=0)
    torch.testing.assert_close(moved[1], before[1], rtol=0, atol=0)
    assert reward_model_kind(folder) == "laplace"
    reward = load_reward(folder, penalty="lcb", penalty_coef=2.0, chunk_size=4)  # as predict_rows batches
    from trl_icrm.serving.loading import move_to_device

    laplace_object = reward.posterior.laplace
    move_to_device(reward, "cpu")  # the server's --device moves the posterior along with the model
    assert reward.posterior.laplace is not laplace_object
    scored = reward.score(["Say apple.", "Hi"], [" apple stone yes", " hello there"])
    np.testing.assert_array_equal(scored.variance, before[1].numpy())
    expected = before[0].numpy() - 2.0 * np.sqrt(before[1].numpy())
    np.testing.assert_allclose(reward(["Say apple.", "Hi"], [" apple stone yes", " hello there"]), expected)


def test_penalties_ensembles_and_best_of_n_selection(bt_lora_dir, tmp_path):
    from trl_icrm.best_of_n import combine_rewards
    from trl_icrm.laplace import fit_laplace
    from trl_icrm.rewards import EnsembleReward, supports_uncertainty
    from trl_icrm.rewards.laplace import LaplaceReward

    members = []
    for seed in (0, 1):
        model, tokenizer = _fresh(bt_lora_dir)
        posterior = fit_laplace(model, tokenizer, _pairs(10, seed=seed), subset="last_layer", progress_bar=False)
        members.append(LaplaceReward(posterior, tokenizer, name=f"la{seed}"))
    prompts, completions = ["Say apple."] * 3, [" apple yes", " apple no", " zebra quantum 42"]
    posteriors = [member.score(prompts, completions) for member in members]
    assert supports_uncertainty(members[0])
    var_penalty = LaplaceReward(members[0].posterior, members[0].tokenizer, penalty="var_penalty", penalty_coef=3.0)
    np.testing.assert_allclose(
        var_penalty(prompts, completions), posteriors[0].mean - 3.0 * posteriors[0].variance, rtol=1e-12
    )
    ensemble = EnsembleReward(members, penalty="lcb", penalty_coef=1.0).score(prompts, completions)
    means = np.stack([p.mean for p in posteriors])
    variances = np.stack([p.variance for p in posteriors])
    np.testing.assert_allclose(ensemble.mean, means.mean(0))
    np.testing.assert_allclose(ensemble.variance, variances.mean(0) + means.var(0))
    la_ens = combine_rewards(means, variances, "lcb", 1.0)  # the best-of-N selection score of "LA Ens"
    np.testing.assert_allclose(la_ens, (means - np.sqrt(variances)).mean(0))


def test_not_a_bt_classifier_and_no_lora_are_clear_errors(bt_lora_dir, tiny_sequence_classifier, tiny_causal_lm):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from trl_icrm.laplace import NotARewardModelError, fit_laplace, load_bt_model

    two_labels = AutoModelForSequenceClassification.from_pretrained(tiny_sequence_classifier)
    tokenizer = AutoTokenizer.from_pretrained(tiny_sequence_classifier)
    with pytest.raises(NotARewardModelError, match="one output"):
        fit_laplace(two_labels, tokenizer, _pairs(2), subset="last_layer", progress_bar=False)
    for not_a_reward_model in (tiny_sequence_classifier, tiny_causal_lm):  # two labels; a causal LM
        with pytest.raises(NotARewardModelError, match="not a Bradley-Terry reward model"):
            load_bt_model(not_a_reward_model)
    merged = load_bt_model(bt_lora_dir)[0].merge_and_unload()
    with pytest.raises(NotARewardModelError, match="LoRA"):
        fit_laplace(merged, tokenizer, _pairs(2), subset="lora", progress_bar=False)
    model, tokenizer = _fresh(bt_lora_dir)
    with pytest.raises(ValueError, match="'chosen' and 'rejected'"):
        fit_laplace(model, tokenizer, [{"prompt": "p", "text": "x"}], subset="lora", progress_bar=False)
    with pytest.raises(ValueError, match="Unknown subset"):
        fit_laplace(model, tokenizer, _pairs(2), subset="everything", progress_bar=False)


def test_posterior_of_another_model_is_refused(bt_lora_dir, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from trl_icrm.laplace import PosteriorMismatchError, fit_laplace, load_posterior, posterior_file

    folder = tmp_path / "model"
    shutil.copytree(bt_lora_dir, folder)
    model, tokenizer = _fresh(folder)
    path = fit_laplace(model, tokenizer, _pairs(6), subset="lora", progress_bar=False).save(folder)
    other = tmp_path / "other"  # same shapes, other weights: a LoRA posterior copied next to another adapter
    shutil.copytree(folder, other)
    weights = load_file(other / "adapter_model.safetensors")
    save_file({k: v + 0.1 if "lora_B" in k else v for k, v in weights.items()}, other / "adapter_model.safetensors")
    with pytest.raises(PosteriorMismatchError, match="MAP mean differs"):
        load_posterior(other)
    from peft import LoraConfig, get_peft_model

    reshaped = get_peft_model(
        _fresh(folder)[0].get_base_model(), LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["q_proj", "v_proj"])
    )  # other shapes
    with pytest.raises(PosteriorMismatchError, match="other weights"):
        load_posterior(reshaped, tokenizer, path=path)
    with pytest.raises(PosteriorMismatchError, match="not a trl-icrm Laplace posterior"):
        bogus = tmp_path / "bogus.safetensors"
        save_file({"x": torch.zeros(1)}, bogus)
        load_posterior(model, tokenizer, path=bogus)
    assert posterior_file(folder, "lora").is_file()


def test_interrupted_save_leaves_no_posterior(bt_lora_dir, tmp_path, monkeypatch):
    import shutil

    import safetensors.torch

    from trl_icrm.laplace import fit_laplace, saved_subsets
    from trl_icrm.rewards import reward_model_kind

    folder = tmp_path / "model"
    shutil.copytree(bt_lora_dir, folder)
    model, tokenizer = _fresh(folder)
    posterior = fit_laplace(model, tokenizer, _pairs(4), subset="last_layer", progress_bar=False)

    def crash(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        posterior.save(folder)
    assert saved_subsets(folder) == [] and list(folder.glob("*laplace*")) == []
    assert reward_model_kind(folder) != "laplace"


@pytest.mark.parametrize("subset", ["lora", "last_layer"])
def test_laplace_command_fits_saves_and_evaluates(bt_lora_dir, tmp_path, subset, capsys):
    import shutil

    from datasets import Dataset

    from trl_icrm.cli import main
    from trl_icrm.rewards import load_reward

    folder = tmp_path / "model"
    shutil.copytree(bt_lora_dir, folder)
    Dataset.from_list(_pairs(20)).save_to_disk(str(tmp_path / "pairs"))
    argv = ["laplace", "--model_name_or_path", str(folder), "--dataset_name", str(tmp_path / "pairs"), "--subset"]
    main([*argv, subset, "--evaluate", "--eval_fraction", "0.2", "--no_progress_bar"])
    assert "Laplace posterior" in capsys.readouterr().out
    evaluation = json.loads((folder / f"laplace_{subset}_eval.json").read_text())
    assert evaluation["num_pairs"] == 4 and 0 <= evaluation["ece_laplace"] <= 1 and evaluation["mean_variance"] > 0
    reward = load_reward(folder, subset=subset, penalty="lcb")
    assert reward.subset == subset and len(reward(["Say apple."], [" apple yes"])) == 1


@pytest.mark.slow
def test_experiment_recipe_end_to_end_on_tiny_models(tiny_causal_lm, tmp_path):
    """Every step of recipes/bayesian_reward_models.py (pairs, candidates, BT seeds, posteriors, scores, curves,
    calibration) on a tiny random policy: the files exist and hold one curve per method."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "run"
    command = [sys.executable, str(root / "recipes" / "bayesian_reward_models.py"), "--output_dir", str(out)]
    command += ["--model_name_or_path", tiny_causal_lm, "--num_problems", "8", "--samples_per_problem", "2"]
    command += ["--pair_max_new_tokens", "16", "--max_new_tokens", "16", "--num_prompts", "4", "--num_candidates", "8"]
    command += ["--seeds", "0", "1", "--bt_steps", "2", "--num_bootstrap", "20", "--lora_posterior_seeds", "0"]
    command += ["--icrm_steps", "2", "--icrm_demonstrations", "2", "--vrm_steps", "2"]
    subprocess.run(command, check=True, cwd=root, capture_output=True)
    table = json.loads((out / "gold_at_max_n.json").read_text())
    names = {row["method"] for row in table}
    assert {"MAP", "LA std k=1", "LA var k=1", "LA last-layer std k=1", "Ens", "LA Ens last-layer std k=1"} <= names
    assert {"ICRM", "ICRM lcb k=1", "VRM", "VRM std k=1"} <= names
    assert all(row["n"] == 8 for row in table)
    assert (out / "curves" / "best_of_n_curves.csv").is_file() and (out / "curves" / "main.png").is_file()
    calibration = json.loads((out / "calibration.json").read_text())
    assert set(calibration) == {"last_layer", "lora"} and calibration["lora"]["variance_ratio"] > 0


def test_train_without_merging_then_laplace_then_load_reward(tiny_causal_lm, tmp_path):
    """`trl-icrm train --method bt --no_merge_lora` keeps the adapter (and a one-output config), `trl-icrm laplace`
    fits its LoRA posterior, and `load_reward` then reads the kind `laplace` (before `bt`)."""
    from datasets import Dataset

    from trl_icrm.cli import main
    from trl_icrm.models import read_model_config
    from trl_icrm.rewards import load_reward, reward_model_kind

    Dataset.from_list(_pairs(16)).save_to_disk(str(tmp_path / "pairs"))
    model_dir = tmp_path / "bt-lora"
    data = ["--dataset_name", str(tmp_path / "pairs"), "--eval_fraction", "0.25"]
    main(["train", "--method", "bt", "--no_merge_lora", "--model_name_or_path", tiny_causal_lm, *data,
          "--output_dir", str(model_dir), "--max_steps", "2", "--per_device_train_batch_size", "4",
          "--max_length", "512", "--use_cpu", "True", "--report_to", "none"])  # fmt: skip
    assert (model_dir / "adapter_config.json").is_file() and not (model_dir / "model.safetensors").is_file()
    assert read_model_config(model_dir).num_labels == 1  # the classifier's config is saved next to the adapter
    assert reward_model_kind(model_dir) == "bt"
    main(
        [
            "laplace",
            "--model_name_or_path",
            str(model_dir),
            *data,
            "--seed",
            "42",
            "--subset",
            "lora",
            "--no_progress_bar",
        ]
    )
    assert reward_model_kind(model_dir) == "laplace"
    reward = load_reward(model_dir, penalty="var_penalty", penalty_coef=0.5)
    posterior = reward.score(["Say apple."], [" apple yes"])
    assert reward.subset == "lora" and posterior.variance[0] > 0


def test_best_of_n_sampler_selects_with_the_laplace_penalty(bt_lora_dir, tiny_causal_lm):
    """`BestOfNSampler` takes a `LaplaceReward` unchanged: with `penalty="lcb"` it selects the candidate with the
    largest r_MAP - k sqrt(Lambda) and reports the posterior's means and variances."""
    from trl_icrm.best_of_n import BestOfNSampler
    from trl_icrm.laplace import fit_laplace
    from trl_icrm.rewards.laplace import LaplaceReward

    model, tokenizer = _fresh(bt_lora_dir)
    reward = LaplaceReward(
        fit_laplace(model, tokenizer, _pairs(8), subset="last_layer", progress_bar=False), tokenizer
    )
    sampler = BestOfNSampler(tiny_causal_lm, reward, n=4, max_new_tokens=6, penalty="lcb", penalty_coef=2.0, seed=0)
    [output] = sampler.sample(["Say apple."])
    posterior = reward.score(["Say apple."] * 4, output.completions)
    np.testing.assert_allclose(output.rewards[reward.__name__], posterior.mean, rtol=1e-5)
    np.testing.assert_allclose(output.variances[reward.__name__], posterior.variance, rtol=1e-4)
    assert output.index == int(np.argmax(posterior.mean - 2.0 * np.sqrt(posterior.variance)))


def test_a_posterior_follows_its_model_to_any_path(bt_lora_dir, tmp_path, monkeypatch):
    import shutil

    from trl_icrm.laplace import PosteriorMismatchError, fit_laplace, load_posterior
    from trl_icrm.rewards import load_reward

    model, tokenizer = _fresh(bt_lora_dir)
    runs = tmp_path / "runs" / "bt1"
    model.merge_and_unload().save_pretrained(runs)  # a plain BT model, as `trl-icrm train` saves one
    tokenizer.save_pretrained(runs)
    monkeypatch.chdir(tmp_path)
    plain, tokenizer = _fresh("runs/bt1")  # fitted through a relative path
    fit_laplace(plain, tokenizer, _pairs(6), subset="last_layer", progress_bar=False).save("runs/bt1")
    rows = _rows(tokenizer, ["Hi"], [" hello there"])
    expected = load_posterior("runs/bt1").predict_rows(rows)
    shutil.copytree(runs, tmp_path / "copy")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for path in (str(runs.resolve()), "../copy", str(tmp_path / "copy")):
        torch.testing.assert_close(load_posterior(path).predict_rows(rows), expected, rtol=0, atol=0)
    assert load_reward(str(runs.resolve())).has_uncertainty
    other = tmp_path / "other"  # the same folder name and head, other backbone weights: refused
    shutil.copytree(runs, other)
    from safetensors.torch import load_file, save_file

    weights = load_file(other / "model.safetensors")
    save_file({k: v if k.startswith("score") else v + 0.01 for k, v in weights.items()}, other / "model.safetensors")
    with pytest.raises(PosteriorMismatchError, match="fingerprint"):
        load_posterior(str(other))

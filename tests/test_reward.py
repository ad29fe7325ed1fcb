# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
import math

import pytest
import torch
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

from trl_icrm.demonstrations import MalformedDemonstrationError
from trl_icrm.icrm.modeling import load_icrm_model
from trl_icrm.rewards import ICRMReward, SequenceClassifierReward, build_reward
from trl_icrm.utils.testing import conflicting_pairs


# Demonstrations of the two opposite groups of `trl_icrm.utils.testing.conflicting_pairs` (A prefers " yes", B " no").
_DEMO_ROWS = conflicting_pairs(4, seed=5)
DEMOS_A = [{k: row[k] for k in ("prompt", "chosen", "rejected")} for row in _DEMO_ROWS if row["group"] == "A"]
DEMOS_B = [{k: row[k] for k in ("prompt", "chosen", "rejected")} for row in _DEMO_ROWS if row["group"] == "B"]


def test_steering_reaches_the_reward(icrm_trained):
    reward = ICRMReward(icrm_trained.saved_model_dir)
    prompts, completions = ["tiger lemon north?"] * 2, [" yes", " no"]  # a prompt no demonstration has
    under_a = reward(prompts, completions, demonstrations=[DEMOS_A] * 2)
    under_b = reward(prompts, completions, demonstrations=[DEMOS_B] * 2)
    assert under_a[0] > under_a[1] and under_b[0] < under_b[1], (under_a, under_b)


@pytest.mark.parametrize("model_fixture", ["random_icrm_dir", "default_model_dir"])
def test_cached_and_naive_paths_agree(model_fixture, request):
    model, tokenizer = load_icrm_model(request.getfixturevalue(model_fixture))
    prompts = ["What is 2+2?"] * 3 + ["Name a colour."] * 3
    completions = ["4", "Four, of course.", "5"] + ["Red.", "I like a deep blue", ""]
    columns = {"demonstrations": [DEMOS_A[:2]] * 3 + [DEMOS_B[:3]] * 3}
    cached = ICRMReward(model, tokenizer, use_prefix_cache=True, batch_size=2)
    naive = ICRMReward(model, tokenizer, use_prefix_cache=False, batch_size=4)
    for penalty in (None, "lcb"):
        cached.penalty = naive.penalty = penalty
        torch.testing.assert_close(
            torch.tensor(cached(prompts, completions, **columns)),
            torch.tensor(naive(prompts, completions, **columns)),
            rtol=0,
            atol=1e-4,
        )


def test_column_bank_and_fixed_modes_select_the_right_demonstrations(random_icrm_dir):
    prompts, completions = ["p1?", "p1?", "p2?"], [" yes", " no", " yes"]
    column = ICRMReward(random_icrm_dir)
    encoded = column.encode(prompts, completions, demonstrations=[DEMOS_A[:1], DEMOS_A[:1], DEMOS_B[:2]])
    assert encoded[0].prefix_ids == column.renderer.build_prefix([column.renderer.encode_demonstration(DEMOS_A[0])])
    assert encoded[2].num_demonstrations == 2 and encoded[0].prefix_ids == encoded[1].prefix_ids

    bank = ICRMReward(
        random_icrm_dir,
        demonstration_bank={"A": DEMOS_A, "B": DEMOS_B},
        bank_key_column="preference_id",
        num_demonstrations=2,
        seed=3,
    )
    chosen = [bank.demonstrations_for(i, p, {"preference_id": ["A", "A", "B"]}) for i, p in enumerate(prompts)]
    assert all(d in DEMOS_A for d in chosen[0]) and all(d in DEMOS_B for d in chosen[2])
    assert len(chosen[2]) == 2 and chosen[0] == chosen[1]  # same prompt and key: same draw for the whole group
    assert chosen == [bank.demonstrations_for(i, p, {"preference_id": ["A", "A", "B"]}) for i, p in enumerate(prompts)]

    fixed = ICRMReward(random_icrm_dir, fixed_demonstrations=DEMOS_B[:1])
    assert fixed.demonstrations_for(0, "x", {}) == DEMOS_B[:1]


def test_penalties(random_icrm_dir):
    values = {}
    for penalty in (None, "mean", "lcb", "var_penalty"):
        reward = ICRMReward(random_icrm_dir, penalty=penalty, fixed_demonstrations=DEMOS_A[:2], penalty_coef=2.0)
        values[penalty or "logit"] = reward(["q?", "q?"], [" yes", " no"])
    mean, var = reward.score_with_uncertainty(["q?", "q?"], [" yes", " no"])
    assert values["mean"] == pytest.approx([1 / (1 + math.exp(-r)) for r in values["logit"]], abs=1e-6)
    assert values["lcb"] == pytest.approx([m - 2.0 * math.sqrt(v) for m, v in zip(mean, var, strict=True)], abs=1e-6)
    assert values["var_penalty"] == pytest.approx([m - 2.0 * v for m, v in zip(mean, var, strict=True)], abs=1e-6)
    posterior = reward.score(["q?", "q?"], [" yes", " no"])
    assert posterior.scale == "probability" and posterior.reward.tolist() == pytest.approx(values["logit"], abs=1e-6)
    assert posterior.extras["num_demonstrations"].tolist() == [2.0, 2.0]
    with pytest.raises(ValueError, match="Unknown penalty 'median'"):
        ICRMReward(random_icrm_dir, penalty="median")


def test_error_messages(random_icrm_dir, tiny_causal_lm):
    with pytest.raises(ValueError, match="not a trained ICRM model"):
        ICRMReward(tiny_causal_lm)
    reward = ICRMReward(random_icrm_dir)
    with pytest.raises(ValueError, match="row 1 has no demonstrations"):
        reward(["a", "b"], ["x", "y"], demonstrations=[DEMOS_A[:1], []])
    with pytest.raises(ValueError, match="no column 'demonstrations'"):
        reward(["a"], ["x"])
    with pytest.raises(
        MalformedDemonstrationError, match="row 0, column 'demonstrations', demonstration 1: missing key 'rejected'"
    ):
        reward(["a"], ["x"], demonstrations=[[DEMOS_A[0], {"prompt": "p", "chosen": "c"}]])
    zero_shot = ICRMReward(random_icrm_dir, allow_zero_shot=True)
    assert zero_shot.encode(["a"], ["x"], demonstrations=[[]])[0].prefix_ids == []
    with pytest.raises(ValueError, match="needs a reward model"):
        build_reward("bt")


def _grpo_dataset() -> Dataset:
    return Dataset.from_list(
        [{"prompt": f"tiger lemon {i}?", "demonstrations": DEMOS_A[:2] if i % 2 else DEMOS_B[:2]} for i in range(8)]
    )


def _length_reward(completions, **kwargs):
    return [float(len(c)) / 10 for c in completions]


@pytest.mark.parametrize("trainer_name", ["grpo", "rloo"])
def test_drops_into_trl_on_policy_trainers(trainer_name, tiny_causal_lm, random_icrm_dir, tmp_path):
    config_class, trainer_class = {"grpo": (GRPOConfig, GRPOTrainer), "rloo": (RLOOConfig, RLOOTrainer)}[trainer_name]
    args = config_class(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        max_steps=2,
        learning_rate=1e-4,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        bf16=False,
        seed=0,
        disable_tqdm=True,
    )
    reward = ICRMReward(random_icrm_dir)
    trainer = trainer_class(
        model=tiny_causal_lm, reward_funcs=[reward, _length_reward], args=args, train_dataset=_grpo_dataset()
    )
    trainer.train()
    assert trainer.state.global_step == 2
    logged = [entry for entry in trainer.state.log_history if "rewards/icrm/mean" in entry]
    assert len(logged) == 2
    for entry in logged:
        assert math.isfinite(entry["rewards/icrm/mean"]) and math.isfinite(entry["rewards/_length_reward/mean"])


def test_sequence_classifier_reward(tiny_causal_lm, random_icrm_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_causal_lm, num_labels=1)
    model.save_pretrained(tmp_path)
    reward = build_reward("bt", str(tmp_path), tokenizer=load_icrm_model(random_icrm_dir)[1])
    assert isinstance(reward, SequenceClassifierReward)
    scores = reward(["a?", "a?"], [" yes", " no"])
    with torch.inference_mode():
        ids = reward.tokenizer("a? yes" + reward.tokenizer.eos_token, return_tensors="pt")["input_ids"]
        expected = model(input_ids=ids).logits[0, 0].item()
    assert scores[0] == pytest.approx(expected, abs=1e-5) and scores[0] != scores[1]
    with pytest.raises(ValueError, match="one output"):
        SequenceClassifierReward(random_icrm_dir)

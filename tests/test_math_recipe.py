# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The math-verification recipe: the shared logic of `trl_icrm.experiments.math_grpo`, and smoke runs of the recipe scripts
(`recipes/build_math_preferences.py`, `train_reward_model.py`, `grpo_math.py`, `compare_rewards.py`) on tiny random
models: 8 problems, 8-token completions, 2 training steps."""

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from datasets import Dataset

from trl_icrm.data.math_preferences import (
    PLAIN_FAMILY,
    add_demonstrations,
    build_preference_pairs,
    group_of,
    load_math_problems,
    make_math_problems,
    reference_completion,
)
from trl_icrm.demonstrations import DemonstrationBank, seeded_rng
from trl_icrm.experiments.math_grpo import (
    HeldOutAccuracyCallback,
    generate_greedy,
    greedy_accuracy,
    how_to_make_reward_model,
)
from trl_icrm.experiments.math_grpo_report import comparison_table, plot_accuracy_curves
from trl_icrm.rewards.math_verify import MathVerifyReward
from trl_icrm.trainer import bt_config_from


ROOT = Path(__file__).resolve().parent.parent


def load_recipe(name: str):
    """A recipe script as a module (its `main` and `make_parser`)."""
    module_name = f"recipe_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, ROOT / "recipes" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def run_recipe(name: str, *args: str):
    module = load_recipe(name)
    return module.main(*module.make_parser().parse_args_and_config(args=list(args)))


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Problems
def test_make_math_problems_plain_share_and_disjoint_splits():
    problems = make_math_problems(num_train=40, num_test=20, difficulties=[1], plain_fraction=0.5, seed=0)
    train, test = problems["train"], problems["test"]
    assert not set(train["question"]) & set(test["question"])
    plain = [row for row in train if row["family"] == PLAIN_FAMILY]
    assert 5 < len(plain) < 35  # about half
    for row in plain:
        assert row["question"] == f"What is {row['expression']}?"
        assert row["question"] in row["prompt"][0]["content"] and "\\boxed{}" in row["prompt"][0]["content"]
        assert str(eval(row["expression"].replace("/", "//"))) == row["solution"]
    assert all(row["difficulty"] == 1 for row in train)
    none_plain = make_math_problems(num_train=10, num_test=4, plain_fraction=0.0, seed=0)
    assert PLAIN_FAMILY not in none_plain["train"]["family"]
    assert (
        make_math_problems(num_train=10, num_test=4, seed=1)["train"]["question"]
        == make_math_problems(num_train=10, num_test=4, seed=1)["train"]["question"]
    )


def test_group_of_and_load_math_problems():
    row = {"family": "apples", "difficulty": 2}
    assert group_of(row, "family") == "apples"
    assert group_of(row, "difficulty") == "difficulty-2"
    assert group_of(row, "family_difficulty") == "apples/difficulty-2"
    assert group_of(row, "none") == group_of({"question": "gsm8k row"}, "family") == "all"
    with pytest.raises(ValueError, match="group_by"):
        group_of(row, "user")
    problems = load_math_problems(num_train=8, num_test=4, group_by="family")
    assert problems["train"]["group"] == problems["train"]["family"]


# Preference pairs
PROBLEMS = [
    {"prompt": "What is 2 + 3?", "solution": "5", "question": "q1", "group": "plain", "family": "plain"},
    {"prompt": "What is 4 + 4?", "solution": "8", "question": "q2", "group": "plain", "family": "plain"},
    {"prompt": "What is 9 - 1?", "solution": "8", "question": "q3", "group": "plain", "family": "plain"},
]


def test_build_preference_pairs_correct_chosen_incorrect_rejected():
    completions = [["5", "6", "5", "7", "x"], ["9", "1"], ["8", "8"]]
    rewards = [[1.0, 0.0, 1.0, 0.0, None], [0.0, 0.0], [1.0, 1.0]]
    pairs = build_preference_pairs(PROBLEMS, completions, rewards, max_pairs_per_problem=10, seed=0)
    first = [p for p in pairs if p["question"] == "q1"]
    # "5" counts once (duplicates dropped), None is ignored: 1 correct x 2 incorrect.
    assert sorted((p["chosen"], p["rejected"]) for p in first) == [("5", "6"), ("5", "7")]
    assert all(p["chosen_source"] == "policy" and p["group"] == "plain" and p["solution"] == "5" for p in first)
    # No correct sample: the reference solution is chosen.
    second = [p for p in pairs if p["question"] == "q2"]
    assert {p["rejected"] for p in second} == {"9", "1"}
    assert all(p["chosen"] == reference_completion("8", conversational=False) for p in second)
    assert all(p["chosen_source"] == "reference" for p in second)
    assert MathVerifyReward()(completions=[second[0]["chosen"]], solution=["8"]) == [1.0]
    # All correct: nothing to reject.
    assert not [p for p in pairs if p["question"] == "q3"]
    assert not list(build_preference_pairs(PROBLEMS[1:2], [["9"]], [[0.0]], reference_fallback=False))


def test_build_preference_pairs_caps_conversational_and_checks_lengths():
    message = lambda text: [{"role": "assistant", "content": text}]  # noqa: E731
    completions = [[message(str(i)) for i in range(6)]]
    rewards = [[1.0, 1.0, 1.0, 0.0, 0.0, 0.0]]
    pairs = build_preference_pairs(PROBLEMS[:1], completions, rewards, max_pairs_per_problem=4, seed=0)
    assert len(pairs) == 4 and len({(p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs}) == 4
    assert pairs == build_preference_pairs(PROBLEMS[:1], completions, rewards, max_pairs_per_problem=4, seed=0)
    fallback = build_preference_pairs(PROBLEMS[1:2], [[message("1")]], [[0.0]])
    assert fallback[0]["chosen"] == reference_completion("8")
    with pytest.raises(ValueError, match="completions"):
        build_preference_pairs(PROBLEMS[:1], [["1", "2"]], [[1.0]])
    with pytest.raises(ValueError, match="problems"):
        build_preference_pairs(PROBLEMS, [["1"]], [[1.0]])


# Demonstrations
def _preferences() -> Dataset:
    rows = []
    for group, questions in (("apples", ["a1", "a2", "a3"]), ("money", ["m1"])):
        for question in questions:
            for k in range(2):
                rows.append(
                    {
                        "prompt": f"P {question}",
                        "chosen": f"good {question} {k}",
                        "rejected": f"bad {question} {k}",
                        "question": question,
                        "group": group,
                    }
                )
    return Dataset.from_list(rows)


def test_demonstrations_come_from_the_same_group_never_the_problem_itself():
    preferences = _preferences()
    bank = DemonstrationBank.from_rows(preferences, key_column="question")
    assert sorted(bank.groups) == ["apples", "money"] and len(bank.groups["apples"]) == 6
    problems = Dataset.from_list(
        [
            {"prompt": "P a1", "question": "a1", "group": "apples"},
            {"prompt": "P new", "question": "new", "group": "apples"},
            {"prompt": "P m1", "question": "m1", "group": "money"},
            {"prompt": "P x", "question": "x", "group": "unknown"},
        ]
    )
    with_demos = add_demonstrations(problems, preferences, num_demonstrations=3, seed=0)
    rows = list(with_demos)
    assert len(rows[0]["demonstrations"]) == 3
    for demo in rows[0]["demonstrations"]:
        assert set(demo) == {"prompt", "chosen", "rejected"}
        assert demo["prompt"] in ("P a2", "P a3")  # same group, never the problem itself
    assert len(rows[1]["demonstrations"]) == 3 and all(
        d["prompt"].startswith("P a") for d in rows[1]["demonstrations"]
    )
    assert rows[2]["demonstrations"] == [] and rows[3]["demonstrations"] == []  # only its own pairs / no group
    again = add_demonstrations(problems, preferences, num_demonstrations=3, seed=0)
    assert again["demonstrations"] == with_demos["demonstrations"]
    assert len(bank.draw("apples", 10, seeded_rng(0, "new"), exclude="new")) == 6
    assert len(bank.draw("apples", 10, seeded_rng(0, "a1"), exclude="a1")) == 4  # never the problem's own pairs


# Evaluation
def test_greedy_accuracy_and_generation(tiny_causal_lm):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_causal_lm).train()
    tokenizer = AutoTokenizer.from_pretrained(tiny_causal_lm)
    problems = load_math_problems(num_train=0, num_test=3, seed=0)["test"]
    completions = generate_greedy(model, tokenizer, problems["prompt"], max_new_tokens=4, batch_size=2)
    assert len(completions) == 3 and all(c[0]["role"] == "assistant" for c in completions)
    assert completions == generate_greedy(model, tokenizer, problems["prompt"], max_new_tokens=4, batch_size=3)

    def always_right(completions, solution, **kwargs):
        return [1.0] * len(completions)

    result = greedy_accuracy(model, tokenizer, problems, max_new_tokens=4, verifier=always_right)
    assert result == {"accuracy": 1.0, "num_correct": 3, "num_problems": 3}
    assert model.training  # restored
    assert greedy_accuracy(model, tokenizer, problems, max_new_tokens=4)["accuracy"] in (0.0, 1 / 3, 2 / 3, 1.0)
    assert math.isnan(greedy_accuracy(model, tokenizer, [], max_new_tokens=4)["accuracy"])


def test_heldout_accuracy_callback_evaluates_before_every_k_steps_and_after(tiny_causal_lm):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_causal_lm)
    tokenizer = AutoTokenizer.from_pretrained(tiny_causal_lm)
    problems = load_math_problems(num_train=0, num_test=2, seed=0)["test"]
    callback = HeldOutAccuracyCallback(problems, tokenizer, eval_every=2, max_new_tokens=2)
    state = SimpleNamespace(global_step=0, max_steps=4, log_history=[])
    callback.on_train_begin(None, state, None, model=model)
    for step in range(1, 5):
        state.global_step = step
        callback.on_step_end(None, state, None, model=model)
    callback.on_train_end(None, state, None, model=model)
    assert [h["step"] for h in callback.history] == [0, 2, 4]
    assert [e["step"] for e in state.log_history if "heldout/accuracy" in e] == [0, 2, 4]
    assert all(h["num_problems"] == 2 for h in callback.history)


# Configs, hints, reports
def test_bt_config_from_icrm_config(tmp_path):
    from trl import RewardConfig

    from trl_icrm import ICRMConfig

    args = ICRMConfig(output_dir=str(tmp_path), max_steps=3, learning_rate=1e-3, seed=7, report_to=[], use_cpu=True)
    config = bt_config_from(args)
    assert type(config) is RewardConfig
    assert (config.max_steps, config.learning_rate, config.seed, config.bf16, config.output_dir) == (
        3,
        1e-3,
        7,
        args.bf16,
        str(tmp_path),
    )


def test_how_to_make_reward_model_names_the_commands():
    hint = how_to_make_reward_model("bt", "outputs/my-bt")
    assert "python recipes/build_math_preferences.py" in hint
    assert "python recipes/train_reward_model.py --method bt" in hint and "--output_dir outputs/my-bt" in hint


def test_comparison_table_and_plot(tmp_path):
    results = {
        name: {
            "heldout_accuracy": {
                "before": 0.1,
                "after": after,
                "history": [{"step": 0, "accuracy": 0.1}, {"step": 5, "accuracy": after}],
            }
        }
        for name, after in (("icrm", 0.3), ("bt", 0.2), ("verifier", float("nan")))
    }
    table = comparison_table(results)
    assert table.count("\n") == 5 and "| icrm | 5 | 0.100 | 0.300 | 0.300 |" in table and "n/a" in table
    path = plot_accuracy_curves(results, tmp_path / "curves.png")
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# Smoke runs of the recipe scripts (tiny models)
@pytest.fixture(scope="module")
def preferences_dir(tiny_causal_lm, tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("math-preferences")
    dataset = run_recipe(
        "build_math_preferences",
        "--model_name_or_path", tiny_causal_lm,
        "--output_dir", str(output_dir),
        "--num_problems", "12",
        "--num_samples", "2",
        "--max_new_tokens", "8",
    )  # fmt: skip
    assert len(dataset) > 0
    return output_dir


def test_build_math_preferences_smoke(preferences_dir):
    from trl_icrm.data.math_preferences import load_preferences

    pairs = load_preferences(preferences_dir)
    assert {"prompt", "chosen", "rejected", "group", "question", "solution", "chosen_source"} <= set(
        pairs.column_names
    )
    assert len(set(pairs["group"])) > 1
    summary = json.loads((preferences_dir / "summary.json").read_text())
    assert summary["num_problems"] == 12 and summary["num_pairs"] == len(pairs)
    verifier = MathVerifyReward()
    assert verifier(completions=pairs["chosen"], solution=pairs["solution"]) == [1.0] * len(pairs)
    assert verifier(completions=pairs["rejected"], solution=pairs["solution"]) == [0.0] * len(pairs)


TRAIN_ARGS = ["--max_steps", "2", "--per_device_train_batch_size", "4", "--max_length", "512", "--use_cpu", "True"]


@pytest.fixture(scope="module")
def icrm_model_dir(tiny_causal_lm, preferences_dir, tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("math-icrm")
    results = run_recipe(
        "train_reward_model",
        "--method", "icrm",
        "--model_name_or_path", tiny_causal_lm,
        "--dataset_name", str(preferences_dir),
        "--output_dir", str(output_dir),
        "--eval_fraction", "0.25",
        *TRAIN_ARGS,
    )  # fmt: skip
    assert results["method"] == "icrm" and "0 demonstrations" in results["eval"]
    return output_dir


@pytest.fixture(scope="module")
def bt_model_dir(tiny_causal_lm, preferences_dir, tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("math-bt")
    results = run_recipe(
        "train_reward_model",
        "--method", "bt",
        "--model_name_or_path", tiny_causal_lm,
        "--dataset_name", str(preferences_dir),
        "--output_dir", str(output_dir),
        "--eval_fraction", "0.25",
        *TRAIN_ARGS,
    )  # fmt: skip
    assert results["method"] == "bt" and "eval_accuracy" in results["eval"]["bt"]
    return output_dir


def test_train_reward_model_smoke(icrm_model_dir, bt_model_dir):
    from transformers import AutoConfig

    from trl_icrm.icrm.modeling import load_icrm_model

    assert (icrm_model_dir / "adapter_config.json").is_file()  # LoRA by default
    model, _ = load_icrm_model(icrm_model_dir)
    assert model.config.num_labels == 2
    assert AutoConfig.from_pretrained(bt_model_dir).num_labels == 1  # merged: a plain one-output classifier
    for folder in (icrm_model_dir, bt_model_dir):
        assert json.loads((folder / "reward_model_metrics.json").read_text())["log_history"]


def test_train_reward_model_vrm_smoke(tiny_causal_lm, preferences_dir, tmp_path):
    from trl_icrm import VRMReward, load_reward, reward_model_kind
    from trl_icrm.data.math_preferences import load_preferences

    results = run_recipe(
        "train_reward_model",
        "--method", "vrm",
        "--model_name_or_path", tiny_causal_lm,
        "--dataset_name", str(preferences_dir),
        "--output_dir", str(tmp_path / "vrm"),
        "--eval_fraction", "0.25",
        "--num_objectives", "8",
        "--supervision_loss", "hinge",
        *TRAIN_ARGS,
    )  # fmt: skip
    assert results["method"] == "vrm" and "eval_accuracy" in results["eval"]["vrm"]
    assert (tmp_path / "vrm" / "adapter_config.json").is_file() and reward_model_kind(tmp_path / "vrm") == "vrm"
    reward = load_reward(tmp_path / "vrm", penalty="lcb")
    assert isinstance(reward, VRMReward) and reward.settings.num_objectives == 8
    assert reward.settings.supervision_loss == "hinge"
    pairs = load_preferences(preferences_dir).select(range(2))
    assert all(math.isfinite(value) for value in reward(prompts=pairs["prompt"], completions=pairs["chosen"]))


def test_grpo_reward_auto_reads_the_kind_and_a_bt_model_has_no_uncertainty_penalty(icrm_model_dir, bt_model_dir):
    from trl_icrm.scripts.grpo import GRPOScriptArguments, build_reward_funcs, reward_kind

    for folder, kind in ((icrm_model_dir, "icrm"), (bt_model_dir, "bt")):
        assert reward_kind(GRPOScriptArguments(reward="auto", reward_model_name_or_path=str(folder))) == kind
    assert reward_kind(GRPOScriptArguments()) == "verifier"
    args = GRPOScriptArguments(reward="auto", reward_model_name_or_path=str(bt_model_dir), penalty="lcb")
    with pytest.raises(ValueError, match="needs a reward model with a variance"):
        build_reward_funcs(args, SimpleNamespace(reward_weights=None, seed=0), Dataset.from_list([{"prompt": "1?"}]))
    with pytest.raises(SystemExit, match="train_reward_model.py"):
        reward_kind(GRPOScriptArguments(reward="auto", reward_model_name_or_path="outputs/no-such-model"))


GRPO_ARGS = [
    "--max_steps", "2",
    "--per_device_train_batch_size", "4",
    "--num_generations", "4",
    "--max_completion_length", "8",
    "--num_train_problems", "8",
    "--num_test_problems", "4",
    "--eval_every", "1",
    "--use_cpu", "True",
    "--disable_tqdm", "True",
]  # fmt: skip


@pytest.mark.parametrize("reward", ["icrm", "bt", "verifier"])
def test_grpo_math_smoke(reward, tiny_causal_lm, preferences_dir, icrm_model_dir, bt_model_dir, tmp_path):
    model = {"icrm": icrm_model_dir, "bt": bt_model_dir, "verifier": None}[reward]
    extra = ["--reward_model_name_or_path", str(model)] if model else []
    results = run_recipe(
        "grpo_math",
        "--reward", reward,
        "--model_name_or_path", tiny_causal_lm,
        "--preferences_path", str(preferences_dir),
        "--output_dir", str(tmp_path),
        "--num_demonstrations", "2",
        *extra,
        *GRPO_ARGS,
    )  # fmt: skip
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["reward"] == reward
    history = written["heldout_accuracy"]["history"]
    assert [h["step"] for h in history] == [0, 1, 2] and all(h["num_problems"] == 4 for h in history)
    logged = {key for entry in written["log_history"] for key in entry}
    name = {"icrm": "icrm", "bt": "bt", "verifier": "math_verify"}[reward]
    assert f"rewards/{name}/mean" in logged and "rewards/math_verify/mean" in logged and "heldout/accuracy" in logged
    if reward == "icrm":
        assert any(entry.get("icrm/num_demonstrations", 0) > 0 for entry in written["log_history"])
    assert (tmp_path / "model.safetensors").is_file()
    assert results["heldout_accuracy"]["before"] == history[0]["accuracy"]


def test_grpo_math_without_reward_model_says_how_to_make_one(tiny_causal_lm, tmp_path):
    with pytest.raises(SystemExit, match="recipes/train_reward_model.py --method icrm"):
        run_recipe(
            "grpo_math", "--reward", "icrm", "--model_name_or_path", tiny_causal_lm, "--output_dir", str(tmp_path)
        )


def test_compare_rewards_report_only(tmp_path):
    for reward, after in (("icrm", 0.5), ("verifier", 0.25)):
        (tmp_path / reward).mkdir()
        result = {
            "heldout_accuracy": {
                "before": 0.0,
                "after": after,
                "history": [{"step": 0, "accuracy": 0.0}, {"step": 2, "accuracy": after}],
            }
        }
        (tmp_path / reward / "results.json").write_text(json.dumps(result))
    run_recipe(
        "compare_rewards", "--rewards", "icrm", "verifier", "--report_only", "True", "--output_dir", str(tmp_path)
    )
    assert "| icrm | 2 | 0.000 | 0.500 | 0.500 |" in (tmp_path / "comparison.md").read_text()
    assert (tmp_path / "comparison.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_rewards_smoke(tiny_causal_lm, preferences_dir, icrm_model_dir, bt_model_dir, tmp_path):
    results = run_recipe(
        "compare_rewards",
        "--icrm_model_name_or_path", str(icrm_model_dir),
        "--bt_model_name_or_path", str(bt_model_dir),
        "--model_name_or_path", tiny_causal_lm,
        "--preferences_path", str(preferences_dir),
        "--output_dir", str(tmp_path),
        "--num_demonstrations", "2",
        *GRPO_ARGS,
    )  # fmt: skip
    assert list(results) == ["icrm", "bt", "verifier"]
    table = (tmp_path / "comparison.md").read_text()
    assert all(f"| {reward} | 2 |" in table for reward in results)
    assert (tmp_path / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    for reward in results:  # equal budgets and seeds: same steps, same held-out problems
        written = json.loads((tmp_path / reward / "results.json").read_text())
        assert [h["step"] for h in written["heldout_accuracy"]["history"]] == [0, 1, 2]
        assert written["num_test_problems"] == 4


def _without_use_cpu(args: list[str]) -> list[str]:
    i = args.index("--use_cpu")
    return args[:i] + args[i + 2 :]


def test_grpo_math_two_process_zero3_cpu(tiny_causal_lm, preferences_dir, icrm_model_dir, tmp_path):
    """`accelerate launch` with DeepSpeed ZeRO-3 on CPU: ddp_backend from `default_ddp_backend()`, held-out accuracy
    over both processes' shares, every rank saving."""
    import os
    import subprocess

    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(ROOT / "recipes" / "accelerate_configs" / "cpu_zero3.yaml"),
        str(ROOT / "recipes" / "grpo_math.py"),
        "--reward", "icrm",
        "--reward_model_name_or_path", str(icrm_model_dir),
        "--preferences_path", str(preferences_dir),
        "--model_name_or_path", tiny_causal_lm,
        "--output_dir", str(tmp_path),
        *_without_use_cpu(GRPO_ARGS),  # use_cpu=True would turn DeepSpeed off
        "--num_test_problems", "5",  # uneven shares of the two processes (3 + 2)
    ]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["world_size"] == 2
    assert [h["num_problems"] for h in written["heldout_accuracy"]["history"]] == [5, 5, 5]
    assert (tmp_path / "model.safetensors").is_file()


def test_load_math_problems_from_a_gsm8k_like_folder(tmp_path):
    for split, rows in (("train", 3), ("test", 2)):
        lines = [
            json.dumps({"question": f"{split} question {i}?", "answer": f"It is {i} + 1.\n#### {i + 1}"})
            for i in range(rows)
        ]
        (tmp_path / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    problems = load_math_problems(dataset_name=str(tmp_path), num_train=2, num_test=5)
    assert len(problems["train"]) == 2 and len(problems["test"]) == 2
    assert problems["test"]["solution"] == ["1", "2"] and set(problems["train"]["group"]) == {"all"}
    assert problems["train"][0]["prompt"][0]["content"].endswith("train question 0?")

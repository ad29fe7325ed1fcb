# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Your own prompts in `grpo`, `bon`, `steer-eval` and `compare-rewards` (TRL's `--dataset_name` and friends): the prompt
shapes of `trl_icrm.data.prompts` (prompts, GSM8K, MATH-500), clear errors on missing columns, and one-step runs of the
commands on tiny jsonl files with tiny random models."""

import gzip
import json

import pytest
from datasets import Dataset

from trl_icrm.cli import main
from trl_icrm.data.prompts import (
    MATH_INSTRUCTION,
    PromptDatasetError,
    load_prompt_splits,
    require_answers,
    to_prompt_dataset,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread_for_module")

CHAT = [{"role": "user", "content": "What is 2 + 3? Answer in \\boxed{}."}]
MATH500_ROWS = [
    {"problem": "Simplify $\\sqrt{117}$.", "solution": "$\\sqrt{117} = 3\\sqrt{13}$.", "answer": "3\\sqrt{13}"},
    {"problem": "Compute $(2-i)(3-2i)$... ", "solution": "It is $4 - 7i$.", "answer": "4 - 7i", "level": 2},
    {"problem": "What is $1 + 1$?", "solution": "Two: $\\boxed{2}$.", "answer": "2"},
]


def write_jsonl(path, rows, compress: bool = False):
    text = "".join(json.dumps(row) + "\n" for row in rows)
    if compress:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return str(path)


# The prompt shapes
def test_standard_and_conversational_prompts_keep_their_columns_and_get_a_solution():
    rows = Dataset.from_list([{"prompt": "1 + 1 =", "answer": "It is 2.\n#### 2", "topic": "sums"}])
    standard = to_prompt_dataset(rows)
    assert standard[0]["prompt"] == "1 + 1 =" and standard[0]["solution"] == "2" and standard[0]["topic"] == "sums"
    chat = to_prompt_dataset(Dataset.from_list([{"messages": CHAT, "gold": "5"}]), "messages", "gold")
    assert chat[0]["prompt"] == CHAT and chat[0]["solution"] == "5" and "messages" not in chat.column_names
    assert "solution" not in to_prompt_dataset(Dataset.from_list([{"prompt": "Say hi."}])).column_names


def test_gsm8k_and_math500_shapes_are_recognized(tmp_path):
    gsm8k = [{"question": "Tom has 2 apples and buys 3. How many?", "answer": "2 + 3 = 5\n#### 5"}]
    train, test = load_prompt_splits(write_jsonl(tmp_path / "gsm8k.jsonl.gz", gsm8k, compress=True))
    assert test is None and train[0]["solution"] == "5" and train[0]["prompt"][0]["content"].endswith("How many?")
    train, _ = load_prompt_splits(write_jsonl(tmp_path / "math.jsonl", MATH500_ROWS))
    assert train["solution"] == ["3\\sqrt{13}", "4 - 7i", "2"]
    assert train[0]["worked_solution"] == MATH500_ROWS[0]["solution"]  # the worked solution is kept, renamed
    assert train[0]["prompt"][0]["content"] == MATH_INSTRUCTION.format(question=MATH500_ROWS[0]["problem"])


def test_missing_columns_are_named_with_the_columns_found():
    with pytest.raises(PromptDatasetError, match=r"No prompt column 'prompt'.*\['query', 'target'\]"):
        to_prompt_dataset(Dataset.from_list([{"query": "q", "target": "t"}]))
    with pytest.raises(PromptDatasetError, match=r"No answer column 'gold'.*\['prompt'\]"):
        to_prompt_dataset(Dataset.from_list([{"prompt": "q"}]), answer_column="gold")
    with pytest.raises(PromptDatasetError, match="must hold prompts"):
        to_prompt_dataset(Dataset.from_list([{"prompt": 3}]))
    with pytest.raises(PromptDatasetError, match=r"The verifier reward .* looked for \['solution', 'answer'\]"):
        require_answers(Dataset.from_list([{"prompt": "q"}]), "The verifier reward")
    with pytest.raises(FileNotFoundError, match="No such data file"):
        load_prompt_splits("./no/such/prompts.jsonl")


# grpo
GRPO_ONE_STEP = [
    "--max_steps", "1",
    "--per_device_train_batch_size", "2",
    "--num_generations", "2",
    "--max_completion_length", "6",
    "--eval_max_new_tokens", "4",
    "--use_cpu", "True",
    "--disable_tqdm", "True",
    "--save_strategy", "no",
]  # fmt: skip


def grpo(tiny_causal_lm, output_dir, *args):
    from trl_icrm.cli import make_command_parser

    module, parser = make_command_parser("grpo")
    argv = ["--model_name_or_path", tiny_causal_lm, "--output_dir", str(output_dir), *GRPO_ONE_STEP, *args]
    return module.main(*parser.parse_args_and_config(argv))


def test_grpo_one_step_on_standard_prompts_with_the_verifier_and_an_answer_column(tiny_causal_lm, tmp_path):
    data = tmp_path / "prompts"
    data.mkdir()
    write_jsonl(data / "train.jsonl", [{"prompt": f"{i} + 1 =", "answer": str(i + 1)} for i in range(4)])
    write_jsonl(data / "test.jsonl", [{"prompt": "5 + 1 =", "answer": "6"}, {"prompt": "7 + 1 =", "answer": "8"}])
    results = grpo(tiny_causal_lm, tmp_path / "run", "--dataset_name", str(data), "--reward", "verifier")
    assert results["num_train_problems"] == 4 and results["num_test_problems"] == 2
    assert [h["num_problems"] for h in results["heldout_accuracy"]["history"]] == [2, 2]
    logged = {key for entry in results["log_history"] for key in entry}
    assert "rewards/math_verify/mean" in logged and "heldout/accuracy" in logged
    assert (tmp_path / "run" / "results.json").is_file()


def test_grpo_one_step_on_conversational_prompts_with_icrm_demonstrations(tiny_causal_lm, random_icrm_dir, tmp_path):
    pair = {"prompt": "What is 1 + 1?", "chosen": "2", "rejected": "3"}
    rows = [{"messages": CHAT, "gold": "5", "demonstrations": [pair]} for _ in range(2)]
    path = write_jsonl(tmp_path / "chat.jsonl", rows)
    args = ["--dataset_name", path, "--prompt_column", "messages", "--answer_column", "gold"]
    results = grpo(
        tiny_causal_lm, tmp_path / "run", *args, "--reward", "icrm", "--reward_model_name_or_path", random_icrm_dir
    )
    assert results["heldout_accuracy"]["before"] is None and "no test split" in results["heldout_accuracy"]["skipped"]
    logged = {key: value for entry in results["log_history"] for key, value in entry.items()}
    assert "rewards/icrm/mean" in logged and "rewards/math_verify/mean" in logged  # the answer column logs accuracy
    assert logged["icrm/num_demonstrations"] == 1  # every prompt steered by its own demonstrations column


def test_grpo_says_which_column_a_reward_lacks(tiny_causal_lm, random_icrm_dir, tmp_path):
    path = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "Say hi.", "topic": "greetings"}] * 2)
    with pytest.raises(SystemExit, match=r"no answer column .*\['prompt', 'topic'\]"):
        grpo(tiny_causal_lm, tmp_path / "run", "--dataset_name", path, "--reward", "verifier")
    icrm = ["--reward", "icrm", "--reward_model_name_or_path", random_icrm_dir]
    with pytest.raises(SystemExit, match=r"'demonstrations' column .* or a 'group' column .*\['prompt', 'topic'\]"):
        grpo(tiny_causal_lm, tmp_path / "run", "--dataset_name", path, *icrm)
    with pytest.raises(SystemExit, match="No prompt column 'question'"):
        grpo(tiny_causal_lm, tmp_path / "run", "--dataset_name", path, "--prompt_column", "question")


def test_grpo_icrm_draws_a_bank_key_columns_demonstrations_from_a_preference_file(random_icrm_dir, tmp_path):
    from trl_icrm.experiments.math_grpo import icrm_demonstrations
    from trl_icrm.scripts.grpo import GRPOScriptArguments

    pairs = [
        {"prompt": f"q{i}", "chosen": "good", "rejected": "bad", "topic": "a" if i < 3 else "b"} for i in range(6)
    ]
    preferences = write_jsonl(tmp_path / "pairs.jsonl", pairs)
    prompts = Dataset.from_list([{"prompt": "q0", "topic": "a"}, {"prompt": "new", "topic": "b"}])
    args = GRPOScriptArguments(preferences_path=preferences, bank_key="topic", num_demonstrations=4)
    steered, column = icrm_demonstrations(args, 0, prompts)
    drawn = steered[column]
    assert column == "demonstrations" and [len(d) for d in drawn] == [2, 3]  # never the prompt's own pair
    assert {d["prompt"] for d in drawn[0]} == {"q1", "q2"} and {d["prompt"] for d in drawn[1]} == {"q3", "q4", "q5"}
    with pytest.raises(PromptDatasetError, match=r"no 'group' column .*\['chosen', 'prompt', 'rejected', 'topic'\]"):
        icrm_demonstrations(
            GRPOScriptArguments(preferences_path=preferences), 0, prompts.rename_column("topic", "group")
        )


# bon
BON_TINY = ["--num_samples", "2", "--max_new_tokens", "4", "--num_bootstrap", "20", "--no_progress_bar"]


def test_bon_on_a_math500_shaped_file(tiny_causal_lm, random_icrm_dir, tmp_path, capsys):
    path = write_jsonl(tmp_path / "math500.jsonl.gz", MATH500_ROWS, compress=True)
    argv = ["bon", "--reward_model_name_or_path", random_icrm_dir, "--model_name_or_path", tiny_causal_lm]
    argv += ["--dataset_name", path, "--num_prompts", "2", "--output_dir", str(tmp_path / "bon"), *BON_TINY]
    assert main(argv) == 0
    samples = [json.loads(line) for line in (tmp_path / "bon" / "best_of_n_samples.jsonl").read_text().splitlines()]
    assert [row["solution"] for row in samples] == ["3\\sqrt{13}", "4 - 7i"]
    assert all(len(row["completions"]) == 2 for row in samples)
    config = json.loads((tmp_path / "bon" / "best_of_n_curves.json").read_text())["config"]
    assert config["num_prompts"] == 2 and config["gold"] == "math_verify"
    assert "zero-shot" in capsys.readouterr().out  # no demonstrations of any kind: said


def test_bon_steers_icrm_by_a_demonstrations_column_or_a_bank(random_icrm_dir, tmp_path):
    from trl_icrm.scripts.bon import BonScriptArguments, icrm_steering, load_proxies

    prompts = Dataset.from_list([{"prompt": "q", "solution": "1", "topic": "a"}])
    bank_rows = [{"prompt": f"p{i}", "chosen": "c", "rejected": "r", "topic": t} for i, t in enumerate("ab")]
    bank = write_jsonl(tmp_path / "bank.jsonl", bank_rows)
    args = BonScriptArguments(demonstration_bank=bank, bank_key="topic", num_demonstrations=3)
    steering = icrm_steering(args, prompts)
    assert steering["bank_key_column"] == "topic" and sorted(steering["demonstration_bank"]) == ["a", "b"]
    (proxy,) = load_proxies([random_icrm_dir], "icrm", steering=steering)
    assert proxy.bank_key_column == "topic" and proxy.num_demonstrations == 3
    with_column = prompts.add_column("demonstrations", [[{"prompt": "p", "chosen": "c", "rejected": "r"}]])
    assert icrm_steering(args, with_column) == {"demonstrations_column": "demonstrations"}
    from trl_icrm.scripts.bon import DemonstrationsError

    with pytest.raises(DemonstrationsError, match=r"'group' column \(--bank_key\).*\['prompt', 'solution', 'topic'\]"):
        icrm_steering(BonScriptArguments(demonstration_bank=bank), prompts)


def test_bon_needs_an_answer_column_for_its_gold_reward(tiny_causal_lm, tmp_path):
    path = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "Say hi."}])
    argv = ["bon", "--reward", "verifier", "--model_name_or_path", tiny_causal_lm, "--dataset_name", path]
    with pytest.raises(SystemExit, match=r"gold reward .* no answer column .*\['prompt'\]"):
        main([*argv, "--output_dir", str(tmp_path / "bon"), *BON_TINY])


# steer-eval and compare-rewards
def test_steer_eval_on_your_own_grouped_pairs(random_icrm_dir, tmp_path):
    pairs = [
        {"prompt": f"Question {i}?", "chosen": good, "rejected": bad, "group": group}
        for i in range(4)
        for group, good, bad in (("short", "Yes.", "Yes, because..."), ("long", "Yes, because...", "Yes."))
    ]
    path = write_jsonl(tmp_path / "pairs.jsonl", pairs)
    argv = ["steer-eval", "--dataset_name", path, "--icrm_model_name_or_path", random_icrm_dir, "--no_bt"]
    argv += ["--conflict", "short", "long", "--ks", "0", "1", "--num_draws", "1", "--ratios", "0", "1", "--mix_k", "1"]
    assert main([*argv, "--output_dir", str(tmp_path / "out")]) == 0
    results = json.loads((tmp_path / "out" / "steerability.json").read_text())
    assert list(results["sets"]) == ["benchmark"]
    with pytest.raises(SystemExit, match=r"no 'group' column"):
        main([*argv[:2], write_jsonl(tmp_path / "ungrouped.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b"}]),
              *argv[3:], "--output_dir", str(tmp_path / "out2")])  # fmt: skip


def test_compare_rewards_takes_the_dataset_arguments(tiny_causal_lm, tmp_path):
    path = write_jsonl(
        tmp_path / "prompts.jsonl", [{"prompt": f"{i} + 1 =", "solution": str(i + 1)} for i in range(2)]
    )
    argv = ["compare-rewards", "--rewards", "verifier", "--dataset_name", path, "--model_name_or_path", tiny_causal_lm]
    assert main([*argv, "--output_dir", str(tmp_path / "compare"), *GRPO_ONE_STEP]) == 0
    written = json.loads((tmp_path / "compare" / "verifier" / "results.json").read_text())
    assert written["num_train_problems"] == 2 and written["script_args"]["dataset_name"] == path

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The `trl-icrm` command line: one dispatcher, one `TrlParser` script per command, `--config` YAML files."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from trl_icrm.cli import COMMANDS, build_parser, main, make_command_parser


ROOT = Path(__file__).resolve().parent.parent
COMMAND_NAMES = [
    "env",
    "train",
    "grpo",
    "bon",
    "steer-eval",
    "build-math-preferences",
    "build-hh-objectives",
    "laplace",
    "compare-rewards",
    "serve",
]
KEY_FLAGS = {
    "env": ["--convert"],
    "build-hh-objectives": ["--dataset_name", "--objectives", "--held_out_objectives", "--held_out_fraction"],
    "train": [
        "--method",
        "--dataset_name",
        "--eval_fraction",
        "--model_name_or_path",
        "--max_demonstrations",
        "--no_merge_lora",
        "--num_objectives",
        "--num_features",
        "--beta_w",
        "--beta_z",
        "--supervision_weight",
        "--supervision_loss",
    ],
    "grpo": [
        "--reward",
        "--reward_model_name_or_path",
        "--penalty",
        "--num_demonstrations",
        "--preferences_path",
        "--model_name_or_path",
        "--num_generations",
    ],
    "bon": [
        "--reward_model_name_or_path",
        "--reward",
        "--demonstrations",
        "--model_name_or_path",
        "--num_samples",
        "--penalties",
        "--ensembles",
        "--no_progress_bar",
    ],
    "steer-eval": [
        "--icrm_model_name_or_path",
        "--bt_model_name_or_path",
        "--model_name_or_path",
        "--batch_twins",
        "--save_steps",
        "--min_demonstrations",
        "--ks",
        "--conflict",
    ],
    "build-math-preferences": ["--model_name_or_path", "--num_problems", "--num_samples", "--output_dir"],
    "laplace": ["--model_name_or_path", "--dataset_name", "--subset", "--hessian_structure", "--evaluate"],
    "compare-rewards": [
        "--rewards",
        "--icrm_model_name_or_path",
        "--bt_model_name_or_path",
        "--report_only",
        "--reward_model_name_or_path",
    ],
    "serve": [
        "--reward_model_name_or_path",
        "--reward",
        "--penalty",
        "--demonstration_bank",
        "--bank_key",
        "--max_batch_size",
        "--max_wait_ms",
        "--max_queue",
    ],
}
OLD_FLAGS = ["--objective", "--base_model", "--reward_kind", "--reward-kind", "--policy_name_or_path", "--icrm_model "]


def _subprocess(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _help_and_heavy_imports(argv: list[str]) -> tuple[str, list[str]]:
    """(printed help, heavy modules imported) of `trl_icrm.cli.main(argv)` in a fresh interpreter."""
    code = (
        "import json, sys\n"
        "from trl_icrm.cli import main\n"
        "try:\n"
        f"    assert main({argv!r}) == 0\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "print(json.dumps(sorted(m for m in ('torch', 'transformers', 'trl', 'datasets') if m in sys.modules)))\n"
    )
    result = _subprocess("-c", code)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.rsplit("\n", 2)[0], json.loads(result.stdout.splitlines()[-1])


def test_top_level_help_lists_every_command_without_importing_torch_or_transformers():
    assert [command.name for command in COMMANDS] == COMMAND_NAMES
    help_text, imported = _help_and_heavy_imports(["--help"])
    assert imported == []
    for command in COMMANDS:
        assert re.search(rf"^\s+{re.escape(command.name)}\b", help_text, re.MULTILINE), command.name
        assert command.help.split()[0] in help_text


def test_command_help_is_the_stored_text_and_imports_nothing_heavy():
    help_text, imported = _help_and_heavy_imports(["train", "--help"])
    assert imported == []
    assert "--dataset_name" in help_text and "--help_all" in help_text


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_stored_help_matches_the_live_parser(name):
    from trl_icrm.cli import live_help, stored_help

    assert stored_help(name) == live_help(name), (
        f"The stored --help of {name!r} is stale: rewrite them with `python -m trl_icrm.cli --write_help`."
    )


def test_dispatcher_without_a_command_prints_help_and_rejects_unknown_arguments(capsys):
    assert main([]) == 0
    assert "compare-rewards" in capsys.readouterr().out
    with pytest.raises(SystemExit) as error:
        main(["--not-a-flag"])
    assert error.value.code == 2
    with pytest.raises(SystemExit):
        main(["no-such-command"])
    placeholders = build_parser()._subparsers._group_actions[0].choices
    assert set(placeholders) == set(COMMAND_NAMES) and all(not p.add_help for p in placeholders.values())


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_every_command_parser_builds_with_help_and_defaults(name):
    from trl import TrlParser

    module, parser = make_command_parser(name)
    assert isinstance(parser, TrlParser) and parser.prog == f"trl-icrm {name}"
    assert callable(module.main) and module.__name__ == f"trl_icrm.scripts.{name.replace('-', '_')}"
    help_text = parser.format_help()
    for flag in KEY_FLAGS[name]:
        assert flag in help_text, flag
    for flag in OLD_FLAGS:  # the whole flag: `--objective` is gone, `--objectives` of build-hh-objectives is not it
        assert not re.search(rf"{re.escape(flag)}(?![\w-])", help_text), flag
    assert not re.search(r"--model(?=[\s,\]])", help_text)  # the policy/backbone is --model_name_or_path
    # Every option of trl-icrm's own dataclasses has a help text, and the help shows every default.
    own_fields = {
        field
        for dataclass_type in parser.dataclass_types
        if dataclass_type.__module__.startswith("trl_icrm.")
        for field in dataclass_type.__dataclass_fields__
    }
    own_actions = [a for a in parser._actions if a.dest in own_fields]
    assert len({a.dest for a in own_actions}) == len(own_fields)
    assert all(action.help for action in own_actions)
    assert help_text.count("(default:") >= len([a for a in parser._actions if a.help and a.dest != "help"])


def test_script_parsers_also_register_as_subparsers():
    from trl import TrlParser

    subparsers = TrlParser(prog="trl-icrm").add_subparsers(dest="command")
    for command in COMMANDS:
        module, _ = make_command_parser(command.name)
        parser = module.make_parser(subparsers)
        assert isinstance(parser, TrlParser) and parser.prog.endswith(command.name)


GRPO_CONFIGS = {
    "config_verifier.yaml": ("verifier", None, "outputs/grpo-math"),
    "config_icrm.yaml": ("icrm", "outputs/math-icrm", "outputs/grpo-math-icrm"),
    "config_bt.yaml": ("bt", "outputs/math-bt", "outputs/grpo-math-bt"),
}


@pytest.mark.parametrize("config", sorted(GRPO_CONFIGS))
def test_grpo_config_files_parse_into_the_dataclasses(config):
    from trl import GRPOConfig, ModelConfig

    from trl_icrm.scripts.grpo import GRPOScriptArguments

    path = ROOT / "recipes" / "smollm2-135m" / "grpo" / config
    _, parser = make_command_parser("grpo")
    script_args, training_args, model_args = parser.parse_args_and_config(["--config", str(path), "--max_steps", "3"])
    assert isinstance(script_args, GRPOScriptArguments) and isinstance(training_args, GRPOConfig)
    assert isinstance(model_args, ModelConfig) and model_args.model_name_or_path == "embedded:SmolLM2-135M-Instruct"
    reward, reward_model, output_dir = GRPO_CONFIGS[config]
    assert (script_args.reward, script_args.reward_model_name_or_path) == (reward, reward_model)
    assert training_args.output_dir == output_dir and training_args.learning_rate == 5e-6
    assert training_args.max_steps == 3  # the command line overrides the file
    assert training_args.num_generations == 4 and training_args.max_completion_length == 96
    assert script_args.difficulties == [1] and training_args.save_strategy == "no"
    # The file holds the command's own defaults: without it, the same run.
    defaults = make_command_parser("grpo")[1].parse_args_and_config(["--reward", reward, "--max_steps", "3"])[1]
    assert (
        defaults.learning_rate == training_args.learning_rate and defaults.logging_steps == training_args.logging_steps
    )


@pytest.mark.parametrize("method", ["icrm", "bt", "vrm"])
def test_reward_config_files_parse_into_the_dataclasses(method):
    from trl_icrm import ICRMConfig

    path = ROOT / "recipes" / "smollm2-135m" / "reward" / f"config_{method}.yaml"
    script_args, training_args, model_args, vrm_args = make_command_parser("train")[1].parse_args_and_config(
        ["--config", str(path)]
    )
    assert script_args.method == method and isinstance(training_args, ICRMConfig)
    assert training_args.output_dir == f"outputs/math-{method}" and training_args.learning_rate == 5e-4
    assert model_args.use_peft and model_args.lora_r == 16 and "gate_proj" in model_args.lora_target_modules
    assert model_args.lora_task_type == "SEQ_CLS" and training_args.max_length == 1024
    if method == "vrm":
        assert (vrm_args.num_objectives, vrm_args.num_features, vrm_args.supervision_loss) == (32, 4, "bt")
        assert (vrm_args.beta_w, vrm_args.beta_z, vrm_args.supervision_weight) == (0.1, 0.1, 1.0)


def test_train_vrm_flags_build_a_checked_vrm_config():
    from trl_icrm import VRMConfig, bt_config_from

    argv = ["--method", "vrm", "--num_objectives", "8", "--supervision_loss", "hinge", "--max_steps", "7"]
    _, training_args, _, vrm_args = make_command_parser("train")[1].parse_args_and_config(argv)
    config = bt_config_from(training_args, VRMConfig, **vars(vrm_args))
    assert isinstance(config, VRMConfig) and config.max_steps == 7
    assert (config.num_objectives, config.supervision_loss) == (8, "hinge")
    with pytest.raises(SystemExit):
        make_command_parser("train")[1].parse_args_and_config(["--supervision_loss", "mse"])
    with pytest.raises(ValueError, match="num_features \\(d\\) must be >= 1"):
        bt_config_from(training_args, VRMConfig, **{**vars(vrm_args), "num_features": 0})


def test_readme_steer_eval_command_parses_with_its_flags():
    argv = "--output_dir outputs/steerability-twins --max_steps 360 --learning_rate 5e-4 --min_demonstrations 1"
    argv += " --max_demonstrations 4 --batch_twins --save_steps 40"
    script_args, training_args = make_command_parser("steer-eval")[1].parse_args_and_config(argv.split())
    assert script_args.output_dir == "outputs/steerability-twins"
    assert (training_args.max_steps, training_args.learning_rate, training_args.save_steps) == (360, 5e-4, 40)
    assert (training_args.min_demonstrations, training_args.max_demonstrations) == (1, 4)
    assert training_args.batch_twins is True
    no_twins = make_command_parser("steer-eval")[1].parse_args_and_config(["--no_batch_twins"])[1]
    assert no_twins.batch_twins is False


def test_steer_eval_on_a_benchmark_needs_trained_models(tmp_path):
    benchmark = ROOT / "tests" / "fixtures" / "benchmarks" / "pku_saferlhf.jsonl"
    argv = ["steer-eval", "--benchmark", "pku_saferlhf", "--dataset_name", str(benchmark)]
    with pytest.raises(SystemExit, match="--icrm_model_name_or_path"):
        main([*argv, "--output_dir", str(tmp_path)])
    with pytest.warns(FutureWarning, match="--benchmark_path is deprecated"), pytest.raises(SystemExit):
        main(
            [
                "steer-eval",
                "--benchmark",
                "pku_saferlhf",
                "--benchmark_path",
                str(benchmark),
                "--output_dir",
                str(tmp_path),
            ]
        )
    with pytest.raises(SystemExit, match="--conflict takes two groups"):
        main([*argv, "--output_dir", str(tmp_path), "--conflict", "a", "b", "c"])


def test_env_command_runs():
    result = _subprocess("-m", "trl_icrm.cli", "env")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "- trl:" in result.stdout and "- Device:" in result.stdout and "- Default model name:" in result.stdout


def _load_example(name: str):
    module_name = f"example_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, ROOT / "examples" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def test_examples_are_trl_parser_scripts_and_never_overwrite_the_shipped_data():
    from trl_icrm import ICRMConfig
    from trl_icrm.data.steerable import bundled_responses_path

    (args,) = _load_example("build_steerable_dataset").make_parser().parse_args_and_config([])
    assert args.output_file == "outputs/steerable/responses.jsonl"
    assert Path(args.output_file).resolve() != Path(bundled_responses_path()).resolve()
    script_args, training_args, _ = _load_example("train_icrm").make_parser().parse_args_and_config(["--compare_bt"])
    assert script_args.compare_bt and isinstance(training_args, ICRMConfig) and training_args.max_length == 512
    script_args, training_args, _ = _load_example("grpo_icrm_reward").make_parser().parse_args_and_config([])
    assert script_args.reward_model_name_or_path == "outputs/icrm-concise-vs-detailed" and training_args.max_steps == 3


def test_one_argument_style():
    """Only the dispatcher builds an argparse parser; recipes launch the commands' code; duplicated examples are gone.
    (The layering of the package is checked in test_layout.py.)"""
    for path in sorted((ROOT / "trl_icrm").rglob("*.py")):
        if path.name != "cli.py":
            text = path.read_text()
            assert "ArgumentParser(" not in text and "add_argument(" not in text, path
    for path in sorted((ROOT / "recipes").glob("*.py")) + sorted((ROOT / "examples").glob("*.py")):
        text = path.read_text()
        assert "sys.path.insert" not in text and "ArgumentParser(" not in text and "add_argument(" not in text, path
    for path in sorted((ROOT / "recipes").glob("*.py")):
        assert "from trl_icrm.scripts." in path.read_text(), path.name
    assert not (ROOT / "examples" / "best_of_n.py").exists() and not (ROOT / "examples" / "steerability.py").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bon", "--num_samples", "0"], "num_samples must be >= 1"),
        (["bon", "--temperature", "0"], "temperature must be > 0"),
        (["bon", "--penalties", "lcbx:1"], "Unknown penalties or ensembles"),
        (["bon", "--reward_model_name_or_path", "/no/such/model"], "neither a local model folder"),
        (["laplace", "--subset", "everything"], "invalid choice"),
        (["laplace", "--prior_precision", "0"], "prior_precision must be > 0"),
        (
            ["laplace", "--model_name_or_path", "/no/such/model", "--dataset_name", "/no/such/pairs"],
            "No such data file or folder",
        ),
    ],
)
def test_bad_values_are_usage_errors_not_tracebacks(argv, message, capsys):
    from trl_icrm.cli import main

    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code in (1, 2)
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bon_demonstrations_as_json_text_or_file(tmp_path):
    from trl_icrm.scripts.bon import DemonstrationsError, read_demonstrations

    pairs = [{"prompt": "p", "chosen": "a", "rejected": "b"}]
    assert read_demonstrations(json.dumps(pairs)) == pairs
    (tmp_path / "demos.json").write_text(json.dumps(pairs))
    assert read_demonstrations(str(tmp_path / "demos.json")) == pairs
    with pytest.raises(DemonstrationsError, match="missing key 'chosen'"):
        read_demonstrations('[{"prompt": "p"}]')
    with pytest.raises(DemonstrationsError, match="no file"):
        read_demonstrations(str(tmp_path / "missing.json"))


def test_model_arguments_reach_the_trainer(tiny_causal_lm, tmp_path):
    import torch
    from trl import ModelConfig

    from trl_icrm import ICRMConfig, ICRMRewardTrainer
    from trl_icrm.scripts._model_args import apply_model_args
    from trl_icrm.utils.testing import conflicting_pairs

    args = ICRMConfig(output_dir=str(tmp_path), report_to=[], use_cpu=True, model_init_kwargs={"revision": "main"})
    apply_model_args(ModelConfig(dtype="bfloat16", attn_implementation="eager"), args)
    assert args.model_init_kwargs == {
        "revision": "main",
        "trust_remote_code": False,
        "attn_implementation": "eager",
        "dtype": "bfloat16",
    }
    trainer = ICRMRewardTrainer(tiny_causal_lm, args=args, train_dataset=conflicting_pairs(2, 0))
    assert next(trainer.model.parameters()).dtype == torch.bfloat16
    assert trainer.model.config._attn_implementation == "eager"


def test_compare_rewards_resumes_each_run_or_refuses_one_path(tmp_path):
    from trl_icrm.scripts.compare_rewards import _last_checkpoint, _resume_each_run

    assert _resume_each_run(None) is False and _resume_each_run("True") is True
    with pytest.raises(SystemExit, match="resume each from its own last checkpoint"):
        _resume_each_run(str(tmp_path / "checkpoint-10"))
    (tmp_path / "icrm" / "checkpoint-2").mkdir(parents=True)
    (tmp_path / "icrm" / "checkpoint-10").mkdir()
    assert _last_checkpoint(str(tmp_path / "icrm")).endswith("checkpoint-10")
    assert _last_checkpoint(str(tmp_path / "bt")) is None


def test_steer_eval_checks_given_models_before_training(tmp_path, random_icrm_dir):
    from trl_icrm.cli import main

    with pytest.raises(SystemExit) as exit:
        main(["steer-eval", "--icrm_model_name_or_path", str(tmp_path / "typo"), "--output_dir", str(tmp_path)])
    assert exit.value.code == 1 and not (tmp_path / "bt").exists()  # no BT training started
    with pytest.raises(SystemExit, match="is a 'icrm' reward model, not the 'bt' model expected"):
        main(["steer-eval", "--bt_model_name_or_path", random_icrm_dir, "--icrm_model_name_or_path", random_icrm_dir])


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_every_command_help_exits_zero_and_hides_the_inherited_training_options(name, capsys, monkeypatch):
    from trl_icrm.cli import HELP_ALL, HELP_COLUMNS

    monkeypatch.setenv("COLUMNS", HELP_COLUMNS)  # the width of the stored `--help` texts

    assert main([name, "--help"]) == 0
    short = capsys.readouterr().out
    assert main([name, HELP_ALL]) == 0
    full = capsys.readouterr().out
    assert f"usage: trl-icrm {name}" in short and f"usage: trl-icrm {name}" in full
    if "--logging_nan_inf_filter" in full:  # a command with transformers.TrainingArguments
        assert "--logging_nan_inf_filter" not in short and HELP_ALL in short
        assert "--output_dir" in short and "--learning_rate" in short and len(short) < len(full)
    else:
        assert short.strip() == full.strip()

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Bad input fails once, early, with an error naming the field, the row and the fix."""

import pytest
from datasets import Dataset

from trl_icrm import ICRMConfig, ICRMReward, ICRMRewardTrainer, SequenceClassifierReward, load_reward
from trl_icrm.demonstrations import DemonstrationTemplate
from trl_icrm.utils.testing import conflicting_pairs

from conftest import training_args as _args


def _pairs(**overrides):
    rows = conflicting_pairs(2, 0).to_list()
    rows[1] = {**rows[1], **overrides}
    return Dataset.from_list(rows)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("ece_bins", 0, "ece_bins must be >= 1"),
        ("confidence_eps", 1e-9, "confidence_eps must be >= 1e-6"),
        ("demonstration_template", {"demonstration": "{promt}"}, "unknown placeholder"),
        ("demonstration_template", {"headr": "x"}, "Unknown demonstration template fields"),
        ("min_demonstrations", 3, "min_demonstrations <= max_demonstrations"),
    ],
)
def test_config_rejects_out_of_range_values(tmp_path, field, value, message):
    with pytest.raises(ValueError, match=message):
        ICRMConfig(**_args(tmp_path), max_demonstrations=2, **{field: value})


def test_asymmetric_prior_warns(tmp_path, caplog):
    ICRMConfig(**_args(tmp_path), prior_alpha=2.0, prior_beta=1.0)
    assert "asymmetric Beta prior" in caplog.text


def test_template_placeholders_are_checked():
    DemonstrationTemplate.from_dict({"demonstration": "{prompt} | {chosen} | {rejected}", "header": "{literal}"})
    with pytest.raises(ValueError, match="'message' uses unknown placeholder"):
        DemonstrationTemplate.from_dict({"message": "{speaker}: {content}"})


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        (Dataset.from_dict({"prompt": [], "chosen": [], "rejected": [], "group": []}), "train dataset is empty"),
        (_pairs(chosen=None), r"Row 1 of the train dataset: 'chosen' must be a string"),
        (_pairs(group=None), r"Row 1 of the train dataset has no group"),
    ],
)
def test_trainer_names_the_bad_row(tiny_causal_lm, tmp_path, dataset, message):
    with pytest.raises(ValueError, match=message):
        ICRMRewardTrainer(tiny_causal_lm, args=ICRMConfig(**_args(tmp_path)), train_dataset=dataset)


def test_string_labels_and_ties(tiny_causal_lm, tmp_path, caplog):
    rows = conflicting_pairs(2, 0).to_list()
    labelled = Dataset.from_list([{**row, "label": "yes"} for row in rows])
    with pytest.raises(ValueError, match="label column 'label' must hold numbers"):
        ICRMRewardTrainer(tiny_causal_lm, args=ICRMConfig(**_args(tmp_path)), train_dataset=labelled)
    tied = Dataset.from_list([{**rows[0], "rejected": rows[0]["chosen"]}, *rows[1:]])
    ICRMRewardTrainer(tiny_causal_lm, args=ICRMConfig(**_args(tmp_path)), train_dataset=tied)
    assert "1 pair(s) of the train dataset have chosen == rejected" in caplog.text


def test_reward_calls_are_checked(random_icrm_dir):
    reward = ICRMReward(random_icrm_dir, allow_zero_shot=True)
    with pytest.raises(ValueError, match="got 1 prompts for 2 completions"):
        reward(["a"], ["x", "y"])
    with pytest.raises(ValueError, match="column 'demonstrations' must hold one value per completion"):
        reward(["a", "b"], ["x", "y"], demonstrations=[[]])
    with pytest.raises(ValueError, match="the batch is empty"):
        reward([], [])
    with pytest.raises(TypeError, match="needs a conversational prompt"):
        reward(["a"], [[{"role": "assistant", "content": "x"}]])
    with pytest.raises(TypeError, match="must be a string or a list of chat messages, got NoneType"):
        reward(["a"], [None])


def test_missing_models_and_wrong_kinds(tiny_causal_lm, tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a local model folder nor a model on the hub"):
        load_reward(str(tmp_path / "no" / "such" / "model"))
    with pytest.raises(FileNotFoundError, match="neither a local model folder"):
        ICRMReward(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="is a causal language model, not a reward model"):
        SequenceClassifierReward(tiny_causal_lm)


def test_quantization_config_reaches_the_loader(tiny_causal_lm, tmp_path, monkeypatch):
    import trl_icrm.trainer.icrm_trainer as trainer_module

    seen = {}
    real = trainer_module.load_icrm_model

    def spy(*args, **kwargs):
        seen.update(kwargs)
        kwargs.pop("quantization_config", None)  # no bitsandbytes on a CPU: check what would reach from_pretrained
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "load_icrm_model", spy)
    marker = object()
    data = conflicting_pairs(2, 0)
    ICRMRewardTrainer(tiny_causal_lm, ICRMConfig(**_args(tmp_path)), train_dataset=data, quantization_config=marker)
    assert seen["quantization_config"] is marker
    both = ICRMConfig(**_args(tmp_path), model_init_kwargs={"quantization_config": marker})
    with pytest.raises(ValueError, match="both as a trainer argument and in `args.model_init_kwargs`"):
        ICRMRewardTrainer(tiny_causal_lm, both, train_dataset=data, quantization_config=marker)


def test_a_mistyped_local_path_never_asks_the_hub(tmp_path, monkeypatch):
    import huggingface_hub

    def no_network(*args, **kwargs):
        raise AssertionError("the hub was asked")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    monkeypatch.setattr("transformers.utils.hub.hf_hub_download", no_network, raising=False)
    (tmp_path / "runs" / "bt1").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    for path in ("runs/bt2", "./bt1", str(tmp_path / "runs" / "bt3"), "runs/bt1/extra/"):
        with pytest.raises(FileNotFoundError, match="No such folder"):
            load_reward(path)


def test_a_damaged_icrm_config_is_refused(random_icrm_dir, tmp_path):
    import json
    import shutil

    folder = tmp_path / "damaged"
    shutil.copytree(random_icrm_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "icrm": []}))
    with pytest.raises(ValueError, match="`icrm` settings of this model config are not an object"):
        ICRMReward(str(folder))


def test_lone_surrogates_are_refused_naming_the_field():
    from trl_icrm.serving.config import ServingConfig
    from trl_icrm.serving.protocol import DemonstrationPolicy, RequestError, parse_get_reward, parse_score

    demos = [{"prompt": "p", "chosen": "a\ud800", "rejected": "b"}]
    with pytest.raises(RequestError, match=r"labels\[0\]\[0\]\.chosen: not valid Unicode"):
        parse_get_reward(
            {"query": ["q a"], "prompts": ["q"], "labels": [demos]}, ServingConfig(), DemonstrationPolicy()
        )
    with pytest.raises(RequestError, match=r"items\[0\]\.completion: not valid Unicode"):
        parse_score({"items": [{"prompt": "q", "completion": "\udc80"}]}, ServingConfig(), DemonstrationPolicy())


def test_an_empty_data_file_is_a_clear_error(tmp_path):
    from trl_icrm.data.loading import load_split

    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(ValueError, match="holds no rows"):
        load_split(str(tmp_path / "empty.jsonl"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([{"prompt": "p", "chosen": "a", "rejected": "b", "group": None}], "'group' is null"),
        (
            [{"prompt": "p", "chosen": "a", "rejected": "b", "group": g} for g in (1, "1")],
            "would be the same bank key",
        ),
        ({"A": []}, "no demonstrations"),
    ],
)
def test_bad_demonstration_banks(data, message):
    from trl_icrm.serving.protocol import bank_from_json

    with pytest.raises(ValueError, match=message):
        bank_from_json(data)


def test_the_cli_reports_a_non_reward_model_without_a_traceback(tiny_causal_lm, tmp_path, capsys, monkeypatch):
    import trl_icrm.scripts.laplace
    from trl_icrm.cli import main

    monkeypatch.setattr(trl_icrm.scripts.laplace, "load_pairs", lambda args: (conflicting_pairs(2, 0), None))
    with pytest.raises(SystemExit) as exit_info:
        main(["laplace", "--model_name_or_path", tiny_causal_lm])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "error:" in err and "not a Bradley-Terry reward model" in err and "Traceback" not in err

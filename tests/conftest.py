# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
import os

import pytest


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def default_model_dir() -> str:
    """The converted embedded model (converted once per cache folder, reused by every later session)."""
    from trl_icrm import default_model_path

    return default_model_path()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, default_model_dir) -> dict[str, str]:
    """Folders of a tiny random causal LM and a tiny random 2-label sequence classifier with the embedded tokenizer."""
    from trl_icrm.testing import save_random_models

    return save_random_models(tmp_path_factory.mktemp("tiny-models"), default_model_dir)


@pytest.fixture(scope="session")
def tiny_causal_lm(tiny_models) -> str:
    return tiny_models["causal_lm"]


@pytest.fixture(scope="session")
def tiny_sequence_classifier(tiny_models) -> str:
    return tiny_models["sequence_classifier"]

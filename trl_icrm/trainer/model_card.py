# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The model cards reward models are saved with: what the model is, and how to score with it (ICRM, VRM)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


ICRM_CITATION = """@article{icrm2026,
  title   = {Bayesian Preference Learning for Test-Time Steerable Reward Models},
  journal = {arXiv preprint arXiv:2602.08819},
  year    = {2026}
}"""


def icrm_model_card(
    model_name: str,
    base_model: str | None,
    settings: Mapping[str, Any],
    min_demonstrations: int,
    max_demonstrations: int,
    max_length: int | None,
    tags: Sequence[str] = (),
    dataset_name: str | None = None,
) -> str:
    """The README (YAML card data + markdown) of a saved ICRM reward model."""
    header = _card_header(base_model, tags, dataset_name)
    trained_from = f"from `{base_model}`" if base_model else "from a causal-LM backbone"
    data = f" on `{dataset_name}`" if dataset_name else ""
    return f"""---
{header}
---

# {model_name}

An ICRM reward model (variational in-context reward model), trained {trained_from}{data} with trl-icrm's
`ICRMRewardTrainer` (on `trl.RewardTrainer`). It has two outputs: a reward r and a confidence; a pair's preference is a
Beta posterior with mean sigmoid(r_a - r_b). It is steered at test time by preference demonstrations placed in its
context: it was trained with {min_demonstrations} to {max_demonstrations} demonstrations of the pair's own group per
pair, and scores zero-shot without them. It is not a `transformers` pipeline model: score it with trl-icrm.

## Scoring

```python
from trl_icrm import ICRMReward

reward = ICRMReward("{model_name}")  # penalty="lcb" for mean - k std of the posterior
demonstrations = [{{"prompt": "...", "chosen": "...", "rejected": "..."}}]
reward(prompts=["..."], completions=["..."], demonstrations=[demonstrations])  # one float per completion
posterior = reward.score(["..."], ["..."], demonstrations=[demonstrations])  # .reward, .mean, .variance
```

As a reward of TRL's `GRPOTrainer` / `RLOOTrainer`, pass `reward` in `reward_funcs`; each dataset row carries its own
`demonstrations`.

## Settings

- ICRM settings (saved in `config.icrm`): `{json.dumps(dict(settings), sort_keys=True)}`
- Demonstrations per pair in training: {min_demonstrations} to {max_demonstrations}; `max_length`: {max_length}

## Citation

```bibtex
{ICRM_CITATION}
```
"""


VRM_CITATION = """@article{vrm2026,
  title   = {VRM: Teaching Reward Models to Understand Authentic Human Preferences},
  author  = {Liu, Biao and Xu, Ning and Yang, Junming and Xu, Hao and Geng, Xin},
  journal = {arXiv preprint arXiv:2603.04974},
  year    = {2026}
}"""


def _card_header(base_model: str | None, tags: Sequence[str], dataset_name: str | None) -> str:
    """The card's YAML data; the base model by its hub id (the embedded default model by the id of its weights)."""
    from ..utils.default_model import hub_model_id

    card_data = {"library_name": "transformers", "tags": sorted(set(tags) | {"trl", "trl-icrm", "reward-model"})}
    if base_model:
        card_data["base_model"] = hub_model_id(base_model)
    if dataset_name:
        card_data["datasets"] = [dataset_name]
    return "\n".join(f"{key}: {json.dumps(value)}" for key, value in card_data.items())


def vrm_model_card(
    model_name: str,
    base_model: str | None,
    settings: Mapping[str, Any],
    tags: Sequence[str] = (),
    dataset_name: str | None = None,
) -> str:
    """The README (YAML card data + markdown) of a saved VRM reward model."""
    trained_from = f"from `{base_model}`" if base_model else "from a causal-LM backbone"
    data = f" on `{dataset_name}`" if dataset_name else ""
    return f"""---
{_card_header(base_model, tags, dataset_name)}
---

# {model_name}

A VRM reward model (variational reward modeling), trained {trained_from}{data} with trl-icrm's `VRMRewardTrainer`
(on `trl.RewardTrainer`). The prompt sets a Dirichlet posterior over objective weights w, each response a Normal
posterior over a few semantic features z, and the reward is r = w^T (G z + b). It is not a `transformers` pipeline
model: score it with trl-icrm.

## Scoring

```python
from trl_icrm import load_reward

reward = load_reward("{model_name}")  # a VRMReward; penalty="lcb" for mean - k std of the posterior
reward(prompts=["..."], completions=["..."])  # one float per completion
posterior = reward.score(["..."], ["..."])  # .reward, .mean, .variance
```

## Settings

- VRM settings (saved in `config.vrm`): `{json.dumps(dict(settings), sort_keys=True)}`

## Citation

```bibtex
{VRM_CITATION}
```
"""


__all__ = ["ICRM_CITATION", "VRM_CITATION", "icrm_model_card", "vrm_model_card"]

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Training: `ICRMConfig` / `ICRMRewardTrainer` and `VRMConfig` / `VRMRewardTrainer` (on `trl.RewardTrainer`, sharing
`trainer.base`), and the helpers of the BT baseline."""

from .bt import bt_config_from, save_reward_model
from .icrm_config import ICRMConfig, bf16_available
from .icrm_trainer import DataCollatorForICRM, DemonstrationPool, ICRMRewardTrainer, UnitShuffleSampler
from .vrm_config import VRMConfig
from .vrm_trainer import DataCollatorForVRM, VRMRewardTrainer


__all__ = [
    "DataCollatorForICRM",
    "DataCollatorForVRM",
    "DemonstrationPool",
    "ICRMConfig",
    "ICRMRewardTrainer",
    "UnitShuffleSampler",
    "VRMConfig",
    "VRMRewardTrainer",
    "bf16_available",
    "bt_config_from",
    "save_reward_model",
]

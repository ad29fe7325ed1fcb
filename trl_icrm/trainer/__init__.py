# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Training: `ICRMConfig` / `ICRMRewardTrainer` (on `trl.RewardTrainer`), and the helpers of the BT baseline."""

from .bt import bt_config_from, save_reward_model
from .icrm_config import ICRMConfig, bf16_available
from .icrm_trainer import DataCollatorForICRM, DemonstrationPool, ICRMRewardTrainer, UnitShuffleSampler


__all__ = [
    "DataCollatorForICRM",
    "DemonstrationPool",
    "ICRMConfig",
    "ICRMRewardTrainer",
    "UnitShuffleSampler",
    "bf16_available",
    "bt_config_from",
    "save_reward_model",
]

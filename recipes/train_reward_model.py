# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Train the reward model of the math recipe on the pairs of `recipes/build_math_preferences.py`.

The launcher of `trl-icrm train` (`trl_icrm/scripts/train.py`) for `python` or `accelerate launch`, with the same
flags: `--method icrm` trains an ICRM model (`ICRMRewardTrainer`), `--method bt` a conventional Bradley-Terry model
(`trl.RewardTrainer`) on the same pairs with the same training arguments; both with LoRA on the embedded model by
default. The configs in `recipes/smollm2-135m/reward/` (`config_icrm.yaml`, `config_bt.yaml`) hold those defaults;
flags given after `--config` override them.

    python recipes/train_reward_model.py --method icrm --output_dir outputs/math-icrm
    python recipes/train_reward_model.py --method bt --output_dir outputs/math-bt
    python recipes/train_reward_model.py --config recipes/smollm2-135m/reward/config_bt.yaml
    python recipes/train_reward_model.py --method icrm --model_name_or_path Qwen/Qwen2.5-0.5B-Instruct --bf16 true
"""

from trl_icrm.scripts.train import main, make_parser
from trl_icrm.utils.distributed import destroy_process_group


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
    destroy_process_group()

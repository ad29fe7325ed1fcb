# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""GRPO on math problems with one of three rewards: the math-verify verifier, a BT reward model, or ICRM.

The launcher of `trl-icrm grpo` (`trl_icrm/scripts/grpo.py`, whose docstring describes the rewards and the outputs)
for `accelerate launch`, with the same flags. Every default is a run on CPU with the embedded model; the configs in
`recipes/smollm2-135m/grpo/` hold those values for each reward (`config_verifier.yaml`, `config_bt.yaml`,
`config_icrm.yaml`), and flags given after `--config` override them.

    python recipes/grpo_math.py                                           # verifier reward, embedded model, CPU
    accelerate launch --num_processes 1 recipes/grpo_math.py              # the same (`make demo`)
    python recipes/grpo_math.py --config recipes/smollm2-135m/grpo/config_icrm.yaml
    python recipes/grpo_math.py --config recipes/smollm2-135m/grpo/config_bt.yaml --max_steps 20
    python recipes/grpo_math.py --reward icrm --reward_model_name_or_path outputs/math-icrm \
        --preferences_path outputs/math-preferences --output_dir outputs/grpo-math-icrm
    accelerate launch --config_file recipes/accelerate_configs/zero3.yaml recipes/grpo_math.py \
        --model_name_or_path Qwen/Qwen2.5-0.5B-Instruct --dataset_name openai/gsm8k --bf16 true --reward verifier
    DS_ACCELERATOR=cpu accelerate launch --config_file recipes/accelerate_configs/cpu_zero2.yaml recipes/grpo_math.py

Make the reward models first (`recipes/build_math_preferences.py`, then `recipes/train_reward_model.py`; the script
prints the exact commands when a model is missing). Under a DeepSpeed launch without a GPU, `ddp_backend` defaults to
gloo (`trl_icrm.utils.distributed.default_ddp_backend`), and every rank ends with `destroy_process_group`.
"""

from trl_icrm.scripts.grpo import main, make_parser
from trl_icrm.utils.distributed import destroy_process_group


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
    destroy_process_group()

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""GRPO with an ICRM reward under `accelerate launch` (DDP or DeepSpeed ZeRO-2/3, CPU or GPU): 2 steps, then save.

    DS_ACCELERATOR=cpu accelerate launch --config_file recipes/accelerate_configs/cpu_zero3.yaml \
        tests/scripts/grpo_icrm_smoke.py --model_name_or_path <causal LM> --reward_model_name_or_path <ICRM model> \
        --output_dir <dir>
"""

import json
import os
from dataclasses import dataclass, field

import torch.distributed as dist
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer, TrlParser

from trl_icrm import ICRMReward
from trl_icrm.utils.distributed import check_world_size, default_ddp_backend, destroy_process_group


@dataclass
class SmokeArguments:
    model_name_or_path: str = field(metadata={"help": "The policy (a causal LM)."})
    reward_model_name_or_path: str = field(metadata={"help": "An ICRM reward model."})
    output_dir: str = field(metadata={"help": "Folder of the saved policy and the rank<r>.json records."})


(args,) = TrlParser((SmokeArguments,)).parse_args_and_config()

demos = [{"prompt": f"q{i}?", "chosen": " yes", "rejected": " no"} for i in range(3)]
dataset = Dataset.from_list([{"prompt": f"tiger lemon {i}?", "demonstrations": demos[: 1 + i % 3]} for i in range(16)])
config = GRPOConfig(
    output_dir=args.output_dir,
    max_steps=2,
    per_device_train_batch_size=4,
    num_generations=4,
    max_completion_length=8,
    learning_rate=1e-4,
    logging_steps=1,
    report_to=[],
    save_strategy="no",
    bf16=False,
    seed=0,
    ddp_backend=default_ddp_backend(),
    disable_tqdm=True,
)
check_world_size(config)
reward = ICRMReward(args.reward_model_name_or_path)
scored = []


def counting_icrm(prompts, completions, **kwargs):
    scored.append(len(completions))
    return reward(prompts, completions, **kwargs)


counting_icrm.__name__ = "icrm"
trainer = GRPOTrainer(model=args.model_name_or_path, reward_funcs=[counting_icrm], args=config, train_dataset=dataset)
trainer.train()
trainer.save_model(args.output_dir)  # a collective under ZeRO-3: every rank calls it
rank = dist.get_rank() if dist.is_initialized() else 0
with open(os.path.join(args.output_dir, f"rank{rank}.json"), "w", encoding="utf-8") as handle:
    json.dump({"world_size": config.world_size, "scored": scored, "log_history": trainer.state.log_history}, handle)
destroy_process_group()

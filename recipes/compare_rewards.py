# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Compare ICRM, BT and the verifier as GRPO rewards on math: equal budgets and seeds, one table and one plot.

The launcher of `trl-icrm compare-rewards` (`trl_icrm/scripts/compare_rewards.py`) for `python` or `accelerate
launch`, with the same flags (every flag of `recipes/grpo_math.py`, `--config` included, plus `--rewards`,
`--icrm_model_name_or_path`, `--bt_model_name_or_path` and `--report_only`). It writes `comparison.md`,
`comparison.png` and `comparison.json` to `--output_dir`, and each run's results to `<output_dir>/<reward>/`.

    python recipes/build_math_preferences.py --output_dir outputs/math-preferences
    python recipes/train_reward_model.py --method icrm --output_dir outputs/math-icrm
    python recipes/train_reward_model.py --method bt --output_dir outputs/math-bt
    python recipes/compare_rewards.py --output_dir outputs/compare-rewards --max_steps 30 --eval_every 5

`--report_only` rebuilds the table and plot from existing `<output_dir>/<reward>/results.json` files.
"""

from trl_icrm.scripts.compare_rewards import main, make_parser
from trl_icrm.utils.distributed import destroy_process_group


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
    destroy_process_group()

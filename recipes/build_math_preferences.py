# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Build math preference pairs for reward-model training: sample solutions from the policy, label them with math-verify.

The launcher of `trl-icrm build-math-preferences` (`trl_icrm/scripts/build_math_preferences.py`, whose docstring
describes the pairs), with the same flags.

    python recipes/build_math_preferences.py                                 # embedded model, CPU
    python recipes/build_math_preferences.py --num_problems 256 --num_samples 8 --output_dir outputs/math-preferences
    python recipes/build_math_preferences.py --dataset_name openai/gsm8k --model_name_or_path Qwen/Qwen2.5-0.5B-Instruct
"""

from trl_icrm.scripts.build_math_preferences import main, make_parser


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())

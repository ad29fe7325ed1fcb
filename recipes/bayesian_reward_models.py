# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Bayesian reward models (Laplace-LoRA, ICRM, VRM) against best-of-N over-optimization, on the embedded model (CPU).

The launcher of the experiment `trl_icrm.experiments.best_of_n.bayesian` (whose docstring describes its steps:
preferences, candidates, bt, laplace, icrm, vrm, scores, curves, calibration), every step cached in `--output_dir`, so
a rerun resumes. `recipes/smollm2-135m/bayesian/config.yaml` holds the defaults; flags given after `--config` override
them. The `trl-icrm` commands of the steps run here in their own processes, so memory is freed between steps.

    python recipes/bayesian_reward_models.py --output_dir runs/bayesian_reward_models
    python recipes/bayesian_reward_models.py --config recipes/smollm2-135m/bayesian/config.yaml
    python recipes/bayesian_reward_models.py --output_dir runs/bayesian_reward_models --steps curves  # redraw
"""

import subprocess
import sys
import time

from trl_icrm.experiments.best_of_n.bayesian import BayesianRewardModelsArguments, run_bayesian_reward_models
from trl_icrm.scripts._common import command_parser


def run_command(*args: str) -> None:
    """Run `trl-icrm <args>` in a subprocess and print how long it took."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "trl_icrm.cli", *args], check=True)
    print(f"[{args[0]}] {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    parser = command_parser("bayesian-reward-models", __doc__, (BayesianRewardModelsArguments,), __doc__)
    (experiment_args,) = parser.parse_args_and_config()
    run_bayesian_reward_models(experiment_args, run_command)

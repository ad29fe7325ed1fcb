# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Steerability of ICRM vs a BT reward model on the steerable data set made with the embedded model.

Trains an ICRM model and a BT model with LoRA on the *seen* objectives (length, tone and compliance; with
`--cross_style_pairs`, cross-style preferences too), then measures, on held-out prompts:

- accuracy vs K in {0, 1, 2, 4, 8} demonstrations on the *unseen* objectives (bullets vs prose) and the seen ones,
  with 95% confidence intervals over draws of demonstrations, next to the BT model;
- calibration of the posterior mean (ECE, reliability diagram);
- the conflict concise vs detailed: contexts mixing the two objectives' demonstrations at w in {0, .25, .5, .75, 1},
  traced as (accuracy on concise, accuracy on detailed) with the hypervolume of the front, ICRM vs BT.

    python examples/steerability.py --output_dir outputs/steerability
    python examples/steerability.py --icrm_model outputs/steerability/icrm --bt_model outputs/steerability/bt

The same as `trl-icrm steer-eval` (all its options apply).
"""

from __future__ import annotations

import argparse
import sys

from trl_icrm.experiments.steerability import add_steer_eval_arguments, steer_eval_main


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sys.exit(steer_eval_main(add_steer_eval_arguments(parser).parse_args()))

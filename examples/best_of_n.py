# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Best-of-N over-optimization curves on the embedded model: a reward model as the proxy, math-verify as the gold.

For each built-in arithmetic word problem, the embedded SmolLM2-135M-Instruct samples N answers once (N = 32 by
default). The proxy reward model scores every answer (with its uncertainty if it is an ICRM model), math-verify checks
each answer against the solution (the gold reward), and the exact order-statistics estimator turns this one sample set
into the expected proxy and gold score of best-of-n for every n <= N, with bootstrap confidence intervals over prompts:
plain selection and, for an ICRM proxy, the `lcb` and `var_penalty` uncertainty penalties; with several reward models,
their ensembles. Over-optimization shows as a proxy curve that keeps rising with KL_bon while the gold curve falls.

Outputs in `--output-dir`: best_of_n_curves.json, best_of_n_curves.csv, best_of_n_curves.png (proxy and gold vs
KL_bon) and best_of_n_samples.jsonl (every answer with its scores).

    python examples/best_of_n.py --reward-model path/to/reward_model --output-dir runs/best_of_n
    python examples/best_of_n.py --reward-model rm_a rm_b --num-prompts 8 -N 8 --max-new-tokens 64  # quick look

The same run is `trl-icrm bon --reward-model ...`.
"""

import argparse
import sys

from trl_icrm.experiments.best_of_n import add_bon_arguments, bon_main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add_bon_arguments(parser)
    return bon_main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

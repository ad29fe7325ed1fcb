# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The best-of-N over-optimization experiment (`trl-icrm bon`): sample once, score with a proxy and a gold reward,
draw the curves.

- `run`: the computation (prompts, candidates sampled once, every candidate scored) and [`BestOfNSettings`];
- `curves`: best-of-n curves of every selection rule from the scores (pure computation);
- `report`: the files and plots (curves, samples, cached candidates and scores, reliability diagrams);
- `experiment`: [`run_best_of_n_experiment`], the three in order (what `trl-icrm bon` runs);
- `bayesian`: Bayesian reward models (Laplace-LoRA, ICRM, VRM) against over-optimization, step by step and cached
  (`recipes/bayesian_reward_models.py`).
"""

from .curves import (
    DEFAULT_ENSEMBLES,
    DEFAULT_PENALTIES,
    SelectionMethod,
    curves_from_scores,
    method_curves,
    selection_rules,
)
from .experiment import run_best_of_n_experiment
from .report import (
    cached_proxy_scores,
    curve_rows,
    load_candidates,
    load_curves,
    plot_curves,
    save_candidates,
    save_curves,
    write_samples,
)
from .run import (
    BestOfNSettings,
    CandidateScores,
    CandidateSet,
    experiment_prompts,
    sample_candidates,
    score_candidate_set,
)


__all__ = [
    "DEFAULT_ENSEMBLES",
    "DEFAULT_PENALTIES",
    "BestOfNSettings",
    "CandidateScores",
    "CandidateSet",
    "SelectionMethod",
    "cached_proxy_scores",
    "curve_rows",
    "curves_from_scores",
    "experiment_prompts",
    "load_candidates",
    "load_curves",
    "method_curves",
    "plot_curves",
    "run_best_of_n_experiment",
    "sample_candidates",
    "save_candidates",
    "save_curves",
    "score_candidate_set",
    "selection_rules",
    "write_samples",
]

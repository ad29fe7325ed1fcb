# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""ICRM, in-context reward modeling: a two-headed reward model steered by demonstrations, trained with a variational
Beta-Bradley-Terry objective.

- `objective`: the negative ELBO ([`icrm_loss`]) and the Beta posterior of a pair or a response, in pure torch;
- `modeling`: the settings saved in the model config ([`ICRMSettings`]), loading ([`load_icrm_model`]), its heads.

Training is `trl_icrm.trainer.ICRMRewardTrainer`; scoring on the common interface is `trl_icrm.rewards.icrm.ICRMReward`
(kind `"icrm"` of `load_reward`).
"""

from .modeling import ICRMSettings, load_icrm_model
from .objective import icrm_loss


__all__ = ["ICRMSettings", "icrm_loss", "load_icrm_model"]

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""VRM, variational reward modeling: latent objective weights w ~ q(w | x) set by the prompt and semantic features
z ~ q(z | x, y) of the response, the reward r = w^T (G z + b).

- `objective`: the negative ELBO plus supervision ([`vrm_loss`]), KL terms from `torch.distributions`, exact reward
  moments;
- `modeling`: the weight / feature head and score map, its saved settings ([`VRMSettings`]), loading
  ([`load_vrm_model`]).

Training is `trl_icrm.trainer.VRMRewardTrainer`; scoring on the common interface is `trl_icrm.rewards.vrm.VRMReward`
(kind `"vrm"` of `load_reward`).
"""

from .modeling import VRMSettings, load_vrm_model
from .objective import vrm_loss


__all__ = ["VRMSettings", "load_vrm_model", "vrm_loss"]

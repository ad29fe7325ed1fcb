# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Evaluation of reward models: calibration and steerability metrics (pure computations; reports live in experiments)."""

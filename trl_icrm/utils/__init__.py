# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Utilities: the embedded default model, distributed helpers, greedy generation, JSON output and plots, tiny models."""

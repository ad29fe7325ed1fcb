# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Experiments built on the library: best-of-N over-optimization, the steerability benchmark, the math GRPO recipe.

The library never imports this package, and experiments do not import each other's internals."""

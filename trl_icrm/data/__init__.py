# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Data: loading splits from anywhere, built-in preference sets, public benchmarks, math problems, the steerable set."""

# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""One module per `trl-icrm` command, each with `main(...)` and `make_parser(subparsers=None, prog=None)`."""

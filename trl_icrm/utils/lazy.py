# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Lazy attributes of a package (PEP 562), so importing it loads none of its heavy dependencies until used."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_attributes(
    package: str, exports: Mapping[str, Sequence[str]], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`(__getattr__, __dir__)` for the package `package` whose names `exports` maps from their modules; a name is
    imported on first access and then kept in `namespace` (the package's `globals()`)."""
    module_of = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in module_of:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module_of[name]), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(module_of))

    return __getattr__, __dir__


__all__ = ["lazy_attributes"]

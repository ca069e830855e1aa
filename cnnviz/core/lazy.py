"""Names a package exports from its modules, each module imported on the name's first use."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, where: Mapping[str, str], modules: Mapping[str, str] | None = None
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` (PEP 562) of ``package``: a name of
    ``where`` is read from the module ``where`` gives for it when first used, then kept; a name
    of ``modules`` is that module itself."""
    modules = dict(modules or {})

    def get(name: str) -> Any:
        if name in modules:
            value = importlib.import_module(modules[name])
        elif name in where:
            value = getattr(importlib.import_module(where[name]), name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)
        return value

    def names() -> list[str]:
        return sorted({*vars(sys.modules[package]), *where, *modules})

    return get, names

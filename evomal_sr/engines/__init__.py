"""The registry of search engines.

Engines are named by import path and loaded only when chosen, so that
``import evomal_sr`` never imports PySR or Julia. An engine class has a
``name``, a ``check_available()`` that raises
:class:`~evomal_sr.errors.EngineUnavailableError` with one actionable sentence,
and ``run(context) -> EngineResult``.
"""

from __future__ import annotations

import importlib

from evomal_sr.errors import ConfigError

ENGINES: dict[str, str] = {
    "native": "evomal_sr.engines.native:NativeEngine",
    "pysr": "evomal_sr.engines.pysr:PySREngine",
}


def check_engine_name(name: str) -> str:
    if not isinstance(name, str) or name not in ENGINES:
        raise ConfigError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
    return name


def get_engine(name: str):
    """The engine class registered as ``name`` (imported on demand)."""
    module, _, attr = ENGINES[check_engine_name(name)].partition(":")
    return getattr(importlib.import_module(module), attr)

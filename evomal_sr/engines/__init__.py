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


#: Settings only the native engine reads, each with the value every engine honours: PySR builds its own first
#: population around the guesses, so another value would be silently ignored there.
NATIVE_ONLY_SETTINGS: dict[str, object] = {"initial_fill": "random"}


def check_engine_settings(name: str, settings) -> None:
    """Raise :class:`ConfigError` when engine ``name`` would ignore a setting of the preset ``settings``.

    Examples
    --------
    >>> from evomal_sr.core.presets import resolve_preset
    >>> check_engine_settings("native", resolve_preset("standard", initial_fill="variants"))
    >>> check_engine_settings("pysr", resolve_preset("standard", initial_fill="variants"))
    Traceback (most recent call last):
    ...
    evomal_sr.errors.ConfigError: initial_fill='variants' is the native engine's; ...
    """
    if check_engine_name(name) == "native":
        return
    for setting, honoured in NATIVE_ONLY_SETTINGS.items():
        value = getattr(settings, setting)
        if value != honoured:
            raise ConfigError(
                f"{setting}={value!r} is the native engine's; the PySR engine builds its own first population"
                f" around the guesses: use engine='native' or {setting}={honoured!r}"
            )


def get_engine(name: str):
    """The engine class registered as ``name`` (imported on demand)."""
    module, _, attr = ENGINES[check_engine_name(name)].partition(":")
    return getattr(importlib.import_module(module), attr)

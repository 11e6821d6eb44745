"""Shared by the tests that need a real Julia + PySR installation."""

from __future__ import annotations

import importlib.util

from evomal_sr.engines.pysr import find_julia


def julia_skip_reason() -> str | None:
    """Why the Julia tests cannot run here, or ``None`` when they can."""
    if importlib.util.find_spec("pysr") is None:
        return "pysr is not installed"
    if find_julia() is None:
        return "Julia is not installed"
    return None

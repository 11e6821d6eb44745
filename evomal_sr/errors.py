"""Exception types raised by evomal-sr.

Every error a user can cause derives from :class:`EvomalError`, so callers can
catch the package's errors in one place; each is also a builtin type
(``ValueError``, ``RuntimeError``) so generic handlers keep working.
"""

from __future__ import annotations


class EvomalError(Exception):
    """Base class of every error evomal-sr raises on purpose."""


class ExpressionError(EvomalError, ValueError):
    """Text or data that is not a valid loss expression."""


class TaskError(EvomalError, ValueError):
    """A dataset, model or task specification that cannot be used."""


class ConfigError(EvomalError, ValueError):
    """An invalid option: unknown preset, engine, device, or out-of-range value."""


class LossFileError(EvomalError, ValueError):
    """A saved loss or Pareto-front file that is malformed, hostile or incompatible."""


class CheckpointError(EvomalError, RuntimeError):
    """A search checkpoint that is corrupt or belongs to a different run."""


class EngineUnavailableError(EvomalError, RuntimeError):
    """A search engine whose dependencies (e.g. Julia for PySR) are missing."""

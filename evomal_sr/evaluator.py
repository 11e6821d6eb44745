"""Deprecated alias of :mod:`evomal_sr.scoring.evaluator` (removed in the next release).

The module was renamed so that scoring candidates during the search
(:mod:`evomal_sr.scoring`) is not confused with meta-testing finished losses
(:mod:`evomal_sr.evaluation`). ``evomal_sr.Evaluator`` is unchanged.
"""

from __future__ import annotations

import warnings

from evomal_sr.scoring.evaluator import *  # noqa: F403
from evomal_sr.scoring.evaluator import Evaluator, FitnessResult  # noqa: F401

warnings.warn(
    "evomal_sr.evaluator is deprecated; import from evomal_sr.scoring.evaluator (or evomal_sr) instead",
    DeprecationWarning,
    stacklevel=2,
)

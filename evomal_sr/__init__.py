"""evomal-sr: discover symbolic loss functions with genetic programming and meta-learning.

Public objects are imported lazily, so ``import evomal_sr`` is cheap and never
starts Julia; torch loads the first time a torch-backed object is used.

Examples
--------
>>> import evomal_sr as es
>>> str(es.Expression.parse("-(y * log(fx))"))
'-(y * log(fx))'
"""

from __future__ import annotations

import importlib

from evomal_sr._version import __version__
from evomal_sr.errors import (
    CheckpointError,
    ConfigError,
    EngineUnavailableError,
    EvomalError,
    ExpressionError,
    LossFileError,
    TaskError,
)

# public name -> module that defines it
_LAZY = {
    "Expression": "grammar.expression",
    "LearnedLoss": "losses.symbolic",
    "OnlineLearnedLoss": "training.online",
    "Task": "data.tasks",
    "Evaluator": "scoring.evaluator",
    "FitnessResult": "scoring.evaluator",
    "ParetoFront": "results.front",
    "load_front": "results.front",
    "LossSearch": "search.estimator",
    "meta_test": "evaluation.metatest",
    "MetaTestReport": "evaluation.report",
    "known_loss": "losses.zoo",
    "KNOWN_LOSSES": "losses.zoo",
}

__all__ = [
    "__version__",
    "CheckpointError",
    "ConfigError",
    "EngineUnavailableError",
    "EvomalError",
    "ExpressionError",
    "LossFileError",
    "TaskError",
    *_LAZY,
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'evomal_sr' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)

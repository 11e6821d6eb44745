"""The PySR engine: SymbolicRegression.jl evolves the trees, PyTorch scores them.

The sub-package's modules, each importing only those before it:

- :mod:`~evomal_sr.engines.pysr.text`: PySR's equation text to and from the grammar;
- :mod:`~evomal_sr.engines.pysr.bridge`: the callback Julia calls for a fitness;
- :mod:`~evomal_sr.engines.pysr.runtime`: finding and starting Julia and PySR;
- :mod:`~evomal_sr.engines.pysr.options`: the regressor's arguments;
- :mod:`~evomal_sr.engines.pysr.engine`: :class:`PySREngine` itself.

Importing this package loads neither torch, PySR, juliacall nor Julia.

Examples
--------
>>> from evomal_sr.engines.pysr import PySREngine
>>> PySREngine.name
'pysr'
"""

from __future__ import annotations

from evomal_sr.engines.pysr.engine import (
    JULIA_MODULE,
    LOSS_FUNCTION,
    OBJECTIVE_FILE,
    PySREngine,
    julia_source_dir,
    load_objective,
    log_to_stderr,
)
from evomal_sr.engines.pysr.options import bridge_settings, operator_arguments, probe_dataset, search_budget
from evomal_sr.engines.pysr.runtime import TorchBeforeJuliaWarning, describe_pysr, find_julia, inspect_pysr, start_julia

__all__ = [
    "JULIA_MODULE",
    "LOSS_FUNCTION",
    "OBJECTIVE_FILE",
    "PySREngine",
    "TorchBeforeJuliaWarning",
    "bridge_settings",
    "describe_pysr",
    "find_julia",
    "inspect_pysr",
    "julia_source_dir",
    "load_objective",
    "log_to_stderr",
    "operator_arguments",
    "probe_dataset",
    "search_budget",
    "start_julia",
]

"""PySR's settings for the engine: ``PySRRegressor``'s keyword arguments and the callback's.

Everything here is plain Python over the preset and the engine options; it
imports neither PySR, juliacall nor torch, so the settings are checked (and
tested) without Julia.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from functools import partial
from pathlib import Path

import numpy as np

from evomal_sr.core.seeding import derive_seed
from evomal_sr.engines.pysr.bridge import DEFAULT_CANDIDATE_TIMEOUT
from evomal_sr.engines.pysr.text import to_pysr_equation
from evomal_sr.errors import ConfigError, ExpressionError
from evomal_sr.grammar.operators import OPERATORS, searchable_operators

#: The Julia module ``loss_objective.jl`` defines, and PySR's ``loss_function``.
JULIA_MODULE = "EvomalPySR"
LOSS_FUNCTION = f"{JULIA_MODULE}.objective"
#: Operators SymbolicRegression.jl already exports: redefining them in ``Main`` would clash.
SR_BUILTIN_OPERATORS = frozenset({"square"})
DEFAULT_MAXSIZE = 30
DEFAULT_BATCH_WINDOW = 0.02
#: How long one poll of a serial search waits for its answer, with the GIL released.
SERIAL_POLL_WAIT = 0.25


# -- PySR's keyword arguments --------------------------------------------------------------
def _sympy_operator(name: str, *args):
    import sympy

    return OPERATORS[name].sympy(sympy, *args)


def operator_arguments(operator_set: str = "paper") -> dict:
    """``binary_operators``, ``unary_operators``, ``extra_sympy_mappings`` from the registry.

    Operators with a Julia definition are passed as that definition (PySR
    evaluates it in ``Main``), except those SymbolicRegression.jl already
    exports; every defined one gets a SymPy mapping. PySR's torch export already
    maps every SymPy head these mappings produce, so no ``extra_torch_mappings``
    are needed (evomal-sr's own torch modules come from the registry anyway).

    Examples
    --------
    >>> args = operator_arguments()
    >>> "aq(a, b) = a / sqrt(one(b) + b * b)" in args["binary_operators"]
    True
    >>> sorted(args["extra_sympy_mappings"])
    ['aq', 'plog', 'psqrt']
    """
    lists: dict[int, list[str]] = {1: [], 2: []}
    mappings, complexities = {}, {}
    for op in searchable_operators(operator_set):
        if op.infix:
            entry = op.infix
        elif op.julia and op.julia_name not in SR_BUILTIN_OPERATORS:
            entry = op.julia
            mappings[op.julia_name] = partial(_sympy_operator, op.name)
        else:
            entry = op.julia_name
        lists[op.arity].append(entry)
        if op.complexity != 1:
            complexities[op.infix or op.julia_name] = op.complexity
    args = {"binary_operators": lists[2], "unary_operators": lists[1], "extra_sympy_mappings": mappings}
    if complexities:
        args["complexity_of_operators"] = complexities
    return args


def option_int(options: dict, key: str, minimum: int = 1) -> int | None:
    """The integer engine option ``key`` (``None`` when unset); :class:`ConfigError` if invalid."""
    value = options.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"engine option {key!r} must be an integer >= {minimum}, got {value!r}")
    return value


def option_seconds(options: dict, key: str, default: float | None = None) -> float | None:
    """The engine option ``key`` as positive, finite seconds (``default`` when unset)."""
    value = options.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ConfigError(f"engine option {key!r} must be a positive number of seconds, got {value!r}")
    return float(value)


def bridge_settings(options: dict) -> dict:
    """:class:`LossCallback` settings from the engine options: batch window, poll wait, candidate timeout.

    A serial (deterministic) search has one request in flight at a time, so it
    skips the batch window, and its polls wait for the answer with the GIL
    released (the worker runs even if PySR holds the GIL).

    Examples
    --------
    >>> bridge_settings({"deterministic": True, "batch_window": 0.5})
    {'window': 0.0, 'poll_wait': 0.25, 'timeout': 3600.0}
    >>> bridge_settings({"candidate_timeout": 60})
    {'window': 0.02, 'poll_wait': 0.0, 'timeout': 60.0}
    """
    serial = bool(options.get("deterministic", False))
    window = option_seconds(options, "batch_window", default=DEFAULT_BATCH_WINDOW)  # validated either way
    timeout = option_seconds(options, "candidate_timeout", default=DEFAULT_CANDIDATE_TIMEOUT)
    return {"window": 0.0 if serial else window, "poll_wait": SERIAL_POLL_WAIT if serial else 0.0, "timeout": timeout}


def search_budget(settings, options: dict) -> dict:
    """PySR's budget from a preset: about ``population * generations`` new candidates.

    Each of ``populations`` islands holds ``settings.population`` members; one
    iteration of an island makes about one generation of offspring (PySR makes
    ``ceil(population / tournament)`` per cycle), so ``niterations`` is
    ``generations / populations``. ``max_evals`` is a backstop at twice the
    expected number of objective calls.

    Examples
    --------
    >>> from evomal_sr.core.presets import resolve_preset
    >>> search_budget(resolve_preset("paper"), {"populations": 5})["niterations"]
    10
    """
    deterministic = bool(options.get("deterministic", False))
    threads = option_int(options, "threads") or os.cpu_count() or 1
    default_islands = 2 if deterministic else min(8, max(2, threads))
    populations = option_int(options, "populations") or default_islands
    population_size = max(int(settings.population), 2)
    tournament = max(1, min(int(settings.tournament_size), population_size - 1))
    offspring_per_cycle = math.ceil(population_size / tournament)
    ncycles = max(1, math.ceil(population_size / offspring_per_cycle))
    niterations = max(1, math.ceil(settings.generations / populations))
    per_iteration = populations * (ncycles * offspring_per_cycle + population_size)
    return {
        "populations": populations,
        "population_size": population_size,
        "tournament_selection_n": tournament,
        "ncycles_per_iteration": ncycles,
        "niterations": niterations,
        "max_evals": 2 * (populations * population_size + niterations * per_iteration),
    }


def _output_arguments(out_dir) -> dict:
    if out_dir is None:
        return {"temp_equation_file": True}
    return {"output_directory": str(Path(out_dir) / "pysr"), "temp_equation_file": False}


def _guesses(guesses: Iterable[str]) -> list[str] | None:
    try:
        converted = [to_pysr_equation(g) for g in guesses]
    except ExpressionError as exc:
        raise ConfigError(f"invalid guess for the PySR engine: {exc}") from None
    return converted or None


def probe_dataset(kind: str, n_points: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The fixed data PySR sees: probe values of ``y`` and ``fx`` (columns) and a zero target.

    The objective ignores them (fitness comes from training); PySR needs a
    dataset to run. Classification probes have ``y`` in {0, 1} and ``fx`` in (0, 1).
    """
    rng = np.random.default_rng(derive_seed(seed, "pysr-probes"))
    n = max(int(n_points), 4)
    if kind == "classification":
        y, fx = rng.integers(0, 2, n).astype(float), rng.uniform(0.01, 0.99, n)
    else:
        y = rng.normal(size=n)
        fx = y + 0.5 * rng.normal(size=n)
    return np.stack([y, fx], axis=1), np.zeros(n)


def regressor_kwargs(context) -> dict:
    """Keyword arguments for :class:`pysr.PySRRegressor` from an ``EngineContext``.

    Raises
    ------
    ConfigError
        For an invalid engine option or guess.
    """
    options = dict(context.options or {})
    settings = context.settings
    deterministic = bool(options.get("deterministic", False))
    maxsize = option_int(options, "maxsize", minimum=7) or DEFAULT_MAXSIZE  # PySR needs >= 7
    precision = options.get("precision", 32)
    if precision not in (32, 64):
        raise ConfigError(f"engine option 'precision' must be 32 or 64, got {precision!r}")
    timeout = option_seconds(options, "timeout")
    return {
        **operator_arguments(settings.operators),
        **search_budget(settings, options),
        "loss_function": LOSS_FUNCTION,
        "maxsize": maxsize,
        "maxdepth": int(settings.height_limit) + 1,  # PySR counts a lone leaf as depth 1
        "timeout_in_seconds": timeout,
        "should_optimize_constants": False,  # the local search tunes the weights
        "batching": False,
        "annealing": True,  # keeps rejected (inf) offspring from displacing trained members
        "parallelism": "serial" if deterministic else "multithreading",
        "deterministic": deterministic,
        "random_state": int(context.seed) if deterministic else None,
        "guesses": _guesses(context.guesses),
        "precision": precision,
        "model_selection": "accuracy",
        "verbosity": int(options.get("verbosity", 0)),
        "progress": False,
        "input_stream": "devnull",
        **_output_arguments(context.out_dir),
    }

"""The PySR engine: SymbolicRegression.jl drives the search, PyTorch scores each loss.

PySR's :class:`pysr.PySRRegressor` evolves expression trees over the variables
``y`` and ``fx`` with the registry's operators (``aq``, protected ``log`` and
``sqrt`` as one-line Julia definitions). Its objective is the full-objective
Julia function in ``julia/loss_objective.jl``: it prints each tree and asks the
Python :class:`~evomal_sr.engines.pysr_bridge.LossCallback` for the fitness,
which the shared :class:`~evomal_sr.evaluator.Evaluator` computes in batches
(local search of the edge weights, then partial training). PySR's hall of fame
becomes the same :class:`~evomal_sr.results.front.HallOfFame` the native engine returns.

Nothing here imports PySR or juliacall until :meth:`PySREngine.run`: ``import
pysr`` starts Julia. Julia prefers to be loaded before torch; by the time an
engine runs, the evaluator has usually imported torch already, so a program that
knows it will use this engine may call :func:`import_pysr` first.

Engine options (``EngineContext.options``)
------------------------------------------
deterministic : bool
    Serial, reproducible search (``parallelism="serial"``, ``deterministic=True``,
    ``random_state=seed``). Default: multithreaded.
threads : int
    Julia threads (``PYTHON_JULIACALL_THREADS``; only before Julia starts).
populations, maxsize : int
    PySR's settings of the same names (defaults from the preset, see
    :func:`search_budget`).
timeout : float
    PySR's ``timeout_in_seconds``.
batch_window : float
    Seconds the callback waits to gather concurrent requests into one batch.
precision : {32, 64}
    Float precision of the Julia search (32, the default, is precompiled).
verbosity : int
    PySR's own printing (0, the default, is silent).

Examples
--------
>>> from evomal_sr.engines.base import EngineContext
>>> from evomal_sr.core.presets import resolve_preset
>>> ctx = EngineContext(task=None, evaluator=None, settings=resolve_preset("tiny"), seed=0,
...                     options={"deterministic": True})
>>> kwargs = PySREngine.build_regressor_kwargs(ctx)
>>> kwargs["parallelism"], kwargs["loss_function"], kwargs["should_optimize_constants"]
('serial', 'EvomalPySR.objective', False)
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import os
import re
import shutil
import statistics
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

import numpy as np

from evomal_sr.core.seeding import derive_seed
from evomal_sr.engines.base import EngineContext, EngineResult, GenerationRecord
from evomal_sr.engines.pysr_bridge import (
    HallOfFameRow,
    LossCallback,
    front_entries,
    front_entry,
    read_hall_of_fame_csv,
    to_pysr_equation,
)
from evomal_sr.errors import ConfigError, EngineUnavailableError, ExpressionError
from evomal_sr.grammar.operators import OPERATORS, VARIABLES, searchable_operators
from evomal_sr.results.front import HallOfFame

#: The Julia file holding the objective, and the objective's name once loaded.
OBJECTIVE_FILE = "loss_objective.jl"
JULIA_MODULE = "EvomalPySR"
LOSS_FUNCTION = f"{JULIA_MODULE}.objective"
#: First PySR that runs the search with the GIL released (``_jl_call_nogil``).
MIN_PYSR_VERSION = (2, 2, 0)
#: Operators SymbolicRegression.jl already exports: redefining them in ``Main`` would clash.
SR_BUILTIN_OPERATORS = frozenset({"square"})
DEFAULT_MAXSIZE = 30
_INSTALL = "run `pip install evomal-sr[pysr]` on a machine with internet access"


def julia_source_dir() -> Path:
    """The folder holding the engine's Julia files.

    ``evomal_sr/julia`` inside an installed wheel (hatch ``force-include``),
    else the top-level ``julia/`` of a source checkout.

    Examples
    --------
    >>> (julia_source_dir() / OBJECTIVE_FILE).is_file()
    True
    """
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "julia", package.parent / "julia"):
        if (candidate / OBJECTIVE_FILE).is_file():
            return candidate
    raise EngineUnavailableError(
        f"The PySR engine's Julia file {OBJECTIVE_FILE} is missing from this installation; reinstall evomal-sr."
    )


# -- availability (never starts Julia) ----------------------------------------------------
def find_julia() -> str | None:
    """Path of a Julia (or juliaup) that juliacall would use, without starting it."""
    override = os.environ.get("PYTHON_JULIAPKG_EXE") or sys._xoptions.get("juliapkg-exe")
    if override:
        return shutil.which(override) or (override if Path(override).is_file() else None)
    for name in ("julia", "juliaup"):
        found = shutil.which(name)
        if found:
            return found
    try:
        from juliapkg.state import STATE  # pure Python: reads paths from the environment
    except Exception:  # juliapkg missing or changed: nothing more to look at
        return None
    for candidate in (Path(STATE["install"]) / "bin" / "julia", _meta_executable(STATE.get("meta"))):
        if candidate is not None and candidate.is_file():
            return str(candidate)
    return None


def _meta_executable(meta_path) -> Path | None:
    import json

    try:
        with open(meta_path, encoding="utf-8") as handle:
            return Path(json.load(handle)["executable"])
    except (OSError, TypeError, ValueError, KeyError):
        return None


def availability_problem() -> str | None:
    """One sentence saying what the PySR engine lacks here, or ``None``."""
    for module in ("pysr", "juliacall"):
        if importlib.util.find_spec(module) is None:
            return f"The PySR engine needs the `{module}` package, which is not installed: {_INSTALL}."
    version = importlib.metadata.version("pysr")
    if _version_tuple(version) < MIN_PYSR_VERSION:
        minimum = ".".join(map(str, MIN_PYSR_VERSION))
        return (f"The PySR engine needs pysr >= {minimum} (found {version}), which releases Python's GIL "
                f"during the search: {_INSTALL}.")
    if find_julia() is None:
        return ("The PySR engine needs Julia, which is not installed (no `julia` or `juliaup` on PATH, "
                f"no PYTHON_JULIAPKG_EXE): {_INSTALL}, then run `python -c \"import pysr\"` once so that "
                "PySR installs Julia.")
    return None


def _version_tuple(text: str) -> tuple[int, ...]:
    """``"2.7.2rc1"`` -> ``(2, 7, 2)``: leading digits of the first three parts."""
    parts = [re.match(r"\d*", piece).group() for piece in text.split(".")[:3]]
    return tuple(int(p) if p else 0 for p in parts)


def import_pysr(threads: int | None = None):
    """Import PySR (which starts Julia) with ``threads`` Julia threads; returns the module.

    The thread count is read once, when Julia starts; later calls only warn if
    it differs.
    """
    if threads is not None:
        if "juliacall" in sys.modules:
            if os.environ.get("PYTHON_JULIACALL_THREADS") != str(threads):
                warnings.warn("Julia is already running, so the number of Julia threads cannot be changed",
                              stacklevel=2)
        else:
            os.environ["PYTHON_JULIACALL_THREADS"] = str(threads)
    try:
        with warnings.catch_warnings():  # PySR warns whenever the thread count is not "auto"
            warnings.filterwarnings("ignore", message="PYTHON_JULIACALL_THREADS")
            import pysr
    except Exception as exc:  # Julia failed to start or to install its packages
        raise EngineUnavailableError(
            f"PySR could not start Julia ({type(exc).__name__}: {exc}); {_INSTALL} and try again."
        ) from exc
    return pysr


def load_objective(jl) -> None:
    """Include ``loss_objective.jl`` into Julia's ``Main`` (once per process)."""
    if not bool(jl.seval(f"isdefined(Main, :{JULIA_MODULE})")):
        jl.Base.include(jl.Main, str(julia_source_dir() / OBJECTIVE_FILE))


# -- PySR's keyword arguments --------------------------------------------------------------
def _sympy_operator(name: str, *args):
    import sympy

    return OPERATORS[name].sympy(sympy, *args)


def operator_arguments() -> dict:
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
    for op in searchable_operators():
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


def _option_int(options: dict, key: str, minimum: int = 1) -> int | None:
    value = options.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"engine option {key!r} must be an integer >= {minimum}, got {value!r}")
    return value


def _option_seconds(options: dict, key: str, default: float | None = None) -> float | None:
    value = options.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ConfigError(f"engine option {key!r} must be a positive number of seconds, got {value!r}")
    return float(value)


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
    threads = _option_int(options, "threads") or os.cpu_count() or 1
    default_islands = 2 if deterministic else min(8, max(2, threads))
    populations = _option_int(options, "populations") or default_islands
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


class _History:
    """Per-"generation" records: one per ``round_size`` candidates evaluated."""

    def __init__(self, round_size: int, on_generation=None, counters: Callable[[], dict] = dict):
        self.round_size = max(int(round_size), 1)
        self.on_generation = on_generation
        self.counters = counters
        self.records: list[GenerationRecord] = []
        self.bridge: LossCallback | None = None
        self._pending: list = []
        self._best = (math.inf, "")
        self._memo_hits = 0
        self._tick = time.perf_counter()
        self._lock = threading.Lock()

    def add_batch(self, results: list, seconds: float) -> None:
        with self._lock:
            self._pending.extend(results)
            while len(self._pending) >= self.round_size:
                self._emit(self._pending[: self.round_size])
                del self._pending[: self.round_size]

    def finish(self) -> list[GenerationRecord]:
        with self._lock:
            if self._pending:
                self._emit(self._pending)
                self._pending = []
            return list(self.records)

    def _emit(self, results: list) -> None:
        fitness = [r.fitness if r is not None and not math.isnan(r.fitness) else math.inf for r in results]
        for r, f in zip(results, fitness):
            if r is not None and f < self._best[0]:
                self._best = (f, r.expression)
        statuses = [r.status if r is not None else "rejected" for r in results]
        memo_hits = self.bridge.snapshot().memo_hits if self.bridge is not None else 0
        now = time.perf_counter()
        record = GenerationRecord(
            generation=len(self.records), best_fitness=self._best[0],
            median_fitness=statistics.median(fitness) if fitness else math.inf,
            evaluations=sum(s in ("ok", "diverged") for s in statuses),
            exact_hits=statuses.count("cached") + memo_hits - self._memo_hits,
            equivalent_hits=statuses.count("equivalent"), rejected=statuses.count("rejected"),
            seconds=now - self._tick, best_expression=self._best[1], totals=dict(self.counters()),
        )
        self._memo_hits, self._tick = memo_hits, now
        self.records.append(record)
        if self.on_generation is not None:
            self.on_generation(record)


class PySREngine:
    """Loss search driven by PySR (SymbolicRegression.jl), scored by the shared evaluator.

    Examples
    --------
    >>> ok, message = PySREngine.status()
    >>> isinstance(ok, bool) and message.endswith(".")
    True
    """

    name = "pysr"

    @staticmethod
    def check_available() -> None:
        """Raise :class:`EngineUnavailableError` (one sentence) unless PySR and Julia are present."""
        problem = availability_problem()
        if problem:
            raise EngineUnavailableError(problem)

    @staticmethod
    def status() -> tuple[bool, str]:
        """``(True, description)`` or ``(False, what is missing)``, for ``evomal-sr doctor``."""
        problem = availability_problem()
        if problem:
            return False, problem
        return True, f"pysr {importlib.metadata.version('pysr')} with Julia at {find_julia()}."

    @staticmethod
    def build_regressor_kwargs(context: EngineContext) -> dict:
        """Keyword arguments for :class:`pysr.PySRRegressor` (no PySR import needed).

        Raises
        ------
        ConfigError
            For an invalid engine option or guess.
        """
        options = dict(context.options or {})
        settings = context.settings
        deterministic = bool(options.get("deterministic", False))
        maxsize = _option_int(options, "maxsize", minimum=7) or DEFAULT_MAXSIZE  # PySR needs >= 7
        precision = options.get("precision", 32)
        if precision not in (32, 64):
            raise ConfigError(f"engine option 'precision' must be 32 or 64, got {precision!r}")
        timeout = _option_seconds(options, "timeout")
        return {
            **operator_arguments(),
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

    def run(self, context: EngineContext) -> EngineResult:
        """Run PySR with the evaluator as its objective; returns the hall of fame and history."""
        self.check_available()
        if context.resume:
            raise ConfigError("the PySR engine cannot resume a search; run it again without --resume")
        kwargs = self.build_regressor_kwargs(context)
        window = _option_seconds(context.options, "batch_window", default=0.02)
        pysr = import_pysr(_option_int(context.options, "threads"))
        from juliacall import Main as jl

        load_objective(jl)
        history = _History(context.settings.population, context.on_generation,
                           counters=lambda: getattr(context.evaluator, "counters", {}))
        bridge = LossCallback(context.evaluator, window=window, on_batch=history.add_batch)
        history.bridge = bridge
        X, y = probe_dataset(context.task.kind, context.settings.probe_points, context.seed)
        jl.EvomalPySR.install_callback(bridge)
        try:
            model = pysr.PySRRegressor(**kwargs)
            model.fit(X, y, variable_names=list(VARIABLES))
        finally:
            jl.EvomalPySR.remove_callback()
            bridge.close()
        if bridge.error is not None:
            raise bridge.error
        hall_of_fame = HallOfFame(front_entries(_read_model_hall_of_fame(model), bridge.result_for))
        hall_of_fame.update(filter(None, map(front_entry, bridge.results().values())))
        return EngineResult(hall_of_fame=hall_of_fame, history=history.finish())


def _read_model_hall_of_fame(model) -> list[HallOfFameRow]:
    run_dir = Path(model.output_directory_) / model.run_id_
    for name in ("hall_of_fame.csv", "hall_of_fame.csv.bak"):
        if (run_dir / name).is_file():
            return read_hall_of_fame_csv(run_dir / name)
    return []

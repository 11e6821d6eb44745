"""The PySR engine: SymbolicRegression.jl drives the search, PyTorch scores each loss.

PySR's :class:`pysr.PySRRegressor` evolves expression trees over the variables
``y`` and ``fx`` with the registry's operators (``aq``, protected ``log`` and
``sqrt`` as one-line Julia definitions). Its objective is the full-objective
Julia function in ``julia/loss_objective.jl``: it prints each tree and asks the
Python :class:`~evomal_sr.engines.pysr.bridge.LossCallback` for the fitness,
which the shared :class:`~evomal_sr.scoring.evaluator.Evaluator` computes in batches
(local search of the edge weights, then partial training). PySR's hall of fame
becomes the same :class:`~evomal_sr.results.hall_of_fame.HallOfFame` the native engine returns.

Importing this module imports neither PySR, juliacall nor torch. Julia must be
loaded before torch (:mod:`evomal_sr.engines.pysr.runtime` says why):
``evomal-sr search --engine pysr`` starts it first thing, through
:meth:`PySREngine.prepare`; a Python program calls :func:`start_julia` before
anything imports torch (building a :class:`~evomal_sr.data.tasks.Task` does),
or the engine starts Julia itself and warns.

Engine options (``EngineContext.options``)
------------------------------------------
deterministic : bool
    Serial, reproducible search (``parallelism="serial"``, ``deterministic=True``,
    ``random_state=seed``). Default: multithreaded, which needs a PySR whose
    search releases the GIL (see :func:`inspect_pysr`).
threads : int
    Julia threads (``PYTHON_JULIACALL_THREADS``; only before Julia starts).
populations, maxsize : int
    PySR's settings of the same names (defaults from the preset, see
    :func:`search_budget`).
timeout : float
    PySR's ``timeout_in_seconds``.
batch_window : float
    Seconds the callback waits to gather concurrent requests into one batch
    (multithreaded mode; a serial search sends each request at once).
candidate_timeout : float
    Seconds a candidate may wait for its fitness before it is scored ``inf``
    with a warning (default 3600).
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

import logging
import math
import statistics
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from evomal_sr.engines.pysr.bridge import LossCallback
from evomal_sr.engines.pysr.options import (  # noqa: F401  (monkeypatched by tests)
    DEFAULT_BATCH_WINDOW,
    JULIA_MODULE,
    LOSS_FUNCTION,
    SERIAL_POLL_WAIT,
    bridge_settings,
    operator_arguments,
    option_int,
    probe_dataset,
    regressor_kwargs,
    search_budget,
)
from evomal_sr.engines.pysr.runtime import (  # noqa: F401  (used here; tests patch them on this module)
    PYSR_FLOOR,
    PySRInstall,
    TorchBeforeJuliaWarning,
    availability_problem,
    describe_pysr,
    find_julia,
    import_pysr,
    inspect_pysr,
    julia_threads,
    parallel_mode_problem,
    start_julia,
    unsupported_arguments,
)
from evomal_sr.engines.pysr.text import HallOfFameRow, front_entries, front_entry, read_hall_of_fame_csv
from evomal_sr.errors import ConfigError, EngineUnavailableError
from evomal_sr.grammar.operators import VARIABLES

if TYPE_CHECKING:  # importing these at run time would import torch before Julia
    from evomal_sr.engines.base import EngineContext, EngineResult, GenerationRecord

#: The Julia file holding the objective (it defines the module :data:`JULIA_MODULE`).
OBJECTIVE_FILE = "loss_objective.jl"
#: Seconds the Julia poll loop's own bound lies beyond the callback's candidate timeout.
JULIA_POLL_GRACE = 30.0
#: Seconds to wait for the evaluator's batch in progress when the search itself failed.
CLOSE_AFTER_ERROR = 5.0
_LOG = logging.getLogger(__name__)


def julia_source_dir() -> Path:
    """The folder holding the engine's Julia files.

    ``evomal_sr/julia`` inside an installed wheel (hatch ``force-include``),
    else the top-level ``julia/`` of a source checkout.

    Examples
    --------
    >>> (julia_source_dir() / OBJECTIVE_FILE).is_file()
    True
    """
    package = Path(__file__).resolve().parents[2]  # evomal_sr/
    for candidate in (package / "julia", package.parent / "julia"):
        if (candidate / OBJECTIVE_FILE).is_file():
            return candidate
    raise EngineUnavailableError(
        f"The PySR engine's Julia file {OBJECTIVE_FILE} is missing from this installation; reinstall evomal-sr."
    )


def load_objective(jl) -> None:
    """Include ``loss_objective.jl`` into Julia's ``Main`` (once per process)."""
    if not bool(jl.seval(f"isdefined(Main, :{JULIA_MODULE})")):
        jl.Base.include(jl.Main, str(julia_source_dir() / OBJECTIVE_FILE))


class _StderrHandler(logging.Handler):
    """Writes records to whatever ``sys.stderr`` is at the time (Click's runner swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(f"evomal-sr: {self.format(record)}\n")
        except Exception:  # a closed stream must not break the search
            self.handleError(record)


def log_to_stderr() -> None:
    """Show the engine's log lines (start-up settings, final counts) on stderr; the CLI calls it."""
    if not any(isinstance(h, _StderrHandler) for h in _LOG.handlers):
        _LOG.addHandler(_StderrHandler())
    _LOG.setLevel(logging.INFO)


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
        from evomal_sr.engines.base import GenerationRecord

        record = GenerationRecord(
            generation=len(self.records),
            best_fitness=self._best[0],
            median_fitness=statistics.median(fitness) if fitness else math.inf,
            evaluations=sum(s in ("ok", "diverged") for s in statuses),
            exact_hits=statuses.count("cached") + memo_hits - self._memo_hits,
            equivalent_hits=statuses.count("equivalent"),
            rejected=statuses.count("rejected"),
            seconds=now - self._tick,
            best_expression=self._best[1],
            totals=dict(self.counters()),
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
        install = inspect_pysr()
        modes = "multithreaded and serial" if install is not None and install.releases_gil else "serial only"
        return True, f"Julia at {find_julia()}; modes: {modes}."

    @staticmethod
    def prepare(options: dict | None = None, kwargs: dict | None = None):
        """Check that the engine can run with ``options``, then start Julia; returns ``pysr``.

        Call it before anything imports torch (``evomal-sr search`` does). The
        multithreaded mode is refused when the installed PySR runs its search
        holding the GIL; ``kwargs`` (PySR's, from :meth:`build_regressor_kwargs`)
        are checked against the installed ``PySRRegressor``.

        Raises
        ------
        EngineUnavailableError
            In one sentence, if PySR, juliacall or Julia is missing, or the
            installed PySR cannot run this search.
        ConfigError
            For an invalid ``threads`` option.
        """
        options = dict(options or {})
        threads = option_int(options, "threads")
        PySREngine.check_available()
        install = inspect_pysr()
        problem = parallel_mode_problem(bool(options.get("deterministic", False)), install)
        problem = problem or (unsupported_arguments(kwargs, install) if kwargs else None)
        if problem:
            raise EngineUnavailableError(problem)
        return start_julia(threads)

    @staticmethod
    def build_regressor_kwargs(context: EngineContext) -> dict:
        """Keyword arguments for :class:`pysr.PySRRegressor` (no PySR import needed).

        Raises
        ------
        ConfigError
            For an invalid engine option or guess.
        """
        return regressor_kwargs(context)

    def run(self, context: EngineContext) -> EngineResult:
        """Run PySR with the evaluator as its objective; returns the hall of fame and history."""
        if context.resume:
            raise ConfigError("the PySR engine cannot resume a search; run it again without --resume")
        kwargs = self.build_regressor_kwargs(context)
        settings = bridge_settings(context.options or {})
        pysr = self.prepare(context.options, kwargs)
        from juliacall import Main as jl

        load_objective(jl)
        _log_start(jl, kwargs, settings)
        history = _History(
            context.settings.population,
            context.on_generation,
            counters=lambda: getattr(context.evaluator, "counters", {}),
        )
        bridge = LossCallback(context.evaluator, on_batch=history.add_batch, **settings)
        history.bridge = bridge
        X, y = probe_dataset(context.task.kind, context.settings.probe_points, context.seed)
        jl.EvomalPySR.install_callback(bridge, bridge.timeout + JULIA_POLL_GRACE)
        finished = False
        try:
            model = pysr.PySRRegressor(**kwargs)
            model.fit(X, y, variable_names=list(VARIABLES))
            finished = True
        finally:
            jl.EvomalPySR.remove_callback()
            # the worker is idle by now unless the evaluator hangs: wait for it, but not forever
            bridge.close(timeout=bridge.timeout if finished else CLOSE_AFTER_ERROR)
        _log_end(bridge.snapshot())
        if bridge.error is not None:
            raise bridge.error
        from evomal_sr.engines.base import EngineResult
        from evomal_sr.results.hall_of_fame import HallOfFame

        hall_of_fame = HallOfFame(front_entries(_read_model_hall_of_fame(model), bridge.result_for))
        hall_of_fame.update(filter(None, map(front_entry, bridge.results().values())))
        return EngineResult(hall_of_fame=hall_of_fame, history=history.finish())


def _log_start(jl, kwargs: dict, settings: dict) -> None:
    threads = julia_threads(jl)
    install = inspect_pysr()
    if kwargs["parallelism"] == "multithreading" and threads == 1:
        warnings.warn(
            "the multithreaded PySR search has only 1 Julia thread, so candidates are scored one at a "
            "time; set engine option threads (--threads) or PYTHON_JULIACALL_THREADS",
            stacklevel=3,
        )
    _LOG.info(
        "PySR search: pysr %s (search releases the GIL: %s), %s Julia threads, parallelism=%s, "
        "%d populations of %d, batch window %g s, candidate timeout %g s",
        install.version if install else "?",
        "yes" if install and install.releases_gil else "no",
        threads if threads is not None else "?",
        kwargs["parallelism"],
        kwargs["populations"],
        kwargs["population_size"],
        settings["window"],
        settings["timeout"],
    )


def _log_end(stats) -> None:
    mean = stats.evaluated / stats.batches if stats.batches else 0.0
    _LOG.info(
        "PySR search done: %d fitness requests (%d memo hits, %d invalid, %d timed out); "
        "%d candidates evaluated in %d batches (mean size %.1f)",
        stats.calls,
        stats.memo_hits,
        stats.invalid,
        stats.expired,
        stats.evaluated,
        stats.batches,
        mean,
    )


def _read_model_hall_of_fame(model) -> list[HallOfFameRow]:
    run_dir = Path(model.output_directory_) / model.run_id_
    for name in ("hall_of_fame.csv", "hall_of_fame.csv.bak"):
        if (run_dir / name).is_file():
            return read_hall_of_fame_csv(run_dir / name)
    return []

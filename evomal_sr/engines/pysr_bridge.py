"""The Python side of the PySR engine: equation text and the fitness callback.

SymbolicRegression.jl prints candidate trees as Julia text (``string_tree``):
Float32 constants such as ``1.5f0``, the registry's Julia operator names
(``plog``, ``psqrt``, ``aq``), and ``x1``/``x2`` when no variable names were
given. :func:`normalize_equation` turns such text into the package's infix
syntax with a small, strict token translation (nothing is evaluated), and
:func:`to_pysr_equation` goes the other way for PySR's ``guesses``.

:class:`LossCallback` is what the Julia objective (``julia/loss_objective.jl``)
calls: it memoises on the text, and coalesces the requests that several Julia
threads make at once into one batched :meth:`Evaluator.evaluate
<evomal_sr.evaluator.Evaluator.evaluate>` call, run on one worker thread.
:func:`read_hall_of_fame_csv` and :func:`front_entries` bring PySR's hall of
fame back as front entries carrying the evaluator's learned weights.

This module imports neither PySR, juliacall nor torch.
"""

from __future__ import annotations

import csv
import itertools
import math
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError  # not the builtin on 3.10
from dataclasses import dataclass, field, replace

from evomal_sr.errors import ExpressionError
from evomal_sr.grammar.expression import Expression
from evomal_sr.grammar.nodes import to_text
from evomal_sr.grammar.operators import JULIA_ALIASES, OPERATORS, VARIABLES

_TOKEN = re.compile(
    r"(?P<space>[ \t]+)"
    r"|(?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eEf][+-]?[0-9]+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*[\u2080-\u2089]*)"
    r"|(?P<punct>[(),+\-*])"
)
_SUBSCRIPTS = str.maketrans("\u2080\u2081\u2082\u2083\u2084\u2085\u2086\u2087\u2088\u2089", "0123456789")
#: Names SymbolicRegression uses for unnamed features, in :data:`VARIABLES` order.
_FEATURE_NAMES = {f"x{i + 1}": name for i, name in enumerate(VARIABLES)}
_KNOWN_NAMES = frozenset(VARIABLES) | frozenset(OPERATORS) | frozenset(JULIA_ALIASES)


def normalize_equation(text: str) -> str:
    """Translate an equation printed by SymbolicRegression.jl into this package's syntax.

    Float32 literals (``1.5f0``, ``1.0f-7``) become Python floats, ``x1``/``x2``
    (or ``x₁``/``x₂``) become ``y``/``fx``; Julia operator aliases such as
    ``plog`` are kept (the parser accepts them). Anything else unexpected
    (``Inf32``, ``NaN``, ``/``, ``^``, braces, unknown names) is refused.

    Raises
    ------
    ExpressionError
        Naming the offending character or name.

    Examples
    --------
    >>> normalize_equation("-1.0f0 * (y * plog(fx))")
    '-1.0e0 * (y * plog(fx))'
    >>> normalize_equation("aq(x1 - x₂, 2.5e-3)")
    'aq(y - fx, 2.5e-3)'
    """
    if not isinstance(text, str):
        raise ExpressionError(f"expected equation text (str), got {type(text).__name__}")
    out, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ExpressionError(f"unexpected character {text[pos]!r} in equation {text!r}")
        pos = match.end()
        kind, token = match.lastgroup, match.group()
        if kind == "number":
            token = token.replace("f", "e")
        elif kind == "name":
            token = _normalize_name(token, text)
        out.append(token)
    return "".join(out)


def _normalize_name(token: str, text: str) -> str:
    plain = token.translate(_SUBSCRIPTS)
    if plain in _FEATURE_NAMES:
        return _FEATURE_NAMES[plain]
    if token not in _KNOWN_NAMES:
        raise ExpressionError(f"unknown name {token!r} in equation {text!r}")
    return token


def canonical_expression(text: str | Expression) -> Expression:
    """Parse PySR-printed (or canonical) text into an :class:`Expression`.

    Examples
    --------
    >>> str(canonical_expression("square(fx - y) + 1.0f-7"))
    '(square((fx - y)) + 1e-07)'
    """
    if isinstance(text, Expression):
        return text
    return Expression.parse(normalize_equation(text))


def to_pysr_equation(expression: str | Expression) -> str:
    """The expression in the syntax SymbolicRegression.jl parses (for ``guesses``).

    Operators take their Julia names and unary minus becomes ``(-1.0 * a)``,
    since the search has no negation operator.

    Examples
    --------
    >>> to_pysr_equation("-(y * log(fx))")
    '(-1.0 * (y * plog(fx)))'
    """

    return to_text(Expression.parse(expression).root, julia=True)


# -- PySR's hall of fame -------------------------------------------------------------------
@dataclass(frozen=True)
class HallOfFameRow:
    """One line of PySR's ``hall_of_fame.csv`` (``Complexity,Loss,Equation``)."""

    complexity: int
    loss: float
    equation: str


_JULIA_SPECIAL = {"Inf": math.inf, "Inf32": math.inf, "Inf16": math.inf, "NaN": math.nan, "NaN32": math.nan}


def _julia_float(text: str) -> float:
    text = text.strip()
    special = _JULIA_SPECIAL.get(text.lstrip("+-"))
    if special is not None:
        return -special if text.startswith("-") else special
    return float(text.replace("f", "e"))


def read_hall_of_fame_csv(path) -> list[HallOfFameRow]:
    """Rows of a ``hall_of_fame.csv`` written by SymbolicRegression.jl.

    Julia float spellings (``0.25f0``, ``Inf32``) are accepted.

    Raises
    ------
    ValueError
        If the file lacks the ``Complexity,Loss,Equation`` columns or holds an
        unreadable number.
    """
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"Complexity", "Loss", "Equation"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: not a PySR hall of fame (missing {', '.join(sorted(missing))})")
        return [HallOfFameRow(int(row["Complexity"]), _julia_float(row["Loss"]), row["Equation"].strip())
                for row in reader]


def front_entry(result):
    """A :class:`~evomal_sr.results.front.FrontEntry` for a trained ``FitnessResult``, else ``None``."""
    from evomal_sr.results.front import FrontEntry

    if result is None or not result.trained:
        return None
    return FrontEntry.from_result(result)


def front_entries(rows: Iterable[HallOfFameRow], lookup: Callable[[str], object]) -> list:
    """Hall-of-fame rows as front entries carrying the evaluator's learned weights.

    ``lookup(text)`` gives the evaluator's ``FitnessResult`` for an expression
    (e.g. :meth:`LossCallback.result_for`). A row whose fitness was shared from a
    gradient-equivalent expression is represented by that expression, whose
    weights were trained; unparseable, rejected or unknown rows are skipped.

    Examples
    --------
    >>> front_entries([HallOfFameRow(5, 0.3, "y * plog(fx)")], lambda text: None)
    []
    """
    entries = []
    for row in rows:
        try:
            result = lookup(str(canonical_expression(row.equation)))
        except ExpressionError:
            continue
        if result is not None and result.status == "equivalent" and result.reused_from:
            result = lookup(result.reused_from)
        entry = front_entry(result)
        if entry is not None:
            entries.append(entry)
    return entries


@dataclass
class BridgeStats:
    """Counters of a :class:`LossCallback`.

    Attributes
    ----------
    calls : int
        Fitness requests received (``submit`` and direct calls).
    memo_hits : int
        Requests answered from the memo or joined to an identical request in flight.
    invalid : int
        Requests refused without evaluation (unparseable, or lacking ``y`` or ``fx``).
    batches : int
        Calls made to the evaluator.
    batch_sizes : list of int
        Number of candidates in each of those calls.
    """

    calls: int = 0
    memo_hits: int = 0
    invalid: int = 0
    batches: int = 0
    batch_sizes: list[int] = field(default_factory=list)

    @property
    def evaluated(self) -> int:
        """Candidates handed to the evaluator."""
        return sum(self.batch_sizes)


_STOP = object()


def _finite_or_inf(value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.inf
    return value if not math.isnan(value) else math.inf


def _resolved(value: float) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


class LossCallback:
    """Fitness of PySR's candidates, memoised, batched and thread-safe.

    Every request is keyed on its text; the first request for an expression
    (after :func:`canonical_expression`) is queued, and one worker thread hands
    whatever has queued up within ``window`` seconds (or while it was busy) to
    ``evaluator.evaluate`` as one batch. Any failure (unparseable text, an
    expression lacking ``y`` or ``fx``, an evaluator exception, a NaN fitness)
    gives ``inf``. Call :meth:`close` (or use ``with``) to stop the worker.

    Parameters
    ----------
    evaluator : object
        Anything with ``evaluate(list[str]) -> list[FitnessResult]``, normally
        an :class:`~evomal_sr.evaluator.Evaluator` built with ``repair=False``.
    window : float
        Seconds the worker waits for more requests after the first of a batch.
    max_batch : int
        Largest batch handed to the evaluator.
    on_batch : callable, optional
        Called on the worker thread after each batch with the batch's
        ``FitnessResult`` objects (``None`` where the evaluator failed) and the
        seconds it took. An exception it raises is kept in :attr:`error`.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> class Fake:
    ...     def evaluate(self, texts):
    ...         return [SimpleNamespace(expression=t, fitness=0.25) for t in texts]
    >>> with LossCallback(Fake()) as callback:
    ...     callback("(y * plog(fx))"), callback("(y * log(fx))"), callback("log(fx)")
    (0.25, 0.25, inf)
    >>> callback.stats.batches, callback.stats.memo_hits
    (1, 1)
    """

    def __init__(self, evaluator, *, window: float = 0.02, max_batch: int = 256,
                 on_batch: Callable[[list, float], None] | None = None):
        if max_batch < 1 or window < 0:
            raise ValueError("max_batch must be >= 1 and window >= 0")
        self._evaluator = evaluator
        self._window = float(window)
        self._max_batch = int(max_batch)
        self._on_batch = on_batch
        self._lock = threading.Lock()
        self._by_text: dict[str, Future] = {}
        self._by_canonical: dict[str, Future] = {}
        self._tickets: dict[int, Future] = {}
        self._ticket_numbers = itertools.count(1)
        self._results: dict = {}
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self.stats = BridgeStats()
        #: The first exception raised by ``on_batch``, if any.
        self.error: BaseException | None = None
        self._worker = threading.Thread(target=self._serve, name="evomal-sr-pysr-bridge", daemon=True)
        self._worker.start()

    # -- the interface the Julia objective uses ------------------------------------
    def submit(self, text: str) -> int:
        """Queue a fitness request and return a ticket for :meth:`poll`."""
        future = self._future_for(text)
        with self._lock:
            ticket = next(self._ticket_numbers)
            self._tickets[ticket] = future
        return ticket

    def poll(self, ticket: int) -> float:
        """The fitness for ``ticket``, or NaN while it is still being computed.

        An unknown ticket gives ``inf``; a ticket is forgotten once answered.
        """
        with self._lock:
            future = self._tickets.get(ticket)
            if future is None:
                return math.inf
            if not future.done():
                return math.nan
            del self._tickets[ticket]
        return future.result()

    def __call__(self, text: str, timeout: float | None = None) -> float:
        """The fitness of ``text``, waiting for it (``inf`` after ``timeout`` seconds)."""
        try:
            return self._future_for(text).result(timeout)
        except FutureTimeoutError:
            return math.inf

    # -- results -----------------------------------------------------------------------
    def result_for(self, expression: str | Expression):
        """The evaluator's ``FitnessResult`` for an expression (any spelling), or ``None``."""
        try:
            key = str(canonical_expression(expression))
        except ExpressionError:
            return None
        with self._lock:
            return self._results.get(key)

    def results(self) -> dict:
        """Every result received, keyed by canonical expression (first result kept)."""
        with self._lock:
            return dict(self._results)

    def snapshot(self) -> BridgeStats:
        """A copy of :attr:`stats` taken under the lock."""
        with self._lock:
            return replace(self.stats, batch_sizes=list(self.stats.batch_sizes))

    # -- lifecycle ------------------------------------------------------------------------
    def close(self, timeout: float | None = None) -> None:
        """Stop the worker after the batch in progress; later requests get ``inf``."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(_STOP)
        self._worker.join(timeout)
        self._fail_pending()

    def __enter__(self) -> LossCallback:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------
    def _future_for(self, text) -> Future:
        with self._lock:
            self.stats.calls += 1
            future = self._by_text.get(text) if isinstance(text, str) else None
            if future is not None:
                self.stats.memo_hits += 1
                return future
        expr = self._parse(text)
        with self._lock:
            if expr is None:
                self.stats.invalid += 1
                future = _resolved(math.inf)
                if isinstance(text, str):
                    self._by_text[text] = future
                return future
            if self._closed:
                return _resolved(math.inf)
            key = str(expr)
            future = self._by_canonical.get(key)
            if future is not None:
                self.stats.memo_hits += 1
            else:
                future = self._by_canonical[key] = Future()
                self._queue.put((key, future))
            self._by_text[text] = future
            return future

    @staticmethod
    def _parse(text) -> Expression | None:
        try:
            expr = canonical_expression(text)
        except (ExpressionError, TypeError, ValueError, RecursionError):
            return None
        return expr if expr.is_complete() else None

    def _serve(self) -> None:
        try:
            while True:
                batch, stop = self._next_batch()
                if batch:
                    self._run_batch(batch)
                if stop:
                    return
        finally:
            with self._lock:
                self._closed = True
            self._fail_pending()

    def _next_batch(self) -> tuple[list, bool]:
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch, deadline = [first], time.monotonic() + self._window
        while len(batch) < self._max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    def _run_batch(self, batch: list) -> None:
        tick = time.perf_counter()
        keys = [key for key, _ in batch]
        results = self._evaluate(keys)
        with self._lock:
            self.stats.batches += 1
            self.stats.batch_sizes.append(len(keys))
            for key, result in zip(keys, results):
                if result is not None:
                    self._results.setdefault(key, result)
        for (_, future), result in zip(batch, results):
            _set(future, _finite_or_inf(getattr(result, "fitness", math.inf)))
        if self._on_batch is not None:
            try:
                self._on_batch(results, time.perf_counter() - tick)
            except Exception as exc:  # a progress hook must not stop the search
                self.error = self.error or exc

    def _evaluate(self, keys: Sequence[str]) -> list:
        """Results for ``keys``; a failing batch is retried one candidate at a time."""
        try:
            results = list(self._evaluator.evaluate(list(keys)))
            if len(results) == len(keys):
                return results
        except Exception:  # any evaluator failure: fall back, then give up with inf
            pass
        if len(keys) == 1:
            return [None]
        return [self._evaluate([key])[0] for key in keys]

    def _fail_pending(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                _set(item[1], math.inf)
        with self._lock:
            pending = [f for f in self._by_canonical.values() if not f.done()]
        for future in pending:
            _set(future, math.inf)


def _set(future: Future, value: float) -> None:
    try:
        future.set_result(value)
    except Exception:  # already resolved by close() racing the worker
        pass

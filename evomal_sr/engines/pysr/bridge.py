"""The Python side of the PySR engine's objective: the fitness callback.

:class:`LossCallback` is what the Julia objective (``julia/loss_objective.jl``)
calls: it memoises on the text, and coalesces the requests that several Julia
threads make at once into one batched :meth:`Evaluator.evaluate
<evomal_sr.scoring.evaluator.Evaluator.evaluate>` call, run on one worker thread. A
request that waits longer than the candidate timeout is given up (``inf`` and
a warning), so an evaluator that never answers cannot hold the search, or its
teardown, forever. Equation text itself is handled in
:mod:`evomal_sr.engines.pysr.text`.

This module imports neither PySR, juliacall nor torch.
"""

from __future__ import annotations

import itertools
import math
import queue
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError  # not the builtin on 3.10
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field, replace

from evomal_sr.engines.pysr.text import canonical_expression
from evomal_sr.errors import ExpressionError
from evomal_sr.grammar.expression import Expression

#: Default seconds a candidate may wait for its fitness before it is scored ``inf``.
DEFAULT_CANDIDATE_TIMEOUT = 3600.0


class CandidateTimeoutWarning(RuntimeWarning):
    """A candidate got no fitness within the candidate timeout and was scored ``inf``."""


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
    expired : int
        Requests given up after the candidate timeout.
    batches : int
        Calls made to the evaluator.
    batch_sizes : list of int
        Number of candidates in each of those calls.
    """

    calls: int = 0
    memo_hits: int = 0
    invalid: int = 0
    expired: int = 0
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
    (after :func:`~evomal_sr.engines.pysr.text.canonical_expression`) is queued,
    and one worker thread hands whatever has queued up within ``window``
    seconds (or while it was busy) to ``evaluator.evaluate`` as one batch. Any
    failure (unparseable text, an expression lacking ``y`` or ``fx``, an
    evaluator exception, a NaN fitness, no answer within ``timeout``) gives
    ``inf``. Call :meth:`close` (or use ``with``) to stop the worker.

    Parameters
    ----------
    evaluator : object
        Anything with ``evaluate(list[str]) -> list[FitnessResult]``, normally
        an :class:`~evomal_sr.scoring.evaluator.Evaluator` built with ``repair=False``.
    window : float
        Seconds the worker waits for more requests after the first of a batch;
        0 (for a serial search, where no second request can come) sends each
        request at once.
    max_batch : int
        Largest batch handed to the evaluator.
    on_batch : callable, optional
        Called on the worker thread after each batch with the batch's
        ``FitnessResult`` objects (``None`` where the evaluator failed) and the
        seconds it took. An exception it raises is kept in :attr:`error`.
    timeout : float
        Seconds a request may wait for its fitness; after that :meth:`poll`
        (and a direct call) gives ``inf`` with a :class:`CandidateTimeoutWarning`.
    poll_wait : float
        Seconds :meth:`poll` itself waits (with the GIL released) for a pending
        result before answering NaN. 0 keeps every poll short, as a
        multithreaded search needs; a serial search uses a positive wait so
        that the worker thread runs even if the caller holds the GIL.

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

    def __init__(
        self,
        evaluator,
        *,
        window: float = 0.02,
        max_batch: int = 256,
        on_batch: Callable[[list, float], None] | None = None,
        timeout: float = DEFAULT_CANDIDATE_TIMEOUT,
        poll_wait: float = 0.0,
    ):
        if max_batch < 1 or window < 0 or poll_wait < 0 or not timeout > 0:
            raise ValueError("max_batch must be >= 1, window and poll_wait >= 0, timeout > 0")
        self._evaluator = evaluator
        self.window = float(window)
        self.timeout = float(timeout)
        self.poll_wait = float(poll_wait)
        self._max_batch = int(max_batch)
        self._on_batch = on_batch
        self._lock = threading.Lock()
        self._by_text: dict[str, Future] = {}
        self._by_canonical: dict[str, Future] = {}
        self._tickets: dict[int, tuple[Future, float, str]] = {}
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
            self._tickets[ticket] = (future, time.monotonic(), str(text))
        return ticket

    def poll(self, ticket: int) -> float:
        """The fitness for ``ticket``, or NaN while it is still being computed.

        Waits up to ``poll_wait`` seconds for a pending result. An unknown
        ticket gives ``inf``, and so does one older than ``timeout`` (with a
        :class:`CandidateTimeoutWarning`); a ticket is forgotten once answered.
        """
        with self._lock:
            entry = self._tickets.get(ticket)
        if entry is None:
            return math.inf
        future, submitted, text = entry
        if self.poll_wait > 0 and not future.done():
            wait_for([future], timeout=self.poll_wait)  # blocks with the GIL released
        with self._lock:
            if future.done():
                self._tickets.pop(ticket, None)
                return future.result()
            if time.monotonic() - submitted <= self.timeout:
                return math.nan
            self._tickets.pop(ticket, None)
        self._expired(text, self.timeout)
        return math.inf

    def __call__(self, text: str, timeout: float | None = None) -> float:
        """The fitness of ``text``, waiting for it (``inf`` after ``timeout``, default :attr:`timeout`)."""
        seconds = self.timeout if timeout is None else timeout
        try:
            return self._future_for(text).result(seconds)
        except FutureTimeoutError:
            self._expired(str(text), seconds)
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
        """Stop the worker after the batch in progress; later requests get ``inf``.

        Waits at most ``timeout`` seconds for that batch; if it is still running
        then, warns and leaves the (daemon) worker behind.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(_STOP)
        self._worker.join(timeout)
        if timeout is not None and self._worker.is_alive():
            warnings.warn(
                f"the evaluator did not finish its batch within {timeout:g} s of the end of the "
                "PySR search; its worker thread was left running",
                CandidateTimeoutWarning,
                stacklevel=2,
            )
        self._fail_pending()

    def __enter__(self) -> LossCallback:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------
    def _expired(self, text: str, seconds: float) -> None:
        with self._lock:
            self.stats.expired += 1
        warnings.warn(
            f"no fitness for the PySR candidate {text!r} after {seconds:g} s (engine option "
            "candidate_timeout); it is scored inf",
            CandidateTimeoutWarning,
            stacklevel=3,
        )

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
        batch, deadline = [first], time.monotonic() + self.window
        while len(batch) < self._max_batch:
            remaining = deadline - time.monotonic()
            try:  # with no window left, take only what is queued already
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

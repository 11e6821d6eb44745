"""Progress of the Python API's long calls: a tqdm bar on stderr and a log line per step that matters.

:class:`~evomal_sr.search.estimator.LossSearch` and
:func:`~evomal_sr.evaluation.metatest.meta_test` show progress unless
``verbose=0``: a ``tqdm.auto`` bar on stderr (a widget in a notebook with
ipywidgets; text on a terminal, in a log file or in a notebook without them),
and one ``logging`` record per generation (logger ``evomal_sr.search``) or per
meta-test phase (logger ``evomal_sr.evaluation``) at level INFO, shown once
logging is configured, e.g.
``logging.basicConfig(level=logging.INFO)``. The command line has its own
progress (:mod:`evomal_sr.cli.progress`) and passes ``verbose=0``.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import numbers
import sys
import time

from evomal_sr.errors import ConfigError

SEARCH_LOG = logging.getLogger("evomal_sr.search")
METATEST_LOG = logging.getLogger("evomal_sr.evaluation")


def check_verbose(verbose) -> int:
    """``verbose`` as an int: 0 silent, 1 (or more) a bar and log lines; ``True``/``False`` mean 1/0.

    Examples
    --------
    >>> check_verbose(True), check_verbose(0)
    (1, 0)
    """
    if isinstance(verbose, numbers.Integral) and int(verbose) >= 0:
        return int(verbose)
    raise ConfigError(f"verbose must be 0 (silent) or 1 (a progress bar and log lines), got {verbose!r}")


def _bar(total: int, desc: str, unit: str, verbose: int, stream=None):
    if importlib.util.find_spec("ipywidgets") is None:  # tqdm.auto would warn in a notebook, then fall back to this
        from tqdm.std import tqdm
    else:
        from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=stream or sys.stderr,
        disable=not verbose,
        leave=True,
        dynamic_ncols=True,
    )


def _log(logger: logging.Logger, bar, message: str, *args) -> None:
    """``logger.info`` with console handlers going through ``tqdm.write``, so that the line and the bar do not mix."""
    if not logger.isEnabledFor(logging.INFO):
        return
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm(loggers=[logging.root], tqdm_class=type(bar)):  # the handlers basicConfig adds
        logger.info(message, *args)


class GenerationProgress:
    """A search's progress: called with each :class:`~evomal_sr.engines.base.GenerationRecord`.

    The bar advances to the record's generation (a resumed run starts part-way);
    its postfix and the log line give the best fitness so far, evaluations, cache
    hits, rejections, elapsed time and an estimate of the time left.

    Parameters
    ----------
    total : int
        Generations of the run.
    verbose : int
        0: nothing at all; 1: the bar and the log lines.
    stream : file, optional
        Where the bar goes (default ``sys.stderr``).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> progress = GenerationProgress(3, verbose=0)
    >>> progress(SimpleNamespace(generation=0, best_fitness=0.5, evaluations=4, exact_hits=1, equivalent_hits=0,
    ...                          rejected=2, totals={}))
    >>> progress.done, progress.best
    (1, 0.5)
    >>> progress.close()
    """

    def __init__(self, total: int, *, verbose: int = 1, stream=None):
        self.total, self.verbose = total, check_verbose(verbose)
        self.bar = _bar(total, "generations", "gen", self.verbose, stream)
        self.start, self.best, self.done = time.perf_counter(), math.inf, 0
        self.first: int | None = None  # the first generation seen (a resumed run starts part-way)

    def __call__(self, record) -> None:
        self.best = min(self.best, record.best_fitness)
        self.done = record.generation + 1
        first = self.first = record.generation if self.first is None else self.first
        if not self.verbose:
            return
        hits = record.exact_hits + record.equivalent_hits
        self.bar.set_postfix(
            best=f"{self.best:.4f}", evaluated=record.evaluations, cache=hits, rejected=record.rejected, refresh=False
        )
        self.bar.update(max(0, self.done - self.bar.n))
        elapsed = time.perf_counter() - self.start
        eta = elapsed / (self.done - first) * max(0, self.total - self.done)
        _log(
            SEARCH_LOG,
            self.bar,
            "generation %d/%d  best so far %.4f  evaluated %d  cache hits %d  rejected %d  elapsed %.1f s  ETA %.1f s",
            self.done,
            self.total,
            self.best,
            record.evaluations,
            hits,
            record.rejected,
            elapsed,
            eta,
        )

    def close(self) -> None:
        self.bar.close()


class StepProgress:
    """Progress over training steps split into equal ``phases`` (a meta-test's selection run, then final run).

    ``update(n)`` is the ``progress`` callback of the training loop; a log
    record marks the end of each phase.

    Examples
    --------
    >>> progress = StepProgress(2 * 10, verbose=0)
    >>> progress.update(10)
    >>> progress.phase
    'final run'
    >>> progress.close()
    """

    def __init__(
        self,
        total: int,
        *,
        verbose: int = 1,
        desc: str = "meta-test",
        phases: tuple[str, ...] = ("selection run", "final run"),
        stream=None,
    ):
        self.total, self.verbose, self.done = total, check_verbose(verbose), 0
        self.desc, self.phases = desc, phases
        self.bar = _bar(total, desc, "step", self.verbose, stream)
        self.start = time.perf_counter()

    @property
    def phase(self) -> str:
        size = max(1, self.total // len(self.phases))
        return self.phases[min(self.done // size, len(self.phases) - 1)]

    def update(self, n: int = 1) -> None:
        before = self.phase
        self.done += n
        if not self.verbose:
            return
        self.bar.update(n)
        if before != self.phase or self.done == self.total:
            _log(
                METATEST_LOG,
                self.bar,
                "%s: %s done (%d/%d steps), %.1f s",
                self.desc,
                before,
                min(self.done, self.total),
                self.total,
                time.perf_counter() - self.start,
            )

    def close(self) -> None:
        self.bar.close()

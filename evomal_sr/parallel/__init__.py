"""Where the evaluator's expensive work runs: the executor registry.

The driving process keeps the caches and the equivalence index (see
:class:`~evomal_sr.scoring.evaluator.Evaluator`); an executor scores chunks of unique
candidate expressions with the same batched code and returns their
:class:`~evomal_sr.scoring.evaluator.FitnessResult` records, in order. Three kinds:

``"in-process"`` (or ``None``)
    Everything in this process, as without an executor.
``"local"``, ``"local:N"`` or an int ``N``
    A :class:`dask.distributed.LocalCluster` of ``N`` worker processes (one
    thread each, ``cores // N`` torch threads), started and closed by the search.
an address such as ``"tcp://host:8786"``, or a :class:`dask.distributed.Client`
    An existing Dask cluster (``dask scheduler`` plus ``dask worker``,
    dask-jobqueue, dask-kubernetes); a passed client is left open.

Dask is optional (``pip install 'evomal-sr[dask]'``): this module never imports
it, and :func:`open_executor` raises one clear error when it is missing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os

from evomal_sr.errors import ConfigError, EngineUnavailableError

#: The executor kinds :func:`open_executor` knows.
EXECUTORS = ("in-process", "local", "scheduler")

#: Seconds to wait for a scheduler before giving up with one clear error.
SCHEDULER_TIMEOUT_S = 10.0

#: Unique candidates per chunk on Dask when ``chunk_size`` is not given (see docs/scaling.md).
DEFAULT_CHUNK_SIZE = 8

DASK_MISSING = "Dask is not installed: running on workers needs the dask extra, pip install 'evomal-sr[dask]'"


class InProcessExecutor:
    """Scores every chunk in this process with the driver's own evaluator.

    Examples
    --------
    >>> import evomal_sr as es
    >>> ev = es.Evaluator(es.Task.builtin("iris", seed=0), preset="tiny", executor=InProcessExecutor())
    >>> [str(r.status) for r in ev.evaluate(["-(y * log(fx))"])]
    ['ok']
    """

    kind = "in-process"
    default_chunk_size = None  # the whole generation is one batch, as without an executor

    def score_chunks(self, evaluator, chunks):
        """One list of results per chunk of unique candidate texts."""
        return [evaluator.score_unique(chunk) for chunk in chunks]

    def close(self) -> None:
        """Nothing to release."""


def dask_available() -> bool:
    """Whether ``dask.distributed`` can be imported here (without importing it)."""
    return importlib.util.find_spec("distributed") is not None


def require_dask() -> None:
    """Raise :class:`~evomal_sr.errors.EngineUnavailableError` naming the extra when Dask is missing."""
    if not dask_available():
        raise EngineUnavailableError(DASK_MISSING)


def executor_kind(spec) -> tuple[str, object]:
    """Classify an ``executor`` setting as ``(kind, argument)``; raises ConfigError when unusable.

    Examples
    --------
    >>> executor_kind(None), executor_kind(2), executor_kind("tcp://10.0.0.1:8786")
    (('in-process', None), ('local', 2), ('scheduler', 'tcp://10.0.0.1:8786'))
    """
    if spec is None or spec == "in-process":
        return "in-process", None
    if isinstance(spec, bool):
        raise ConfigError(
            f"executor must be 'in-process', 'local', a worker count, an address or a Client, not {spec!r}"
        )
    if isinstance(spec, int):
        if spec < 1:
            raise ConfigError(f"the number of workers must be at least 1, got {spec}")
        return "local", spec
    if isinstance(spec, str):
        if spec == "local":
            return "local", max(os.cpu_count() or 1, 1)
        if spec.startswith("local:"):
            count = spec.partition(":")[2]
            if not count.isdigit():
                raise ConfigError(f"executor {spec!r}: write local:N with N a number of workers")
            return executor_kind(int(count))
        if "://" in spec or ":" in spec:
            return "scheduler", spec
        raise ConfigError(
            f"unknown executor {spec!r}; give one of {', '.join(EXECUTORS[:2])}, local:N, "
            "a scheduler address (tcp://host:8786) or a dask.distributed.Client"
        )
    if hasattr(spec, "score_chunks"):
        return "custom", spec
    if type(spec).__module__.startswith("distributed") and hasattr(spec, "submit"):
        return "client", spec
    raise ConfigError(
        f"executor must be 'in-process', 'local', a worker count, an address or a Client, not {type(spec).__name__}"
    )


@contextlib.contextmanager
def open_executor(spec=None, *, timeout: float | None = None):
    """Open the executor ``spec`` describes for the length of a ``with`` block.

    Yields ``None`` for in-process (the evaluator's own path) or an object with
    ``score_chunks(evaluator, chunks)``; a cluster this opened is closed on exit.

    Examples
    --------
    >>> with open_executor("in-process") as executor:
    ...     print(executor)
    None
    """
    kind, arg = executor_kind(spec)
    if kind == "in-process":
        yield None
        return
    if kind == "custom":
        yield arg
        return
    require_dask()
    from evomal_sr.parallel.dask_executor import DaskExecutor

    if kind == "local":
        executor = DaskExecutor.local(arg)
    elif kind == "scheduler":
        executor = DaskExecutor.connect(arg, timeout=SCHEDULER_TIMEOUT_S if timeout is None else timeout)
    else:
        executor = DaskExecutor(arg)
    try:
        yield executor
    finally:
        executor.close()

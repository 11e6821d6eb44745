"""Scoring chunks of candidates on Dask distributed workers.

Imported only when an executor other than in-process is asked for; it needs
``dask[distributed]`` (the ``evomal-sr[dask]`` extra).

How the work is split: the driver sends the task and settings to every worker
once, as a :class:`EvaluatorPlugin` (Dask hands it to workers that join later,
such as the replacement of a killed one); the plugin builds an evaluator on the
worker and keeps it between generations. Each chunk is then one small task:
the plugin's name and a list of candidate texts in, a list of
:class:`~evomal_sr.scoring.evaluator.FitnessResult` out. A chunk lost with its worker is
rescheduled by Dask; since a result depends only on the expression, the task,
the settings and the seed, the answer is the same.

Ctrl-C: the worker processes of a LocalCluster started here share the
terminal's process group, so a Ctrl-C reaches them too. They ignore SIGINT
(inherited at spawn, and set again by the plugin on a replacement worker); the
driver alone gets the ``KeyboardInterrupt`` and shuts them down on its way out.
(While the workers start, a few seconds, the driver ignores SIGINT too: an
ignored signal is the only kind a spawned process inherits.)
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import uuid
from dataclasses import dataclass

import dask
from distributed import Client, LocalCluster, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from evomal_sr._version import __version__
from evomal_sr.core.memory import ALLOCATOR_ENVIRONMENT
from evomal_sr.errors import EngineUnavailableError
from evomal_sr.parallel import DEFAULT_CHUNK_SIZE


@dataclass(frozen=True)
class ScorerSpec:
    """What a worker needs to build an evaluator equal to the driver's (task, settings, seed, ...)."""

    task: object
    settings: object
    device: str
    seed: int
    batched: bool
    local_search: bool
    cuda_graph: bool = False
    program: str = "per-tree"  # how the scorer computes the losses (evomal_sr.core.validation.PROGRAMS)
    precision: str = "fp32"  # the model's arithmetic (evomal_sr.training.precision)
    channels_last: bool = False

    @classmethod
    def from_evaluator(cls, evaluator) -> ScorerSpec:
        return cls(
            task=evaluator.task,
            settings=evaluator.settings,
            device=str(evaluator.device),
            seed=evaluator.seed,
            batched=evaluator.batched,
            local_search=evaluator.local_search,
            cuda_graph=evaluator.cuda_graph,
            program=getattr(evaluator, "program", "per-tree"),
            precision=getattr(evaluator, "precision", "fp32"),
            channels_last=getattr(evaluator, "channels_last", False),
        )

    def build(self):
        """An evaluator for this spec (its caches stay empty: workers only score)."""
        from evomal_sr.scoring.evaluator import Evaluator

        return Evaluator(
            self.task,
            preset=self.settings,
            device=self.device,
            seed=self.seed,
            batched=self.batched,
            local_search=self.local_search,
            repair=False,
            cuda_graph=self.cuda_graph,
            program=self.program,
            precision=self.precision,
            channels_last=self.channels_last,
        )


class EvaluatorPlugin(WorkerPlugin):
    """Builds the worker's evaluator once, when the worker starts or joins.

    Parameters
    ----------
    spec : ScorerSpec
    torch_threads : int, optional
        ``torch.set_num_threads`` on the worker; ``None`` keeps the worker's setting.
    ignore_sigint : bool
        Make the worker process ignore SIGINT (only on a cluster this process
        started: its Ctrl-C is the driver's to handle).
    """

    def __init__(self, spec: ScorerSpec, torch_threads: int | None = None, ignore_sigint: bool = False):
        self.spec = spec
        self.torch_threads = torch_threads
        self.ignore_sigint = ignore_sigint
        self.evaluator = None

    def setup(self, worker) -> None:
        if self.ignore_sigint and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a replacement worker, spawned after start-up
        if self.torch_threads:
            import torch

            torch.set_num_threads(self.torch_threads)
        self.evaluator = self.spec.build()


def score_chunk(plugin_name: str, expressions: list[str]) -> list:
    """Run on a worker: score one chunk with the evaluator its plugin built."""
    plugin = get_worker().plugins.get(plugin_name)
    if plugin is None or plugin.evaluator is None:
        raise RuntimeError(f"this worker has no evaluator {plugin_name!r}; was the plugin registered?")
    return plugin.evaluator.score_unique(expressions)


@contextlib.contextmanager
def sigint_ignored_by_children():
    """Ignore SIGINT while worker processes are spawned, so that they inherit it ignored.

    An ignored signal stays ignored across ``exec``, and Python keeps it so; the
    driver's own handler is back when the block ends. Off the main thread
    (where signals cannot be set) this does nothing.

    Examples
    --------
    >>> with sigint_ignored_by_children():
    ...     signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    True
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _version_probe():
    """A function pickled by value, so that it runs even where evomal_sr cannot be imported."""

    def probe():
        try:
            import evomal_sr
        except ImportError as exc:
            return f"missing: {exc}"
        return str(evomal_sr.__version__)

    return probe


def check_workers(client) -> int:
    """Check every worker imports this version of evomal-sr; returns the number of workers.

    Examples
    --------
    >>> class Fake:
    ...     def run(self, function, on_error):
    ...         return {"tcp://w1:1": __version__}
    >>> check_workers(Fake())
    1
    """
    answers = client.run(_version_probe(), on_error="return")
    for address, answer in sorted(answers.items()):
        if isinstance(answer, BaseException) or str(answer).startswith("missing"):
            raise EngineUnavailableError(
                f"Dask worker {address} cannot import evomal_sr ({answer}); install "
                f"evomal-sr {__version__} on every worker: pip install 'evomal-sr[dask]'"
            )
        if answer != __version__:
            raise EngineUnavailableError(
                f"Dask worker {address} has evomal-sr {answer}, this process "
                f"{__version__}; install the same version everywhere"
            )
    if not answers:
        raise EngineUnavailableError("the Dask cluster has no workers; start some (dask worker ADDRESS)")
    return len(answers)


class DaskExecutor:
    """Scores chunks of unique candidates on the workers of a Dask client.

    Parameters
    ----------
    client : dask.distributed.Client
        Left open on :meth:`close` unless this executor created it.
    torch_threads : int, optional
        Torch threads per worker (``None``: the worker's own setting).
    default_chunk_size : int
        Chunk size when the evaluator sets none.

    Examples
    --------
    >>> with DaskExecutor.local(2) as executor:  # doctest: +SKIP
    ...     ev = Evaluator(task, preset="tiny", executor=executor)
    ...     results = ev.evaluate(candidates)
    """

    kind = "dask"

    def __init__(
        self,
        client,
        *,
        torch_threads: int | None = None,
        default_chunk_size: int = DEFAULT_CHUNK_SIZE,
        owned=(),
        ignore_sigint: bool = False,
    ):
        self.client = client
        self.torch_threads = torch_threads
        self.ignore_sigint = ignore_sigint  # workers of a LocalCluster started here
        self.default_chunk_size = default_chunk_size
        self._owned = tuple(owned)  # what close() shuts down: the client and cluster made here
        self._plugins: dict[int, tuple[object, str]] = {}
        try:
            self.n_workers = check_workers(client)
        except BaseException:
            self.close()
            raise

    @classmethod
    def local(cls, n_workers: int, **options) -> DaskExecutor:
        """A LocalCluster of ``n_workers`` processes, one thread each, ``cores // n`` torch threads."""
        threads = max(1, (os.cpu_count() or 1) // n_workers)
        # Dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536 (glibc hands freed memory
        # back at once); the evaluator's many short-lived tensors then cost page faults and a
        # visible share of a search's wall time (benchmarks/PERFORMANCE.md has the figures). The
        # workers get the settings the command line gives its own process (evomal_sr.core.memory),
        # as environment variables, which glibc reads when the worker process starts.
        allocator = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in ALLOCATOR_ENVIRONMENT.items()}
        with (
            dask.config.set(allocator),
            sigint_ignored_by_children(),
        ):  # Ctrl-C stops the driver, which closes the workers
            cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=logging.ERROR,
                env={"OMP_WAIT_POLICY": "PASSIVE"},
            )
        try:
            client = Client(cluster)
        except BaseException:
            cluster.close()
            raise
        return cls(client, torch_threads=threads, owned=(client, cluster), ignore_sigint=True, **options)

    @classmethod
    def connect(cls, address: str, *, timeout: float, **options) -> DaskExecutor:
        """A client of the scheduler at ``address``; one clear error when it is not reachable in ``timeout`` s."""
        try:
            client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise EngineUnavailableError(
                f"cannot reach the Dask scheduler at {address} within {timeout:g} s "
                f"({type(exc).__name__}); check the address and that "
                "`dask scheduler` is running"
            ) from None
        return cls(client, owned=(client,), **options)

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def score_chunks(self, evaluator, chunks: list[list[str]]) -> list[list]:
        """One list of results per chunk, in order; the chunks run in parallel on the workers."""
        from distributed import KilledWorker, wait

        name = self._plugin_for(evaluator)
        futures = [self.client.submit(score_chunk, name, list(chunk), pure=False) for chunk in chunks]
        try:
            # wait first, then gather what is ready: a Ctrl-C during a gather orphans its waiting tasks, and
            # closing the client then logs "Task exception was never retrieved" tracebacks
            wait(futures)
        except KeyboardInterrupt:
            with contextlib.suppress(Exception):  # a passed client's workers stop this generation's chunks
                self.client.cancel(futures)
            raise
        try:
            scored = self.client.gather(futures)
        except KilledWorker as exc:
            raise EngineUnavailableError(
                f"a chunk of candidates kept killing Dask workers ({exc}); see the workers' logs (memory limit?)"
            ) from None
        for chunk, results in zip(chunks, scored):
            if sorted(r.expression for r in results) != sorted(chunk):
                raise RuntimeError("a worker returned results for other candidates than it was sent")
        return scored

    def _plugin_for(self, evaluator) -> str:
        """Register the evaluator's plugin on first use (sends task and settings once per worker)."""
        known = self._plugins.get(id(evaluator))
        if known is not None and known[0] is evaluator:
            return known[1]
        name = f"evomal-sr-evaluator-{uuid.uuid4().hex}"
        plugin = EvaluatorPlugin(ScorerSpec.from_evaluator(evaluator), self.torch_threads, self.ignore_sigint)
        register = getattr(self.client, "register_plugin", None) or self.client.register_worker_plugin  # < 2023.9
        register(plugin, name=name)
        self._plugins[id(evaluator)] = (evaluator, name)
        return name

    def close(self) -> None:
        """Remove this executor's plugins; shut down the client and cluster it created."""
        plugins, self._plugins = list(self._plugins.values()), {}
        if not self._owned:
            for _, name in plugins:
                try:
                    self.client.unregister_worker_plugin(name)
                except Exception:  # a client already closed by its owner: nothing left to remove
                    pass
        for resource in self._owned:
            resource.close()
        self._owned = ()

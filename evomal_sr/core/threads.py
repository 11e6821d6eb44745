"""Scoped torch thread settings for the many tiny tensor ops of a search.

A candidate's training step on a small model is a few hundred microsecond-sized
ops. Splitting each over several OpenMP threads costs more in synchronisation
than it gains, and on a machine whose cores are shared, spinning OpenMP workers
steal the cores the main thread needs (``OMP_WAIT_POLICY=PASSIVE`` avoids the
spinning, but only when set before torch loads, which an API user never does).
Running the work with one torch thread avoids both: no parallel region is ever
entered, so no worker spins, whatever the environment or the import order.

:func:`torch_threads` sets the thread count for a block and restores it after;
:func:`auto_threads` picks the count the evaluator and meta-testing use when the
caller does not choose: one thread on CPU for models below
:data:`SMALL_MODEL_PARAMETERS` parameters, torch's own setting otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from evomal_sr.errors import ConfigError

#: Models with fewer parameters than this train on one CPU thread: for a small model the
#: threads' synchronisation costs more than they save. On the digits MLP 64-100-100-10
#: (17k parameters) one thread ran the evaluator faster than two on an idle 2-core
#: machine, and under a competing load it brought the API on par with the CLI (the
#: figures are in benchmarks/PERFORMANCE.md). The bound itself is a judgement: larger
#: models were not measured.
SMALL_MODEL_PARAMETERS = 1_000_000


def check_threads(threads) -> int | str | None:
    """Validate a ``threads`` setting: ``"auto"``, ``None`` (torch's own) or a positive int."""
    if threads is None or threads == "auto":
        return threads
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads must be 'auto', None or a positive integer, got {threads!r}")
    return threads


def auto_threads(threads, model: torch.nn.Module | None, device) -> int | None:
    """The torch thread count to use for ``model`` on ``device``; ``None`` leaves torch's.

    Parameters
    ----------
    threads : "auto", None or int
        ``"auto"``: one thread for a small model on CPU, else ``None``; an int is returned as is.
    model : torch.nn.Module or None
        The model that will be trained (its parameter count decides ``"auto"``).
    device : str or torch.device

    Examples
    --------
    >>> auto_threads("auto", torch.nn.Linear(3, 2), "cpu")
    1
    >>> auto_threads(4, None, "cpu"), auto_threads(None, None, "cpu")
    (4, None)
    """
    threads = check_threads(threads)
    if threads != "auto":
        return threads
    if torch.device(device).type != "cpu":
        return None
    size = sum(p.numel() for p in model.parameters()) if model is not None else 0
    return 1 if size < SMALL_MODEL_PARAMETERS else None


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch intra-op threads, restoring the previous count.

    ``None`` changes nothing. The setting is process-wide, so two threads of a
    program that use this at the same time should ask for the same count.

    Examples
    --------
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    if previous == threads:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

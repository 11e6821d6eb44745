"""A paper search's generations scored on two Python threads of one process, against one thread.

The one-program issue asks for a paper search in one process; a machine with two cores could score
a generation's two halves on two threads, as ``--workers 2`` does on two Dask processes (35% faster,
``PERFORMANCE.md``). This times that: a throwaway executor (``score_chunks`` on a thread pool, each
thread with its own evaluator built from :class:`~evomal_sr.parallel.dask_executor.ScorerSpec`, one
torch thread each) against the in-process path, alternating, on ``--generations`` of the paper preset
(digits, seed 0), and checks that both write the same ``pareto.csv``. Not part of the package: it
was measured and not kept (the per-op work holds the GIL).

    python benchmarks/bench_thread_executor.py [--generations 4] [--pairs 2]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import evomal_sr as es
from evomal_sr.core.threads import torch_threads
from evomal_sr.parallel.dask_executor import ScorerSpec


class ThreadExecutor:
    """Scores each chunk on a pool of ``n`` threads, each with an evaluator of its own."""

    kind = "threads"
    default_chunk_size = None

    def __init__(self, n: int):
        self.pool = ThreadPoolExecutor(n)
        self.local = threading.local()

    def _evaluator(self, driver):
        if getattr(self.local, "driver", None) is not driver:
            self.local.evaluator, self.local.driver = ScorerSpec.from_evaluator(driver).build(), driver
        return self.local.evaluator

    def score_chunks(self, evaluator, chunks):
        with torch_threads(1):  # process-wide: set once here, so the threads never change it under each other
            futures = [self.pool.submit(lambda c: self._evaluator(evaluator).score_unique(c), list(c)) for c in chunks]
            return [f.result() for f in futures]

    def close(self) -> None:
        self.pool.shutdown()


def run(mode: str, generations: int, folder: Path) -> tuple[float, str]:
    executor = ThreadExecutor(2) if mode == "threads" else None
    options = {"executor": executor, "chunk_size": "balanced"} if executor else {}
    tick = time.perf_counter()
    search = es.LossSearch(preset="paper", seed=0, generations=generations, out_dir=folder, force=True, verbose=0)
    search.set_params(**options).fit(es.Task.builtin("digits", seed=0))
    seconds = time.perf_counter() - tick
    if executor is not None:
        executor.close()
    return seconds, hashlib.sha256((folder / "pareto.csv").read_bytes()).hexdigest()[:8]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--pairs", type=int, default=2)
    args = parser.parse_args()
    print(f"load at start {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for pair in range(args.pairs):
            for mode in ("in-process", "threads") if pair % 2 == 0 else ("threads", "in-process"):
                seconds, digest = run(mode, args.generations, Path(tmp) / mode)
                print(f"{mode:10s} {seconds:6.1f} s  pareto.csv {digest}", flush=True)
    print(f"load at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

"""Benchmark: candidates per second in-process vs on local Dask workers, and the cost of a chunk.

In one run, side by side, the same seeded search (``LossSearch``, native engine)
runs in this process and on ``--workers`` local Dask worker processes; both are
timed without the cluster's start-up and one warm-up generation (the workers
import torch and build their evaluator), which are reported on their own line. The
rate is the candidates the evaluator actually scored (trained + rejected by the
rejection protocol; cache and equivalence hits cost nothing and are not
counted) per second of search. The fronts of the two runs are compared (they
must be equal). The overhead per chunk is the round trip of empty chunks
through the warm cluster (serialisation, scheduling, result transfer), timed
over ``--overhead-chunks`` of them.

Usage::

    python benchmarks/bench_dask.py                          # digits, quick preset, 3 generations, 2 workers
    python benchmarks/bench_dask.py --generations 8 --chunk-size 2
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: spinning threads hurt on shared cores


def _search(task, args, executor):
    from evomal_sr import LossSearch

    tick = time.perf_counter()
    fitted = LossSearch(
        preset=args.preset, generations=args.generations, seed=args.seed, executor=executor, chunk_size=args.chunk_size
    ).fit(task)
    seconds = time.perf_counter() - tick
    counters = fitted.evaluator_.counters
    scored = counters["trained"] + counters["rejected"] - counters["diverged"]  # diverged are counted in both
    return fitted, scored, seconds


def _chunk_overhead(executor, evaluator, chunks: int) -> float:
    executor.score_chunks(evaluator, [[]] * 2)  # the first call registers the plugin: not timed
    tick = time.perf_counter()
    executor.score_chunks(evaluator, [[]] * chunks)
    return (time.perf_counter() - tick) / chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overhead-chunks", type=int, default=50)
    args = parser.parse_args()

    import torch

    from evomal_sr.data.tasks import Task
    from evomal_sr.parallel.dask_executor import DaskExecutor

    task = Task.builtin(args.dataset, seed=args.seed)
    print(
        f"{args.dataset}, preset {args.preset}, {args.generations} generations, seed {args.seed}; "
        f"{os.cpu_count()} cores, torch {torch.__version__}"
    )
    here, scored_here, seconds_here = _search(task, args, None)
    tick = time.perf_counter()
    with DaskExecutor.local(args.workers) as executor:
        startup = time.perf_counter() - tick
        tick = time.perf_counter()
        _search(task, argparse.Namespace(**{**vars(args), "generations": 1}), executor)  # imports torch there
        warmup = time.perf_counter() - tick
        there, scored_there, seconds_there = _search(task, args, executor)
        overhead = _chunk_overhead(executor, there.evaluator_, args.overhead_chunks)
    chunk = args.chunk_size or executor.default_chunk_size
    rate_here, rate_there = scored_here / seconds_here, scored_there / seconds_there
    print(f"in-process      : {scored_here:4d} candidates in {seconds_here:7.1f} s = {rate_here:6.2f} candidates/s")
    print(
        f"{args.workers} Dask workers  : {scored_there:4d} candidates in {seconds_there:7.1f} s = "
        f"{rate_there:6.2f} candidates/s (chunks of {chunk})"
    )
    print(f"ratio workers / in-process: {rate_there / rate_here:.2f}x")
    print(
        f"cluster start-up {startup:.1f} s + warm-up generation {warmup:.1f} s (neither in the rates); "
        f"overhead per chunk: {overhead * 1e3:.1f} ms"
    )
    same = here.pareto_front_.entries == there.pareto_front_.entries
    print(f"same front: {same}")


if __name__ == "__main__":  # the worker processes import this module again
    main()

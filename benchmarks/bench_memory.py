"""A search with and without ``keep_freed_memory`` (``evomal_sr.core.memory``): wall time and page faults.

Each run is a fresh process (the allocator setting is process-wide): ``--generations`` of the paper
preset on digits in-process, alternating with and without the setting, ``--pairs`` times. It prints
each run's seconds, user and system CPU time and minor page faults.

    python benchmarks/bench_memory.py [--generations 8] [--pairs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time


def run(mode: str, generations: int) -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the command line sets it, before torch
    from evomal_sr.core.memory import keep_freed_memory

    if mode == "keep":
        keep_freed_memory()
    import evomal_sr as es

    tick = time.perf_counter()
    search = es.LossSearch(preset="paper", seed=0, generations=generations, out_dir=tempfile.mkdtemp(), verbose=0)
    search.set_params(force=True).fit(es.Task.builtin("digits", seed=0))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"{mode:8s} {time.perf_counter() - tick:6.1f} s  user {usage.ru_utime:6.1f} s  sys {usage.ru_stime:5.2f} s  "
        f"minor faults {usage.ru_minflt}",
        flush=True,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--run", choices=["keep", "default"], help=argparse.SUPPRESS)  # one fresh process's run
    args = parser.parse_args(argv)
    if args.run:
        run(args.run, args.generations)
        return 0
    print(f"load average at start: {os.getloadavg()}")
    for _ in range(args.pairs):
        for mode in ("keep", "default"):
            command = [sys.executable, __file__, "--run", mode, "--generations", str(args.generations)]
            subprocess.run(command, check=True)
    print(f"load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: the Python API against the ``evomal-sr`` command, side by side, under a CPU load.

Runs the same search (``--dataset digits --preset quick --seed 0`` by default)
three ways, each in a fresh process whose environment has no
``OMP_WAIT_POLICY`` (as a user's Python session has none):

* ``cli``: ``python cli.py search ...`` (the command sets ``OMP_WAIT_POLICY=PASSIVE``
  before torch loads);
* ``api torch-first``: ``import torch`` then ``evomal_sr.LossSearch(...).fit(task)``,
  as in the README;
* ``api evomal-first``: the same with ``import evomal_sr`` first.

While they run, ``--load`` busy-looping processes (default: one per CPU)
compete for the cores, as other users of a shared machine do. Rounds are
interleaved (cli, api, api, cli, ...) so a change in background load hits every
mode alike; the script prints each round's wall times (whole process, imports
included) and the API/CLI ratios, best against best.

Usage::

    python benchmarks/bench_api_vs_cli.py                    # 2 rounds, quick preset, 2 load processes
    python benchmarks/bench_api_vs_cli.py --rounds 3 --load 1 --preset tiny
    PYTHONPATH=/some/older/checkout python benchmarks/bench_api_vs_cli.py   # another version
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

API = """
import sys, time
start = time.perf_counter()
if sys.argv[1] == "torch-first":
    import torch  # noqa: F401
import evomal_sr as es
task = es.Task.builtin(sys.argv[2], seed=int(sys.argv[4]))
search = es.LossSearch(engine="native", preset=sys.argv[3], seed=int(sys.argv[4])).fit(task)
search.pareto_front_.to_csv(sys.argv[5])
"""

BUSY = "while True:\n    pass\n"


def clean_env() -> dict:
    """The caller's environment without the OpenMP/MKL settings a user would not have set."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "GOMP_SPINCOUNT")
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def command(mode: str, args, out: Path) -> list[str]:
    if mode == "cli":
        return [
            sys.executable,
            str(ROOT / "cli.py"),
            "search",
            "--dataset",
            args.dataset,
            "--preset",
            args.preset,
            "--seed",
            str(args.seed),
            "--out",
            str(out),
            "--quiet",
        ]
    order = mode.split()[-1]
    return [sys.executable, "-c", API, order, args.dataset, args.preset, str(args.seed), str(out / "pareto.csv")]


def run_once(mode: str, args, workdir: Path, index: int) -> float:
    out = workdir / f"{mode.replace(' ', '_')}_{index}"
    out.mkdir(parents=True, exist_ok=True)
    tick = time.perf_counter()
    proc = subprocess.run(command(mode, args, out), env=clean_env(), cwd=workdir, capture_output=True, text=True)
    seconds = time.perf_counter() - tick
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return seconds


def front_columns(path: Path) -> list[str]:
    """The Complexity and Loss columns of a pareto.csv (the Equation text may be quoted)."""
    return [",".join(line.split(",")[:2]) for line in path.read_text().splitlines()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    parser.add_argument(
        "--load", type=int, default=os.cpu_count() or 1, help="competing busy-loop processes (default: one per CPU)"
    )
    args = parser.parse_args(argv)

    modes = ["cli", "api torch-first", "api evomal-first"]
    print(
        f"API vs CLI: {args.dataset}, preset {args.preset}, seed {args.seed}, {os.cpu_count()} CPUs, "
        f"{args.load} competing busy process(es), load average at start {os.getloadavg()[0]:.2f}; "
        f"OMP_WAIT_POLICY unset in every child",
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a timeout still stops the busy processes
    load = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.load)]
    times: dict[str, list[float]] = {m: [] for m in modes}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            for r in range(args.rounds):
                order = modes if r % 2 == 0 else modes[::-1]
                for mode in order:
                    times[mode].append(run_once(mode, args, workdir, r))
                    print(f"    {mode}: {times[mode][-1]:.1f} s", flush=True)
                print(f"  round {r}: " + ", ".join(f"{m} {times[m][-1]:.1f} s" for m in modes))
            fronts = {m: front_columns(workdir / f"{m.replace(' ', '_')}_0" / "pareto.csv") for m in modes}
    finally:
        for proc in load:
            proc.kill()
            proc.wait()
    cli = min(times["cli"])
    for mode in modes[1:]:
        per_round = [a / c for a, c in zip(times[mode], times["cli"])]
        print(
            f"  {mode:17s} / cli: {min(times[mode]) / cli:.2f}x best vs best "
            f"(per round {min(per_round):.2f}-{max(per_round):.2f}x)"
        )
    same = all(fronts[m] == fronts["cli"] for m in modes)
    print(f"  fronts (Complexity, Loss) identical across modes: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())

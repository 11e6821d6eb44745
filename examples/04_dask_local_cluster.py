"""Score candidates on a Dask cluster: a local cluster of two worker processes.

What it shows
-------------
- starting a ``distributed.LocalCluster`` (2 workers, 1 thread each) and passing its
  ``Client`` to ``es.LossSearch(executor=client)``: each generation's candidates are split
  into chunks that the workers score; the client is left open for you to close;
- ``executor="local:2"``, the short form (the search starts and closes the cluster itself),
  and ``executor="tcp://host:8786"`` for a cluster that already runs (not run here);
- that the front is the same as in-process, byte for byte (``pareto.csv``).

Needs the ``dask`` extra: ``pip install "evomal-sr[dask]"``.

How long
--------
One to two minutes on two CPU cores (preset ``quick`` on ``iris``, run twice: on the cluster
and in-process; 1 min 54 s on a busy two-core machine, where the Dask run took 64 s and the
in-process one 30 s); ``--tiny`` about 10-20 s, most of it starting the worker processes.
Workers pay off with idle cores to spare and with larger models or populations.

Run::

    python examples/04_dask_local_cluster.py [--out DIR] [--workers 2] [--tiny]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import evomal_sr as es


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: a new temporary folder)")
    parser.add_argument("--dataset", default="iris", help="a built-in dataset (iris, digits, wine, ...)")
    parser.add_argument("--preset", default="quick", help="search budget: tiny, quick, standard or paper")
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tiny",
        action="store_true",
        default=bool(os.environ.get("EVOMAL_EXAMPLES_TINY")),
        help="smoke-test budget (also with EVOMAL_EXAMPLES_TINY=1)",
    )
    args = parser.parse_args()
    if args.tiny:
        args.preset = "tiny"
    args.out = Path(args.out or tempfile.mkdtemp(prefix="evomal-example4-"))
    return args


def main() -> None:
    from distributed import Client, LocalCluster  # the dask extra

    args = parse_args()
    task = es.Task.builtin(args.dataset, seed=args.seed)
    settings = {"preset": args.preset, "seed": args.seed}
    if args.tiny:
        settings.update(population=6, generations=2)

    # worker processes, one thread each: the small models train fastest single-threaded
    with (
        LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
        ) as cluster,
        Client(cluster) as client,
    ):
        print(f"cluster: {len(client.scheduler_info()['workers'])} workers, dashboard {client.dashboard_link}")
        on_dask = es.LossSearch(executor=client, chunk_size="balanced", out_dir=args.out / "dask", **settings)
        on_dask.fit(task)
    print(on_dask.pareto_front_.table())

    # the same search in this process: the same front, bit for bit
    es.LossSearch(out_dir=args.out / "in-process", **settings).fit(task)
    same = (args.out / "dask" / "pareto.csv").read_bytes() == (args.out / "in-process" / "pareto.csv").read_bytes()
    print(f"same pareto.csv on Dask and in-process: {same}")
    if not same:
        raise SystemExit("the fronts differ")
    print(f"results in {args.out}")


if __name__ == "__main__":  # needed: the worker processes re-import this file
    main()

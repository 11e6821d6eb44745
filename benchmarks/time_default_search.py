"""Time the default search, ``LossSearch(seed=0).fit(task)``, alone on tasks of the suite.

Usage::

    python benchmarks/time_default_search.py wine-noise20-val digits-noise30-val
    python benchmarks/time_default_search.py --fitness-seeds 2 mnist1d-noise20-val   # a setting changed
    python benchmarks/time_default_search.py --set fitness_lr_grid=2 --set fitness_lr_ratio=10 mnist1d-noise20-val

Prints, per task, the search's wall time with its final selection, the selection's share,
the returned loss and the load average (run it on an otherwise idle machine).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from suite import TASKS  # noqa: E402

import evomal_sr as es  # noqa: E402


def _setting_value(text: str):
    """A number where the text is one (``10``, ``3.1623``, ``1e-3``), else the text (``none``, ``mae``);
    ``resolve_preset`` validates it against the setting's type."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (int, float)) else text


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tasks", nargs="+", help="keys of the suite (benchmarks/suite.py)")
    parser.add_argument("--fitness-seeds", type=int, default=None, help="override fitness_seeds")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override any setting")
    args = parser.parse_args(argv)
    overrides: dict[str, object] = {} if args.fitness_seeds is None else {"fitness_seeds": args.fitness_seeds}
    for item in args.set:
        name, _, value = item.partition("=")
        overrides[name] = _setting_value(value)
    print("load at start", os.getloadavg(), "overrides", overrides, flush=True)
    for key in args.tasks:
        task = TASKS[key].build(0)
        tick = time.perf_counter()
        search = es.LossSearch(seed=0, verbose=0, **overrides).fit(task)
        seconds = time.perf_counter() - tick
        print(
            f"{key}: search + selection {seconds:.1f} s (selection {search.selection_.seconds:.1f} s), "
            f"returned {search.selection_.winner}; load {os.getloadavg()}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

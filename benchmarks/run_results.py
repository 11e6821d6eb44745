"""Does the learned loss help on tasks the defaults were not chosen on? Search, meta-test, write RESULTS.md.

For each task of the suite (``benchmarks/suite.py``: a development half, on which
defaults may be chosen, and an evaluation half, looked at only to report) this script

1. runs the default search, ``LossSearch(seed=...)`` (the ``standard`` preset: the
   evolution, then the final selection of ``evomal_sr.evaluation.selection``), timing
   the search and its selection;
2. meta-tests on the fair protocol (``meta_test(..., baselines="zoo", tune_lr=True)``:
   every method at its own lr of the grid, early-stopped, the same seeds, initialisations
   and minibatches, paired differences) the loss the search returned, the front's pick
   without the selection (the ablation), the selection's short list of learned losses
   (for the rank agreement), every known loss, and the ``2 x standard`` control;
3. writes everything under ``benchmarks/results/suite/<task>/`` and the report
   ``benchmarks/RESULTS.md`` (``results_report.py``), regenerated from those files.

Usage::

    python benchmarks/run_results.py --half evaluation          # one half (or development, all)
    python benchmarks/run_results.py --tasks digits,wine-pair30  # a subset
    python benchmarks/run_results.py --fast                      # smoke run, a few minutes
    python benchmarks/run_results.py --report-only               # rewrite RESULTS.md from saved results
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from results_report import write_report  # noqa: E402
from suite import TASKS, half  # noqa: E402
from task_results import selection_signature  # noqa: E402

from evomal_sr import LossSearch  # noqa: E402
from evomal_sr.core.fileio import atomic_write_json  # noqa: E402
from evomal_sr.evaluation.metatest import meta_test  # noqa: E402
from evomal_sr.evaluation.selection import SCORINGS, select_with_settings, shortlist_entries  # noqa: E402
from evomal_sr.losses.zoo import ZOO_EXPRESSIONS, known_loss  # noqa: E402

CONTROL = "2 x standard"
STANDARD = {"classification": "cross-entropy", "regression": "mse"}
RETURNED, FRONT_PICK = "returned (default search)", "front's pick (no final selection)"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--half", default="all", help="development, evaluation or all")
    parser.add_argument("--tasks", default=None, help=f"comma-separated subset of {', '.join(TASKS)}")
    parser.add_argument("--fast", action="store_true", help="tiny budgets: a smoke run")
    parser.add_argument("--seed", type=int, default=0, help="seed of every search and of the data splits")
    parser.add_argument("--seeds", type=int, default=5, help="meta-test seeds")
    parser.add_argument("--steps", type=int, default=3000, help="SGD steps of meta-testing")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, default=None, help="folder for per-task results")
    parser.add_argument("--report", type=Path, default=None, help="the Markdown report")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the report from saved results")
    parser.add_argument(
        "--reselect",
        action="store_true",
        help="rerun the final selection of finished tasks with the current default selection settings",
    )
    args = parser.parse_args(argv)
    if args.fast:
        args.seeds, args.steps = 2, 100
    if args.out is None:
        args.out = Path(tempfile.gettempdir()) / "evomal-sr-fast-results" if args.fast else ROOT / "results" / "suite"
    if args.report is None:
        args.report = args.out / "RESULTS.md" if args.fast else ROOT / "RESULTS.md"
    return args


class ScaledLoss(torch.nn.Module):
    """A known loss times ``factor``: SGD on it is SGD on that loss with ``factor`` x the lr."""

    n_parameters = 0

    def __init__(self, base: torch.nn.Module, factor: float = 2.0):
        super().__init__()
        self.base, self.factor, self.task = base, float(factor), base.task

    def forward(self, output, target):
        return self.factor * self.base(output, target)

    def per_copy(self, outputs, targets):
        return self.factor * self.base.per_copy(outputs, targets)

    def describe(self) -> str:
        return f"{self.factor:g} x {self.base.name}"


def search_scores(search, kind: str) -> dict[str, float]:
    """The search's own score (validation error under partial training) of each short-listed loss.

    Learned losses carry theirs; a known loss has one where the grammar writes it (the search
    scored it in its first population; the evaluator's cache answers without training again).
    """
    scores = {r.name: r.search_fitness for r in search.selection_.rows if r.search_fitness is not None}
    written = {name: text for name, (text, _) in ZOO_EXPRESSIONS[kind].items()}
    names = [r.name for r in search.selection_.rows if r.name in written]
    results = search.evaluator_.evaluate([written[n] for n in names])
    scores.update({n: r.fitness for n, r in zip(names, results)})
    return scores


def run_task(key: str, args, info: dict, command: str) -> None:
    spec = TASKS[key]
    folder = args.out / key
    folder.mkdir(parents=True, exist_ok=True)
    print(f"[{key}] {spec.title}", flush=True)
    task = spec.build(args.seed)
    options = {"preset": "tiny", "final_selection": "fair", "selection_steps": 50} if args.fast else {}
    tick = time.perf_counter()
    search = LossSearch(seed=args.seed, out_dir=folder / "search", force=True, **options).fit(task)
    search_seconds = time.perf_counter() - tick
    (folder / "search" / "checkpoint.json").unlink(missing_ok=True)  # resume state only
    selection = search.selection_
    print(
        f"  search + selection: {search_seconds:.1f} s (selection {selection.seconds:.1f} s)\n{selection}", flush=True
    )
    alternative = _alternative_selection(search, task)
    print(f"  the other scoring: {alternative.seconds:.1f} s\n{alternative}", flush=True)
    learned = {r.name: m for r, m in zip(_learned_rows(selection), _shortlist_modules(search, task.kind))}
    losses = {
        **learned,
        FRONT_PICK: search.best_learned_loss_,
        CONTROL: ScaledLoss(known_loss(STANDARD[task.kind], task.kind)),
    }
    tick = time.perf_counter()
    report = meta_test(
        losses, task, seeds=args.seeds, steps=args.steps, baselines="zoo", tune_lr=True, preset="quick", seed=args.seed
    )
    print(f"  meta-test: {time.perf_counter() - tick:.1f} s\n{report}", flush=True)
    report.to_json(folder / "metatest.json")
    atomic_write_json(
        folder / "search.json",
        {
            "task": task.describe(),
            "suite": {
                "key": key,
                "half": spec.half,
                "condition": spec.condition,
                "noisy": spec.noisy,
                "legacy": spec.legacy,
                "options": spec.options,
            },
            "search_seconds": search_seconds,
            "selection": selection.to_dict(),
            "selection_alternative": alternative.to_dict(),
            "search_scores": search_scores(search, task.kind),
            "front_pick": str(search.best_learned_loss_.expression),
            "returned": selection.winner,
            "command": command,
            "machine": info,
        },
    )


def _alternative_selection(search, task):
    """The final selection with the other ``selection_scoring`` (the ablation of that setting)."""
    other = next(s for s in SCORINGS if s != search.settings_.selection_scoring)
    return select_with_settings(
        search.pareto_front_, task, search.settings_, seed=search.seed, verbose=0, scoring=other
    )


def reselect(key: str, args) -> None:
    """Rerun a finished task's final selection with the current default settings; its meta-test stays valid.

    The meta-test holds every short-listed and known loss, so the winner of any selection setting is
    one of its rows. The selection the task was run with becomes ``selection_alternative`` when its
    scoring differs, else joins ``selections_before`` (files from before ``selection_scoring``
    existed used ``"folds"``).
    """
    from evomal_sr.core.fileio import read_json
    from evomal_sr.core.presets import resolve_preset
    from evomal_sr.results.front import load_front

    folder = args.out / key
    info = read_json(folder / "search.json", ValueError, "search summary")
    settings = resolve_preset("standard")
    old = info["selection"]
    old.setdefault("scoring", "folds")
    wanted = (
        settings.selection_scoring,
        settings.selection_steps,
        settings.selection_folds,
        settings.selection_finalists,
        settings.selection_prior,
    )
    if selection_signature(old) == wanted and old.get("margin") == settings.selection_margin:
        print(f"[{key}] already selected with {wanted}", flush=True)
        return
    new = _ablation_run(key, wanted, settings.selection_margin)
    if new is None:
        task = TASKS[key].build(args.seed)
        front = load_front(folder / "search" / "pareto.json")
        result = select_with_settings(front, task, settings, seed=args.seed, verbose=0)
        print(result, flush=True)
        new = result.to_dict()
    print(f"[{key}] reselected: {new['seconds']:.1f} s ({new.get('source', 'run now')}): {new['verdict']}", flush=True)
    info["search_seconds"] += new["seconds"] - old["seconds"]
    if old["scoring"] == settings.selection_scoring:  # the other scoring's run stays the alternative
        info.setdefault("selections_before", []).append(old)
    else:
        info["selection_alternative"] = old
    info["selection"], info["returned"] = new, new["winner"]
    info["reselected"] = {"command": " ".join(sys.argv), "machine": machine()}
    atomic_write_json(folder / "search.json", info)


def _ablation_run(key: str, wanted: tuple, margin: float) -> dict | None:
    """The same selection (the suite's saved front, the same settings) run before by ``ablation.py``, if any."""
    from evomal_sr.core.fileio import read_json

    for path in sorted((ROOT / "results" / "ablation").glob(f"*/{key}.json")):
        if (path.parent / key).is_dir():
            continue  # a search variant: its own front
        chosen = read_json(path, ValueError, "selection")["selection"]
        if selection_signature(chosen) == wanted and chosen.get("margin") == margin:
            return {**chosen, "source": str(path.relative_to(ROOT))}
    return None


def _learned_rows(selection):
    return [r for r in selection.rows if r.kind == "learned"]


def _shortlist_modules(search, kind: str) -> list:
    entries = shortlist_entries(search.pareto_front_, search.settings_.selection_shortlist)
    return [e.loss(kind, metadata={"fitness": e.fitness}) for e in entries]


def machine() -> dict:
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "uname": " ".join(platform.uname()),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "load": load,
        "commit": _git("rev-parse", "--short", "HEAD").strip() or "unknown",
        "changed": [
            line[3:]
            for line in _git("status", "--porcelain", "--untracked-files=no").splitlines()
            if line and not line[3:].startswith("benchmarks/")
        ],
    }


def _git(*args) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT.parent, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout if done.returncode == 0 else ""


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    keys = [k.strip() for k in args.tasks.split(",") if k.strip()] if args.tasks else [t.key for t in half(args.half)]
    unknown = sorted(set(keys) - set(TASKS))
    if unknown:
        raise SystemExit(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    if args.reselect:
        for key in keys:
            if (args.out / key / "metatest.json").exists():
                reselect(key, args)
    elif not args.report_only:
        info = machine()
        command = " ".join(shlex.quote(a) for a in ["python", "benchmarks/run_results.py", *sys.argv[1:]])
        for key in keys:
            run_task(key, args, info, command)
    write_report(args.out, args.report)
    print(f"wrote {args.report}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

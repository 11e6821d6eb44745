"""Does the learned loss help? Search with EvoMAL and the baselines, meta-test, write RESULTS.md.

For each task (digits, digits with 40% label noise, diabetes, mnist1d; MLP
models) this script

1. searches for a loss with each method at a stated budget: EvoMAL
   (``LossSearch``), GP-LFL (``LossSearch(local_search=False)``), ML3
   (``train_ml3``) and TaylorGLO (``train_taylorglo``), timing each;
2. meta-tests the four learned losses and the standard loss (cross-entropy or
   MSE) with the same seeds (same initialisations, same minibatches);
3. writes everything under ``benchmarks/results/<task>/`` (run folders, saved
   losses, ``metatest.json``/``.csv``, ``curves.png``) and the report
   ``benchmarks/RESULTS.md``, regenerated from those files.

Usage::

    python benchmarks/run_results.py              # the full report (about 20 min on 2 cores)
    python benchmarks/run_results.py --fast       # smoke run, a couple of minutes
    python benchmarks/run_results.py --report-only  # rewrite RESULTS.md from saved results
"""

from __future__ import annotations

import argparse
import math
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

import torch  # noqa: E402

from evomal_sr import LossSearch, Task  # noqa: E402
from evomal_sr.core.fileio import atomic_write_json, atomic_write_text, read_json  # noqa: E402
from evomal_sr.core.presets import Preset, resolve_preset  # noqa: E402
from evomal_sr.evaluation.metatest import MetaTestReport, meta_test  # noqa: E402
from evomal_sr.losses.standard import StandardLoss  # noqa: E402
from evomal_sr.search.baselines import train_ml3, train_taylorglo  # noqa: E402

#: Report name -> (built-in dataset, label noise); every task uses the MLP.
TASKS = {
    "digits": ("digits", 0.0),
    "digits-noise40": ("digits", 0.4),
    "diabetes": ("diabetes", 0.0),
    "mnist1d": ("mnist1d", 0.0),
}
METHODS = ("EvoMAL", "GP-LFL", "ML3", "TaylorGLO")
#: Name of the control row: the standard loss times 2 (twice the learning rate).
CONTROL = "2 x standard"
#: Extra EvoMAL searches (task -> row name -> preset overrides), reported beside the four methods but not
#: counted in the verdict: the paper's 500-step fitness instead of the preset's shorter partial training.
ABLATIONS = {"digits-noise40": {"EvoMAL, 500-step fitness": {"train_steps": 500}}}

#: Budgets. ``search`` is the preset (plus overrides) of EvoMAL / GP-LFL, whose
#: settings also give ML3 and TaylorGLO their partial training and learning rates.
BUDGETS = {
    "full": {"preset": "quick", "overrides": {}, "ml3_iterations": 500, "taylorglo_generations": None,
             "taylorglo_population": 25, "meta_test_steps": None, "seeds": 5, "control": True,
             "ablations": True},
    "fast": {"preset": "tiny", "overrides": {}, "ml3_iterations": 10, "taylorglo_generations": 1,
             "taylorglo_population": 25, "meta_test_steps": 100, "seeds": 2, "control": True,
             "ablations": False},
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="tiny budgets: a smoke run of a couple of minutes")
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated subset of {', '.join(TASKS)}")
    parser.add_argument("--seed", type=int, default=0, help="seed of every search and of the data splits")
    parser.add_argument("--seeds", type=int, default=None, help="meta-test seeds (default 5; --fast 2)")
    parser.add_argument("--meta-test-steps", type=int, default=None,
                        help="SGD steps of meta-testing (default the preset's meta_test_steps)")
    parser.add_argument("--no-control", action="store_true", help="skip the 2 x standard-loss control row")
    parser.add_argument("--no-ablations", action="store_true", help="skip the extra EvoMAL searches (ABLATIONS)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (1 is fastest for these small models on a shared machine)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for per-task results (default benchmarks/results; --fast: a temporary folder)")
    parser.add_argument("--report", type=Path, default=None,
                        help="the Markdown report (default benchmarks/RESULTS.md; --fast: inside --out)")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the report from saved results")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = Path(tempfile.gettempdir()) / "evomal-sr-fast-results" if args.fast else ROOT / "results"
    if args.report is None:
        args.report = args.out / "RESULTS.md" if args.fast else ROOT / "RESULTS.md"
    return args


def budget_of(args) -> dict:
    budget = dict(BUDGETS["fast" if args.fast else "full"])
    if args.seeds is not None:
        budget["seeds"] = args.seeds
    if args.meta_test_steps is not None:
        budget["meta_test_steps"] = args.meta_test_steps
    budget["settings"] = resolve_preset(budget["preset"], **budget["overrides"]).to_dict()  # as run
    budget["control"] = not args.no_control
    budget["ablations"] = budget["ablations"] and not args.no_ablations
    return budget


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


def search_all(task: Task, folder: Path, budget: dict, seed: int) -> dict:
    """Run every method's search; save each loss; return ``{method: (loss, seconds, detail)}``."""
    preset, overrides = budget["preset"], budget["overrides"]
    found = {}
    for name, local in (("EvoMAL", True), ("GP-LFL", False)):
        tick = time.perf_counter()
        search = LossSearch(preset=preset, seed=seed, local_search=local, out_dir=folder / _slug(name),
                            **overrides).fit(task)
        seconds = time.perf_counter() - tick
        (folder / _slug(name) / "checkpoint.json").unlink(missing_ok=True)  # resume state only; 100+ kB
        loss = search.best_loss_
        if loss is None:
            print(f"  {name}: empty front, nothing to meta-test", flush=True)
            continue
        found[name] = (loss, seconds, {"evaluated": search.evaluator_.counters["requested"],
                                       "validation": loss.metadata.get("fitness")})
    tick = time.perf_counter()
    ml3 = train_ml3(task, preset=preset, seed=seed, iterations=budget["ml3_iterations"], **overrides)
    found["ML3"] = (ml3, time.perf_counter() - tick, {"iterations": ml3.metadata["iterations"],
                                                      "validation": ml3.metadata["fitness"]})
    tick = time.perf_counter()
    taylor = train_taylorglo(task, preset=preset, seed=seed, generations=budget["taylorglo_generations"],
                             population=budget["taylorglo_population"], **overrides)
    found["TaylorGLO"] = (taylor, time.perf_counter() - tick, {"generations": taylor.metadata["generations"],
                                                               "validation": taylor.metadata["fitness"]})
    if budget["ablations"]:
        for name, extra in ABLATIONS.get(folder.name, {}).items():
            tick = time.perf_counter()
            search = LossSearch(preset=preset, seed=seed, out_dir=folder / _slug(name),
                                **{**overrides, **extra}).fit(task)
            (folder / _slug(name) / "checkpoint.json").unlink(missing_ok=True)
            if search.best_loss_ is not None:
                found[name] = (search.best_loss_, time.perf_counter() - tick,
                               {"evaluated": search.evaluator_.counters["requested"], "overrides": extra,
                                "validation": search.best_loss_.metadata.get("fitness")})
    for name, (loss, seconds, _) in found.items():
        loss.save(folder / f"{_slug(name)}-loss.json")
        print(f"  {name}: searched in {seconds:.1f} s", flush=True)
    return found


class ScaledStandardLoss(torch.nn.Module):
    """The standard loss times ``factor``: SGD on it is SGD on the standard loss with ``factor`` x the lr.

    A control for learned losses whose main effect is to rescale the gradient.
    """

    n_parameters = 0

    def __init__(self, task: str, factor: float = 2.0):
        super().__init__()
        self.base, self.factor, self.task = StandardLoss(task), float(factor), task

    def forward(self, output, target):
        return self.factor * self.base(output, target)

    def describe(self) -> str:
        return f"{self.factor:g} x {self.base.name}"


def run_task(key: str, args, budget: dict) -> None:
    dataset, noise = TASKS[key]
    folder = args.out / key
    folder.mkdir(parents=True, exist_ok=True)
    print(f"[{key}] {dataset}, label noise {noise}", flush=True)
    task = Task.builtin(dataset, seed=args.seed, label_noise=noise, model="mlp")
    found = search_all(task, folder, budget, args.seed)
    losses = {name: loss for name, (loss, _, _) in found.items()}
    if budget["control"]:
        losses[CONTROL] = ScaledStandardLoss(task.kind)
    tick = time.perf_counter()
    report = meta_test(losses, task, seeds=budget["seeds"], steps=budget["meta_test_steps"],
                       preset=resolve_preset(budget["preset"], **budget["overrides"]), seed=args.seed)
    print(f"  meta-test: {time.perf_counter() - tick:.1f} s\n{report.table()}", flush=True)
    report.to_json(folder / "metatest.json")
    report.to_csv(folder / "metatest.csv")
    report.plot_curves(folder / "curves.png", log_y=task.kind == "regression")
    searches = {name: {"seconds": seconds, **detail} for name, (_, seconds, detail) in found.items()}
    atomic_write_json(folder / "searches.json", {"task": task.describe(), "searches": searches})


def machine() -> dict:
    uname = " ".join(platform.uname())
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"uname": uname, "cpus": os.cpu_count(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "python": platform.python_version(), "load": load, **_git()}


def _git() -> dict:
    """The commit the code came from and the files that differed from it (other work in progress)."""
    def git(*args) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=ROOT.parent, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout if done.returncode == 0 else ""

    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines() if line]
    return {"commit": git("rev-parse", "--short", "HEAD").strip() or "unknown", "changed": changed}


# ------------------------------------------------------------------------------------------ report
def _fmt(value: float, digits: int = 4) -> str:
    return "inf" if not math.isfinite(value) else f"{value:.{digits}f}"


def _title(key: str) -> str:
    dataset, noise = TASKS[key]
    return f"{dataset} (MLP{f', {round(noise * 100)}% label noise' if noise else ''})"


def _verdict(key: str, report: MetaTestReport) -> str:
    base = report.baseline
    learned = [r for r in report.methods if r.method in METHODS]
    best = min(learned, key=lambda r: (r.mean, r.method))

    def versus(row) -> str:
        word = "lower" if row.mean < base.mean else "**not lower**"
        close = " (within one standard deviation)" if abs(row.mean - base.mean) <= max(row.std, base.std) else ""
        return f"{row.method} {_fmt(row.mean)} vs {base.method} {_fmt(base.mean)}: {word}{close}"

    text = f"**{_title(key)}**: best learned loss {versus(best)}"
    evomal = next((r for r in learned if r.method == "EvoMAL"), None)
    if evomal is not None and evomal is not best:
        text += f"; {versus(evomal)}"
    worse = [r.method for r in learned if not r.mean < base.mean]
    if worse:
        text += f". Not better than {base.method}: **{', '.join(worse)}**"
    control = next((r for r in report.methods if r.method == CONTROL), None)
    if control is not None:
        text += (f". Control {CONTROL} (twice the learning rate): {_fmt(control.mean)}, which {best.method} "
                 + ("beats" if best.mean < control.mean else "does **not** beat"))
    for row in report.methods:
        if row.method in ABLATIONS.get(key, {}):
            text += f". Ablation {versus(row)}"
    return text + "."


def task_section(key: str, folder: Path) -> tuple[list[str], str]:
    """The Markdown of one task, and a one-line verdict on its best learned loss."""
    report = MetaTestReport.load(folder / "metatest.json")
    searches = read_json(folder / "searches.json", ValueError, "search summary")["searches"]
    base = report.baseline
    lines = [f"### {_title(key)}", "",
             f"Test {report.metric}, {len(base.seeds)} seeds x {report.steps} SGD steps (lr {report.lr}, "
             f"batch {report.batch_size}) on train + validation rows; test split {report.task['n_test']} rows. "
             "Validation: the search's own score of the loss (partial training).", "",
             f"| method | test {report.metric} (mean ± std) | vs {base.method} | loss parameters | "
             "search time (s) | validation | meta-test time (s) |",
             "|---|---|---|---|---|---|---|"]
    for row in report.methods:
        search = searches.get(row.method, {})
        delta = "" if row.baseline else f"{row.mean - base.mean:+.4f}"
        seconds = f"{search['seconds']:.1f}" if "seconds" in search else "-"
        valid = f"{search['validation']:.4f}" if search.get("validation") is not None else "-"
        diverged = f" ({sum(row.diverged)} of {len(row.seeds)} diverged)" if any(row.diverged) else ""
        std = _fmt(row.std) if math.isfinite(row.std) else "-"
        lines.append(f"| {row.method} | {_fmt(row.mean)} ± {std}{diverged} | {delta} | "
                     f"{row.n_parameters:,} | {seconds} | {valid} | {row.seconds:.1f} |")
    lines += ["", "Losses:", ""]
    lines += [f"- **{row.method}**: `{row.loss}`" for row in report.methods if not row.baseline]
    lines += ["", f"![training curves](results/{key}/curves.png)", ""]
    return lines, _verdict(key, report)


def plot_summary(reports: dict, path: Path) -> None:
    """Mean test error of each method relative to the baseline's, one group of bars per task."""
    from evomal_sr.results.plotting import _figure, save_figure

    plt = _figure()
    fig, ax = plt.subplots(figsize=(8, 4))
    names = [*METHODS, CONTROL]
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        xs, ys = [], []
        for j, report in enumerate(reports.values()):
            row = next((r for r in report.methods if r.method == name), None)
            if row is not None and math.isfinite(row.mean):
                xs.append(j + (i - (len(names) - 1) / 2) * width)
                ys.append(row.mean / report.baseline.mean)
        ax.bar(xs, ys, width, label=name, color="0.6" if name == CONTROL else f"C{i}")
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="standard loss")
    ax.set_xticks(range(len(reports)), [_title(k) for k in reports], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("test error / standard loss's (log scale)")
    ax.set_title("Meta-test: mean test error relative to the standard loss (lower is better)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, ncols=3)
    save_figure(fig, path)


def budget_lines(budget: dict) -> list[str]:
    s = Preset(**budget["settings"])  # the settings the run used, even if the preset changed since
    ml3 = budget["ml3_iterations"] or s.meta_iterations * s.population
    generations = budget["taylorglo_generations"] or s.generations
    steps = budget["meta_test_steps"] or s.meta_test_steps
    return [
        f"- Search budget, the same for every task: preset `{budget['preset']}`"
        + (f" with {budget['overrides']}" if budget["overrides"] else "") + ".",
        f"  - EvoMAL: population {s.population} x {s.generations} generations, {s.meta_iterations} "
        f"meta-iterations of local search (Adam lr {s.meta_lr}) per candidate; fitness = validation error after "
        f"{s.train_steps} SGD steps (lr {s.lr}, batch {s.batch_size}).",
        "  - GP-LFL: the same without local search.",
        f"  - ML3: {ml3} meta-iterations of the same unrolled differentiation ({s.inner_steps} inner step(s), "
        f"Adam lr {s.meta_lr}).",
        f"  - TaylorGLO: CMA-ES, population {budget['taylorglo_population']}, sigma 1.2, {generations} "
        f"generations, the same fitness as EvoMAL.",
        f"- Meta-test: {budget['seeds']} seeds x {steps} SGD steps (lr {s.lr}, batch {s.batch_size}), models "
        "trained from scratch on train + validation rows and scored on the test rows; every method starts from "
        "the same initialisation and sees the same minibatches for a given seed.",
    ]


def write_report(args, budget: dict, info: dict, keys: list[str], seconds: float | None, command: str) -> None:
    sections, verdicts, reports = [], [], {}
    for key in keys:
        if (args.out / key / "metatest.json").exists():
            lines, verdict = task_section(key, args.out / key)
            sections += lines
            verdicts.append(f"- {verdict}")
            reports[key] = MetaTestReport.load(args.out / key / "metatest.json")
    if reports:
        plot_summary(reports, args.out / "summary.png")
    load = info.get("load")
    head = [
        "# Results: does the learned loss help?", "",
        "Generated by `benchmarks/run_results.py`; every number below is read back from "
        "`results/<task>/metatest.json` and `searches.json`, written by the run described here.", "",
        f"- Command: `{command}`" + (f" (wall time {seconds / 60:.1f} min)" if seconds else ""),
        f"- Machine: `{info['uname']}`; {info['cpus']} CPUs; torch {info['torch']} "
        f"({info['threads']} intra-op thread(s)); Python {info['python']}.",
        f"- Code: commit `{info.get('commit', 'unknown')}`"
        + (f" plus uncommitted changes to {', '.join(f'`{c}`' for c in info['changed'])}" if info.get("changed")
           else "") + ".",
        f"- Load average when the run started: {', '.join(f'{v:.1f}' for v in load) if load else 'unknown'}. "
        "The machine was shared with other processes, so times are indicative only.",
        *budget_lines(budget),
        "- Selection: each method's loss is the one with the lowest *validation* error in its own search; the "
        "test split is used only for the numbers below.",
        f"- `{CONTROL}` is a control, not a method: the standard loss times 2, i.e. SGD with twice the learning "
        "rate. A learned loss that only rescales the gradient does about as well as it.",
        *(f"- `{name}` ({key}) is an ablation, not counted in the verdict: EvoMAL with preset overrides {extra} "
          "(the paper's fitness horizon; not tuned). It was added after a first run of this script showed EvoMAL "
          "with the preset's shorter partial training losing to cross-entropy on this task."
          for key, rows in ABLATIONS.items() if key in keys and budget.get("ablations")
          for name, extra in rows.items()), "",
        "## Verdict", "", *verdicts, "",
        "How to read these numbers:", "",
        "- Every search scores a loss by the validation error after a short partial training (see the budget), so "
        "losses that train fast win the search. In the longer meta-test they can then overfit noisy "
        "labels or a small dataset: compare the validation column with the test column, and the curves.",
        "- Cross-entropy at SGD lr 0.01 has not converged after the meta-test's steps on digits and mnist1d (see "
        "the curves), so part of every gain there is speed; the `2 x standard` control measures how much a plain "
        "rescaling of the gradient buys.",
        "- ML3 is meta-trained like EvoMAL's local search, one unrolled SGD step from fresh initialisations; "
        "nothing forces its minimum to lie at the target, so longer training can make its models worse.", "",
        "![summary](results/summary.png)", "",
        "## Per task", "",
    ]
    atomic_write_text(args.report, "\n".join(head + sections).rstrip() + "\n")
    atomic_write_json(args.out / "run.json", {"command": command, "machine": info, "budget": budget,
                                              "seconds": seconds, "tasks": keys})


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    keys = [k.strip() for k in args.tasks.split(",") if k.strip()]
    unknown = sorted(set(keys) - set(TASKS))
    if unknown:
        raise SystemExit(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    budget = budget_of(args)
    if args.report_only:
        run = read_json(args.out / "run.json", ValueError, "run summary")
        write_report(args, run["budget"], run["machine"], run["tasks"], run["seconds"], run["command"])
        return 0
    info = machine()
    tick = time.perf_counter()
    for key in keys:
        run_task(key, args, budget)
    command = " ".join(shlex.quote(a) for a in ["python", "benchmarks/run_results.py", *sys.argv[1:]])
    write_report(args, budget, info, keys, time.perf_counter() - tick, command)
    print(f"wrote {args.report}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Does the learned loss help? Search, meta-test on the fair protocol, write RESULTS.md.

For each task this script

1. searches for a loss with each search variant (``SEARCHES``: the paper-faithful
   EvoMAL at the ``quick`` budget, the recommended ``standard`` preset, and its
   ablations), timing each; with ``--with-baselines`` also GP-LFL, ML3, TaylorGLO;
2. meta-tests the learned losses against the whole zoo of known losses
   (``evomal_sr.losses.zoo``) on the fair protocol: every method at its own SGD
   learning rate chosen on validation (the preset's lr x 0.3, 1, 3, 10, 30),
   early-stopped at its best validation step, 5 seeds with the same
   initialisations and minibatches for every method, paired differences against
   the tuned standard loss, plus the ``2 x standard`` control;
3. writes everything under ``benchmarks/results/<task>/`` and the report
   ``benchmarks/RESULTS.md``, regenerated from those files.

Usage::

    python benchmarks/run_results.py                  # the full report
    python benchmarks/run_results.py --fast           # smoke run, a couple of minutes
    python benchmarks/run_results.py --report-only    # rewrite RESULTS.md from saved results
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
from evomal_sr.evaluation.metatest import MetaTestReport, meta_test  # noqa: E402
from evomal_sr.evaluation.report import paired_difference  # noqa: E402
from evomal_sr.losses.zoo import KNOWN_LOSSES, known_loss  # noqa: E402
from evomal_sr.search.baselines import train_ml3, train_taylorglo  # noqa: E402

#: Report name -> (built-in dataset, label noise: corrupted labels, or outlier targets for regression).
TASKS = {
    "digits": ("digits", 0.0),
    "digits-noise40": ("digits", 0.4),
    "breast_cancer-noise30": ("breast_cancer", 0.3),
    "diabetes": ("diabetes", 0.0),
    "friedman1-outliers20": ("friedman1", 0.2),
    "mnist1d": ("mnist1d", 0.0),
}
#: Search variants: report name -> LossSearch keywords. The first is the paper-faithful EvoMAL.
SEARCHES = {
    "EvoMAL (paper, quick budget)": {"preset": "quick"},
    "EvoMAL (standard)": {"preset": "standard"},
}
#: Ablations (report name -> LossSearch keywords), on every task: each change alone on the
#: paper-faithful quick search, then the standard preset with the previous, 150-step horizon.
ABLATIONS = {
    "quick + lr grid": {"preset": "quick", "fitness_lr_grid": 4, "fitness_lr_ratio": 3.1623},
    "quick + best-along-run": {"preset": "quick", "fitness_eval_every": 25},
    "quick + 500-step horizon": {"preset": "quick", "train_steps": 500, "fitness_eval_every": 50},
    "quick + grad-norm scaling": {"preset": "quick", "loss_scaling": "grad_norm"},
    "quick + extended grammar": {"preset": "quick", "operators": "extended"},
    "quick + zoo guesses": {"preset": "quick", "initial_losses": "zoo"},
    "standard, 150-step horizon": {"preset": "standard", "train_steps": 150, "fitness_eval_every": 0},
}
ABLATION_TASKS = tuple(TASKS)
#: The control row: the standard loss times 2 (with a tuned lr it should equal the standard loss).
CONTROL = "2 x standard"
STANDARD = {"classification": "cross-entropy", "regression": "mse"}
#: Issue 11's targets for the default search: task -> minimum relative improvement over the tuned
#: standard loss (None: "no worse than it", within two paired standard errors) and whether the
#: learned loss must also be no worse than the best zoo loss.
TARGETS = {"digits-noise40": (0.20, True), "breast_cancer-noise30": (0.20, True),
           "friedman1-outliers20": (0.30, True), "digits": (None, False), "mnist1d": (None, False),
           "diabetes": (None, False)}
DEFAULT_SEARCH = "EvoMAL (standard)"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="tiny budgets: a smoke run of a couple of minutes")
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated subset of {', '.join(TASKS)}")
    parser.add_argument("--seed", type=int, default=0, help="seed of every search and of the data splits")
    parser.add_argument("--seeds", type=int, default=5, help="meta-test seeds")
    parser.add_argument("--steps", type=int, default=5000, help="SGD steps of meta-testing")
    parser.add_argument("--eval-every", type=int, default=100, help="steps between validation evaluations")
    parser.add_argument("--with-baselines", action="store_true", help="also search GP-LFL, ML3 and TaylorGLO")
    parser.add_argument("--no-ablations", action="store_true", help="skip the ablation searches")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, default=None, help="folder for per-task results")
    parser.add_argument("--report", type=Path, default=None, help="the Markdown report")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the report from saved results")
    args = parser.parse_args(argv)
    if args.fast:
        args.seeds, args.steps, args.eval_every = 2, 100, 20
    if args.out is None:
        args.out = Path(tempfile.gettempdir()) / "evomal-sr-fast-results" if args.fast else ROOT / "results"
    if args.report is None:
        args.report = args.out / "RESULTS.md" if args.fast else ROOT / "RESULTS.md"
    return args


def _slug(name: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split())


def search_all(key: str, task: Task, folder: Path, args) -> dict:
    """Run every search variant; save each loss; return ``{name: (loss, seconds, detail)}``."""
    variants = dict(SEARCHES)
    if not args.no_ablations and key in ABLATION_TASKS:
        variants.update(ABLATIONS)
    if args.with_baselines:
        variants["GP-LFL"] = {"preset": "quick", "local_search": False}
    found = {}
    for name, options in variants.items():
        options = {**options, "preset": "tiny"} if args.fast else options
        tick = time.perf_counter()
        search = LossSearch(seed=args.seed, out_dir=folder / _slug(name), force=True, **options).fit(task)
        seconds = time.perf_counter() - tick
        (folder / _slug(name) / "checkpoint.json").unlink(missing_ok=True)  # resume state only
        if search.best_loss_ is None:
            print(f"  {name}: empty front, nothing to meta-test", flush=True)
            continue
        found[name] = (search.best_loss_, seconds, {"evaluated": search.evaluator_.counters["requested"],
                                                    "validation": search.best_loss_.metadata.get("fitness"),
                                                    "options": options})
        print(f"  {name}: {seconds:.1f} s, {search.best_loss_.expression}", flush=True)
    if args.with_baselines:
        preset = "tiny" if args.fast else "quick"
        for name, train in (("ML3", lambda: train_ml3(task, preset=preset, seed=args.seed)),
                            ("TaylorGLO", lambda: train_taylorglo(task, preset=preset, seed=args.seed))):
            tick = time.perf_counter()
            loss = train()
            found[name] = (loss, time.perf_counter() - tick, {"validation": loss.metadata.get("fitness")})
    for name, (loss, _, _) in found.items():
        loss.save(folder / f"{_slug(name)}-loss.json")
    return found


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


def run_task(key: str, args, info: dict, command: str) -> None:
    tick_task = time.perf_counter()
    dataset, noise = TASKS[key]
    folder = args.out / key
    folder.mkdir(parents=True, exist_ok=True)
    print(f"[{key}] {dataset}, label noise {noise}", flush=True)
    task = Task.builtin(dataset, seed=args.seed, label_noise=noise, model="mlp")
    found = search_all(key, task, folder, args)
    losses = {name: loss for name, (loss, _, _) in found.items()}
    losses[CONTROL] = ScaledLoss(known_loss(STANDARD[task.kind], task.kind))
    tick = time.perf_counter()
    report = meta_test(losses, task, seeds=args.seeds, steps=args.steps, baselines="zoo", tune_lr=True,
                       eval_every=args.eval_every, preset="quick", seed=args.seed)
    print(f"  meta-test: {time.perf_counter() - tick:.1f} s\n{report}", flush=True)
    report.to_json(folder / "metatest.json")
    report.to_csv(folder / "metatest.csv")
    report.plot_curves(folder / "curves.png", log_y=task.kind == "regression")
    searches = {name: {"seconds": seconds, **detail} for name, (_, seconds, detail) in found.items()}
    atomic_write_json(folder / "searches.json", {"task": task.describe(), "searches": searches})
    atomic_write_json(folder / "run.json", {"command": command, "machine": info,
                                            "seconds": time.perf_counter() - tick_task})


def machine() -> dict:
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"uname": " ".join(platform.uname()), "cpus": os.cpu_count(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "python": platform.python_version(), "load": load, **_git()}


def _git() -> dict:
    def git(*args) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=ROOT.parent, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout if done.returncode == 0 else ""

    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines() if line]
    return {"commit": git("rev-parse", "--short", "HEAD").strip() or "unknown", "changed": changed}


# ------------------------------------------------------------------------------------------ report
def _fmt(value, digits: int = 4) -> str:
    return "-" if value is None else "inf" if not math.isfinite(value) else f"{value:.{digits}f}"


def _title(key: str) -> str:
    dataset, noise = TASKS[key]
    kind = "outlier targets" if "outliers" in key else "label noise"
    return f"{dataset} (MLP{f', {round(noise * 100)}% {kind}' if noise else ''})"


def _verdict(key: str, report: MetaTestReport) -> str:
    rows = {r["method"]: r for r in report.rows()}
    base = rows[report.baseline.method]
    zoo = [rows[n] for n in KNOWN_LOSSES["classification" if report.metric == "error rate" else "regression"]
           if n in rows]
    best_zoo = min(zoo, key=lambda r: r["early_mean"])
    learned = [r for name, r in rows.items() if name in SEARCHES or name in ABLATIONS
               or name in ("GP-LFL", "ML3", "TaylorGLO")]
    parts = []
    for r in sorted(learned, key=lambda r: r["early_mean"]):
        if r["method"] in ABLATIONS:
            continue
        change = (r["early_mean"] - base["early_mean"]) / base["early_mean"] * 100 if base["early_mean"] else 0.0
        diff, se, verdict = paired_difference(report[r["method"]].early_errors,
                                              report[best_zoo["method"]].early_errors)
        against = ("lower than" if r["early_mean"] < best_zoo["early_mean"] else
                   "within noise of" if verdict == "within noise" else "**worse** than")
        parts.append(f"{r['method']} {_fmt(r['early_mean'])} ({change:+.0f}% vs tuned {base['method']} "
                     f"{_fmt(base['early_mean'])}, {r['early_verdict'] or 'n/a'}; {against} the best zoo loss, "
                     f"{best_zoo['method']} {_fmt(best_zoo['early_mean'])}, paired {diff:+.4f} ± {_fmt(se)})")
    return f"**{_title(key)}**: " + "; ".join(parts) + "."


def task_section(key: str, folder: Path) -> tuple[list[str], str]:
    report = MetaTestReport.load(folder / "metatest.json")
    searches = read_json(folder / "searches.json", ValueError, "search summary")["searches"]
    lines = [f"### {_title(key)}", "",
             f"Test {report.metric}, {len(report.methods[0].seeds)} seeds x {report.steps} SGD steps, batch "
             f"{report.batch_size}, lr tuned per method on validation; early-stopped = at the best validation step "
             f"(every {report.eval_every} steps) of a training-rows-only run; final = last step of the train + "
             f"validation run. Test split {report.task['n_test']} rows. Meta-test wall time {report.seconds:.0f} s.",
             "", f"| method | lr | early-stopped {report.metric} | final {report.metric} | early vs "
             f"{report.baseline.method} (± se) | verdict | search time (s) |", "|---|---|---|---|---|---|---|"]
    for r in report.rows():
        search = searches.get(r["method"], {})
        delta = "" if r["early_vs_baseline"] is None else \
            f"{r['early_vs_baseline']:+.4f} ± {_fmt(r['early_vs_baseline_se'])}"
        seconds = f"{search['seconds']:.0f}" if "seconds" in search else "-"
        name = f"**{r['method']}**" if r["method"] in searches else r["method"]
        lines.append(f"| {name} | {r['lr']:.3g} | {_fmt(r['early_mean'])} ± {_fmt(r['early_std'])} | "
                     f"{_fmt(r['mean'])} ± {_fmt(r['std'])} | {delta} | {r['early_verdict']} | {seconds} |")
    lines += ["", "Learned losses:", ""]
    lines += [f"- **{r.method}**: `{r.loss}`" for r in report.methods if r.method in searches]
    lines += ["", f"![validation curves](results/{key}/curves.png)", ""]
    return lines, _verdict(key, report)


def write_report(args) -> None:
    """RESULTS.md from every task folder under ``--out`` (runs of several processes are merged)."""
    sections, verdicts, runs = [], [], {}
    for key in TASKS:
        if (args.out / key / "metatest.json").exists():
            lines, verdict = task_section(key, args.out / key)
            sections += lines
            verdicts.append(f"- {verdict}")
            runs[key] = read_json(args.out / key / "run.json", ValueError, "run summary")
    infos = {json_key(r["machine"]): r["machine"] for r in runs.values()}
    head = [
        "# Results: does the learned loss help?", "",
        "Generated by `benchmarks/run_results.py`; every number below is read back from "
        "`results/<task>/metatest.json`, `searches.json` and `run.json`, written by the runs described here.", "",
        *(f"- `{key}`: `{r['command']}`, {r['seconds'] / 60:.1f} min wall, started at load average "
          f"{', '.join(f'{v:.1f}' for v in r['machine']['load'] or [])}" for key, r in runs.items()),
        *(f"- Machine: `{info['uname']}`; {info['cpus']} CPUs; torch {info['torch']} "
          f"({info['threads']} intra-op thread(s)); Python {info['python']}. Code: commit "
          f"`{info.get('commit', 'unknown')}`" + (f" plus uncommitted changes to "
                                                  f"{', '.join(f'`{c}`' for c in _code_changes(info))}"
                                                  if _code_changes(info) else "") + "."
          for info in infos.values()),
        "- The machine was shared with other processes (two task runs in parallel and other work), so times "
        "are indicative only.",
        "- Searches (seed 0): " + "; ".join(f"`{n}` = `LossSearch({_kwargs(o)})`" for n, o in SEARCHES.items())
        + ". Ablations (on " + ", ".join(ABLATION_TASKS) + "): "
        + "; ".join(f"`{n}` = `LossSearch({_kwargs(o)})`" for n, o in ABLATIONS.items()) + ".",
        "- Meta-test (the fair protocol of `es.meta_test(..., baselines='zoo', tune_lr=True)`): every method, "
        "learned or known, gets its own SGD learning rate from the grid 0.003, 0.01, 0.03, 0.1, 0.3 chosen by its "
        "best validation error on a training-rows-only run; the final models train on train + validation rows and "
        "are scored on the test rows at the last step and at the early-stopping step. Same seeds, "
        "initialisations and minibatches for every method; verdicts are paired over seeds at two standard "
        "errors. The test split is used only for the reported numbers.",
        f"- `{CONTROL}` is a control: the standard loss times 2. With a tuned lr it should match the standard loss; "
        "that it does (within noise) is a check of the protocol; a residual difference is the lr grid's resolution "
        "(a factor 2 lands between two of its points).", "",
        "## Verdict (early-stopped test error)", "", *verdicts, "",
        *targets_table(args.out),
        *ablation_table(args.out),
        "## Per task", "",
    ]
    atomic_write_text(args.report, "\n".join(head + sections + transfer_section(args.out)).rstrip() + "\n")


def targets_table(out: Path) -> list[str]:
    """The default search's loss against issue 11's targets, task by task, and the transfer check."""
    lines = ["## Targets (the default `standard` search)", "",
             "A target \"no worse than X\" is met when the paired difference is not above two standard errors.", "",
             "| task | target | learned | tuned standard loss | change | best zoo loss | paired vs best zoo | met |",
             "|---|---|---|---|---|---|---|---|"]
    for key, (gain, versus_zoo) in TARGETS.items():
        if not (out / key / "metatest.json").exists():
            continue
        report = MetaTestReport.load(out / key / "metatest.json")
        rows = {r.method: r for r in report.methods}
        if DEFAULT_SEARCH not in rows:
            continue
        learned, base = rows[DEFAULT_SEARCH], report.baseline
        zoo = [rows[n] for n in KNOWN_LOSSES["classification" if report.metric == "error rate" else "regression"]
               if n in rows]
        best = min(zoo, key=lambda r: r.early_mean)
        change = (learned.early_mean - base.early_mean) / base.early_mean
        d_base = paired_difference(learned.early_errors, base.early_errors)
        d_zoo = paired_difference(learned.early_errors, best.early_errors)
        met = (change <= -gain if gain is not None else d_base[2] != "worse") and \
            (not versus_zoo or d_zoo[2] != "worse")
        wanted = (f">= {gain:.0%} lower than {base.method}" if gain is not None else f"no worse than {base.method}") \
            + (", no worse than the best zoo loss" if versus_zoo else "")
        lines.append(f"| {_title(key)} | {wanted} | {_fmt(learned.early_mean)} | {_fmt(base.early_mean)} | "
                     f"{change:+.0%} | {best.method} {_fmt(best.early_mean)} | {d_zoo[0]:+.4f} ± {_fmt(d_zoo[1])} "
                     f"({d_zoo[2]}) | {'**yes**' if met else '**no**'} |")
    for path in sorted((out / "transfer").glob("*/metatest.json")) if (out / "transfer").exists() else []:
        report = MetaTestReport.load(path)
        learned = next(r for r in report.methods if r.method.startswith(DEFAULT_SEARCH))
        diff, se, verdict = paired_difference(learned.early_errors, report.baseline.early_errors)
        run = read_json(path.parent / "run.json", ValueError, "transfer run")
        lines.append(f"| {run['task']} -> {run['model']} (transfer, {len(learned.seeds)} seeds x {report.steps} "
                     f"steps) | better than tuned {report.baseline.method} | {_fmt(learned.early_mean)} | "
                     f"{_fmt(report.baseline.early_mean)} | "
                     f"{(learned.early_mean - report.baseline.early_mean) / report.baseline.early_mean:+.0%} | - | "
                     f"vs {report.baseline.method}: {diff:+.4f} ± {_fmt(se)} ({verdict}) | "
                     f"{'**yes**' if learned.early_mean < report.baseline.early_mean else '**no**'} |")
    return lines + [""]


def ablation_table(out: Path) -> list[str]:
    """Every learned-loss variant on every task: early-stopped test error (vs tuned standard) and search time."""
    keys = [k for k in TASKS if (out / k / "metatest.json").exists()]
    names = [*SEARCHES, *ABLATIONS]
    cells: dict[tuple[str, str], str] = {}
    for key in keys:
        report = MetaTestReport.load(out / key / "metatest.json")
        searches = read_json(out / key / "searches.json", ValueError, "search summary")["searches"]
        base = report.baseline.early_mean
        for row in report.methods:
            if row.method in names:
                change = (row.early_mean - base) / base * 100 if base else 0.0
                cells[key, row.method] = (f"{_fmt(row.early_mean)} ({change:+.0f}%), "
                                          f"{searches.get(row.method, {}).get('seconds', math.nan):.0f} s")
    lines = ["## Ablation: what each change buys", "",
             "Early-stopped test error of each search variant's loss (change vs the tuned standard loss) and the "
             "search's wall time. `EvoMAL (paper, quick budget)` is the paper's method at the quick budget; each "
             "`quick + ...` row adds one change alone to it: the lr grid in the fitness, the best-along-run "
             "fitness (validation every 25 of the 150 steps), a 500-step horizon scored at its best validation "
             "step (every 50), gradient-norm loss scaling, the extended grammar (exp), the zoo's losses as initial "
             "guesses. `EvoMAL (standard)` is the default preset: the lr grid, the 500-step best-along-run "
             "horizon, the zoo guesses, 12 instead of 8 generations and the 5% selection tolerance together; "
             "`standard, 150-step horizon` is it with the quick horizon and final-step fitness (the previous "
             "default). "
             "`-`: not run on that task.", "",
             "| variant | " + " | ".join(_title(k) for k in keys) + " |", "|---|" + "---|" * len(keys)]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(cells.get((k, name), "-") for k in keys) + " |")
    return lines + [""]


def transfer_section(out: Path) -> list[str]:
    """Tables of ``benchmarks/run_transfer.py``: the MLP-learned loss meta-tested with other models."""
    folders = sorted((out / "transfer").glob("*/metatest.json")) if (out / "transfer").exists() else []
    if not folders:
        return []
    lines = ["## Transfer: a loss learned with the MLP, used with other models", "",
             "From `python benchmarks/run_transfer.py`: the `EvoMAL (standard)` loss of the task, found with the "
             "MLP, meta-tested with another model on the same data on the same fair protocol.", ""]
    for path in folders:
        report = MetaTestReport.load(path)
        run = read_json(path.parent / "run.json", ValueError, "transfer run")
        command = f", `{run['command']}`" if run.get("command") else ""
        lines += [f"### {run['task']} -> {run['model']} ({len(report.methods[0].seeds)} seeds x {report.steps} "
                  f"steps, {run['seconds']:.0f} s{command})", "",
                  f"| method | lr | early-stopped {report.metric} | final {report.metric} | early vs "
                  f"{report.baseline.method} (± se) | verdict |", "|---|---|---|---|---|---|"]
        for r in report.rows():
            delta = "" if r["early_vs_baseline"] is None else \
                f"{r['early_vs_baseline']:+.4f} ± {_fmt(r['early_vs_baseline_se'])}"
            lines.append(f"| {r['method']} | {r['lr']:.3g} | {_fmt(r['early_mean'])} ± {_fmt(r['early_std'])} | "
                         f"{_fmt(r['mean'])} ± {_fmt(r['std'])} | {delta} | {r['early_verdict']} |")
        lines.append("")
    return lines


def _code_changes(info: dict) -> list[str]:
    """Changed files other than the results being written."""
    return [c for c in info.get("changed") or [] if not c.startswith("benchmarks/results/")]


def json_key(info: dict) -> str:
    return f"{info.get('commit')}|{info.get('uname')}|{sorted(info.get('changed') or [])}"


def _kwargs(options: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in options.items())


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    keys = [k.strip() for k in args.tasks.split(",") if k.strip()]
    unknown = sorted(set(keys) - set(TASKS))
    if unknown:
        raise SystemExit(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    if not args.report_only:
        info = machine()
        command = " ".join(shlex.quote(a) for a in ["python", "benchmarks/run_results.py", *sys.argv[1:]])
        for key in keys:
            run_task(key, args, info, command)
    write_report(args)
    print(f"wrote {args.report}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

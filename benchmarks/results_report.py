"""RESULTS.md from the per-task files ``run_results.py`` writes: both halves, targets, ablation, rank agreement."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

from suite import DEVELOPMENT, EVALUATION, TASKS
from task_results import TaskResult

from evomal_sr.core.fileio import atomic_write_text, read_json
from evomal_sr.evaluation.report import paired_difference

BUDGET_SECONDS = 300.0
#: The ablation variant (``benchmarks/ablation.py``) whose search is the default now: the suite's searches
#: ran with the fitness before it, so the default's targets come from that variant's reruns.
CURRENT_SEARCH = "fitness-seeds-2-grid-2"
#: The ablation variant that is the default now: ``CURRENT_SEARCH``'s searches, their selections rerun or decided
#: again with the default's selection settings (its records name the run whose rows they reuse: ``rows_from``).
CURRENT_DEFAULT = "classes-sce"


def _fmt(value, digits: int = 4) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else "inf"
        if not math.isfinite(value)
        else f"{value:.{digits}f}"
    )


def _verdict_table(results: list[TaskResult]) -> list[str]:
    lines = [
        "| task | returned (kind) | early-stopped error | tuned standard | change | best known | returned vs best "
        "known (paired ± se) | search + selection (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in results:
        diff, se, verdict = t.vs_best_known(t.returned)
        lines.append(
            f"| {t.spec.title} | {t.returned.method} ({t.returned_kind}) | {_fmt(t.returned.early_mean)} | "
            f"{_fmt(t.base.early_mean)} | {t.change(t.returned):+.0%} | {t.best_known.method} "
            f"{_fmt(t.best_known.early_mean)} | {diff:+.4f} ± {_fmt(se)} ({verdict}) | "
            f"{t.info['search_seconds']:.0f} ({t.info['selection']['seconds']:.0f}) |"
        )
    return lines + [""]


def _idle_seconds(out: Path) -> dict[str, float]:
    path = out / "idle_timing.json"
    if not path.exists():
        return {}
    return {key: v["seconds"] for key, v in read_json(path, ValueError, "idle timing")["tasks"].items()}


def _targets(
    results: list[TaskResult], idle: dict[str, float], loaded: str = "2-6 benchmark processes sharing the 2 cores"
) -> list[str]:
    noisy = [t for t in results if t.spec.noisy]
    worse = [t.key for t in results if t.vs_best_known(t.returned)[2] == "worse"]
    short = [t.key for t in noisy if t.change(t.returned) > -0.20]
    learned_wins = [t.key for t in noisy if t.returned_kind == "learned" and t.vs_best_known(t.returned)[2] == "better"]
    # timed alone where measured (idle_timing.json); the loaded figures only bound it from above
    alone = {t.key: idle[t.key] for t in results if t.key in idle}
    slow = [key for key, seconds in alone.items() if seconds > BUDGET_SECONDS]
    third = math.ceil(len(noisy) / 3) if noisy else 0
    rows = [
        (
            "never worse than the best known loss beyond two paired SEs, on any task",
            f"worse on {len(worse)} of {len(results)}" + (f" ({', '.join(worse)})" if worse else ""),
            not worse,
        ),
        (
            ">= 20% lower early-stopped error than the tuned standard loss on every noisy task",
            f"met on {len(noisy) - len(short)} of {len(noisy)}" + (f"; not on {', '.join(short)}" if short else ""),
            noisy and not short,
        ),
        (
            "a learned loss strictly better than the best known (2 SEs) on >= 1/3 of the noisy tasks",
            f"{len(learned_wins)} of {len(noisy)} (needs {third})"
            + (f": {', '.join(learned_wins)}" if learned_wins else ""),
            noisy and len(learned_wins) >= third,
        ),
        (
            "default search + selection <= 5 min per task (2 cores)",
            f"timed alone: {', '.join(f'{k} {v:.0f} s' for k, v in alone.items()) or 'no task of this half'}; "
            f"max {max((t.info['search_seconds'] for t in results), default=0):.0f} s with {loaded}"
            + (f"; over on {', '.join(slow)}" if slow else ""),
            bool(alone) and not slow,
        ),
    ]
    lines = ["| target | reached | met |", "|---|---|---|"]
    lines += [f"| {name} | {reached} | {'**yes**' if met else '**no**'} |" for name, reached, met in rows]
    return lines + [""]


#: The earlier selections the report shows beside the returned one: (column, selection_signature).
EARLIER = (
    ("previous default (5 folds with halving, no prior)", ("validation", 1500, 5, 4, "none")),
    ("validation, 1500 steps, 3 folds", ("validation", 1500, 3, 0, "none")),
    ("validation, 600 steps, 3 folds", ("validation", 600, 3, 0, "none")),
    ("pooled folds, 600 steps, 3 folds", ("folds", 600, 3, 0, "none")),
)


def _ablation(results: list[TaskResult]) -> list[str]:
    lines = [
        "| task | half | front's pick, no selection | returned (default selection) | "
        + " | ".join(name for name, _ in EARLIER)
        + " | returned minus front's pick (paired ± se) |",
        "|---|---|---|---|---|" + "---|" * len(EARLIER),
    ]
    for t in results:
        diff, se, verdict = paired_difference(t.returned.early_errors, t.front_pick.early_errors)
        cells = []
        for _, signature in EARLIER:
            chosen = t.saved_selection(signature)
            other = t.rows[chosen["winner"]] if chosen else None
            cells.append(f"{chosen['winner']} {_fmt(other.early_mean)} ({t.change(other):+.0%})" if other else "-")
        lines.append(
            f"| {t.spec.title} | {t.spec.half} | {_fmt(t.front_pick.early_mean)} ({t.change(t.front_pick):+.0%}) | "
            f"{t.returned.method} {_fmt(t.returned.early_mean)} ({t.change(t.returned):+.0%}) | "
            + " | ".join(cells)
            + f" | {diff:+.4f} ± {_fmt(se)} ({verdict}) |"
        )
    return lines + [""]


def _ranks(results: list[TaskResult]) -> list[str]:
    lines = [
        "| task | half | search's score (n) | returned selection (n) | "
        + " | ".join(f"{name} (n)" for name, _ in EARLIER)
        + " |",
        "|---|---|---|---|" + "---|" * len(EARLIER),
    ]
    columns: list[list[float]] = [[] for _ in range(2 + len(EARLIER))]
    for t in results:
        b, a, nb, na = t.rank_agreement(t.info["selection"])
        earlier = [t.rank_agreement(t.saved_selection(signature))[1::2] for _, signature in EARLIER]
        values = [(b, nb), (a, na), *earlier]
        for column, (value, _) in zip(columns, values):
            column += [value] if math.isfinite(value) else []
        cells = " | ".join(f"{_fmt(v, 2)} ({n})" for v, n in values)
        lines.append(f"| {t.spec.title} | {t.spec.half} | {cells} |")
    means = [f"{_fmt(sum(c) / len(c), 2) if c else '-'} ({len(c)} tasks)" for c in columns]
    lines.append("| **mean** | | " + " | ".join(means) + " |")
    return lines + [""]


def _variants() -> list[str]:
    """The settings ablation of ``ablation.py`` (selection horizon and scoring, the grammar), from its files."""
    from ablation import DEVELOPMENT as DEV
    from ablation import EVALUATION as EVAL
    from ablation import OUT, half, per_task, table

    def tables() -> list[str]:
        return [*table({h: [t.key for t in half(h)] for h in (DEV, EVAL)}), "", *per_task([t.key for t in half("all")])]

    return _saved_section(
        OUT,
        "Ablation: settings of the default search (`benchmarks/ablation.py`)",
        "variants",
        "`python benchmarks/ablation.py --variant NAME --half development` per variant, then "
        "`python benchmarks/ablation.py --report-only`.",
        tables,
    )


def _probes() -> list[str]:
    """The development probes of ``probe_tasks.py`` (more development tasks for one decision), from its files."""
    from probe_tasks import OUT, table

    return _saved_section(
        OUT,
        "Development probes: twelve more development tasks (`benchmarks/probe_tasks.py`)",
        "probes",
        "`python benchmarks/probe_tasks.py` (runs the probes not yet run), "
        "`python benchmarks/probe_tasks.py --rerun robust-prior` (the regression probes' reruns) and "
        "`--rerun classes-sce` (the ten-class probes') and `--rerun auto-scoring` (the imbalanced probes'), then "
        "`python benchmarks/probe_tasks.py --report-only`.",
        table,
    )


def _fresh() -> list[str]:
    """The fresh probes of ``fresh_probes.py`` (the default on tasks chosen after it was fixed), from its files."""
    from fresh_probes import OUT, table

    return _saved_section(
        OUT,
        "Fresh probes of the default (`benchmarks/fresh_probes.py`)",
        "fresh",
        "`python benchmarks/fresh_probes.py` (runs the probes not yet saved), then "
        "`python benchmarks/fresh_probes.py --report-only`.",
        table,
    )


def _lr_edge() -> list[str]:
    """The default's meta-tests rerun with the lr grid extended past its edges (``lr_edge.py``), from its files."""
    from lr_edge import OUT, report_lines
    from lr_edge_variant import report_lines as variant_lines

    def tables() -> list[str]:
        return [*report_lines(), "", *variant_lines()]

    return _saved_section(
        OUT,
        "Does the meta-test's lr grid bind? (`benchmarks/lr_edge.py`)",
        "lr_edge",
        "`python benchmarks/lr_edge.py --tasks KEY,...` (runs the tasks not yet saved), "
        "`python benchmarks/lr_edge_selection.py --tasks KEY,...` (the reselections), "
        "`python benchmarks/lr_edge_variant.py --tasks KEY,...` (the search variant), then "
        "`python benchmarks/lr_edge.py --report-only`.",
        tables,
    )


def _regression_prior() -> list[str]:
    """MAE against log-cosh as the selection's regression prior (``regression_prior.py``), from its files."""
    from regression_prior import OUT, report_lines

    return _saved_section(
        OUT,
        "The regression prior: MAE or log-cosh? (`benchmarks/regression_prior.py`)",
        "regression_prior",
        "`python benchmarks/regression_prior.py --tasks KEY,...` (runs what is not saved), then "
        "`python benchmarks/regression_prior.py --report-only`.",
        report_lines,
    )


def _saved_section(folder: Path, title: str, prose: str, regenerate: str, tables: Callable[[], list[str]]) -> list[str]:
    """A report section of a benchmark's saved files (none before it ran): its title, its prose, how to
    regenerate it, its tables."""
    if not folder.exists():
        return []
    return [f"## {title}", "", *_prose(prose), "", f"Regenerate: {regenerate}", "", *tables(), ""]


def _prose(section: str) -> list[str]:
    """A section of ``results_prose.md`` (the report's prose, kept out of the code), as its lines."""
    text = Path(__file__).with_name("results_prose.md").read_text(encoding="utf-8")
    parts = re.split(r"^<!-- section: (\w+) -->$", text, flags=re.MULTILINE)
    sections = {name: body.strip() for name, body in zip(parts[1::2], parts[2::2])}
    return [line for line in sections[section].splitlines() if line]


def _idle_timing(out: Path, title: str) -> list[str]:
    """A search timed alone (``out/idle_timing.json``, written by hand from a timed run), if recorded."""
    path = out / "idle_timing.json"
    if not path.exists():
        return []
    data = read_json(path, ValueError, "idle timing")
    rows = [
        f"| {key} | {v['seconds']:.0f} | {v['selection_seconds']:.0f} | {v['returned']} |"
        for key, v in data["tasks"].items()
    ]
    return [
        f"## {title}",
        "",
        f"{data['what']}; commit `{data['commit']}`, load average at start "
        f"{', '.join(f'{v:.2f}' for v in data['load_at_start'])}. The times in its tables above were taken "
        f"with {data.get('tables_load', 'four to six benchmark processes sharing the two cores')}.",
        "",
        "| task | search + selection (s) | of which selection (s) | returned |",
        "|---|---|---|---|",
        *rows,
        "",
    ]


def _details(t: TaskResult) -> list[str]:
    r = t.report
    lines = [
        f"### {t.spec.title} ({t.spec.half})",
        "",
        f"Test {r.metric}, {len(r.methods[0].seeds)} seeds x {r.steps} steps; meta-test {r.seconds:.0f} s. "
        f"Selection: {t.info['selection']['verdict']}",
        "",
        "| method | lr | early-stopped | final | early vs standard (± se) | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for row in r.rows():
        delta = (
            ""
            if row["early_vs_baseline"] is None
            else f"{row['early_vs_baseline']:+.4f} ± {_fmt(row['early_vs_baseline_se'])}"
        )
        lines.append(
            f"| {row['method']} | {row['lr']:.3g} | {_fmt(row['early_mean'])} ± {_fmt(row['early_std'])} | "
            f"{_fmt(row['mean'])} ± {_fmt(row['std'])} | {delta} | {row['early_verdict']} |"
        )
    lines += ["", *(f"- {m.method}: `{m.loss}`" for m in r.methods if m.method.startswith("learned")), ""]
    return lines


def write_report(out: Path, path: Path) -> None:
    """Write ``path`` from every task folder under ``out``."""
    results = [TaskResult(out / key) for key in TASKS if (out / key / "metatest.json").exists()]
    halves = {h: [t for t in results if t.spec.half == h] for h in (EVALUATION, DEVELOPMENT)}
    machines = {(t.info["machine"]["commit"], t.info["command"]) for t in results}
    head = [
        "# Results: does the learned loss hold up on tasks it was not chosen on?",
        "",
        "Generated by `benchmarks/run_results.py` (tasks in `benchmarks/suite.py`); every number is read back "
        "from `results/suite/<task>/metatest.json` and `search.json`.",
        "",
        "Commands (each ran the tasks of its list that this report shows under its commit; a task stopped "
        "part-way was rerun by a later command):",
        "",
        *(f"- Commit `{c}`: `{cmd}`" for c, cmd in sorted(machines)),
        "",
        "Per task: the commit its search and meta-test ran at, its final selection's rerun if any, and the load:",
        "",
        *(
            f"- `{t.key}`: commit `{t.info['machine']['commit']}`"
            + (f", selection rerun at `{t.info['reselected']['machine']['commit']}`" if "reselected" in t.info else "")
            + f"; load average at start {', '.join(f'{v:.1f}' for v in t.info['machine']['load'] or [])};"
            f" {t.info['machine']['cpus']} CPUs, torch {t.info['machine']['torch']}"
            for t in results
        ),
        "",
        "- The default search is `LossSearch(seed=0)`: the `standard` preset. Its search scores each candidate "
        "from two initialisations, each at the better of two lrs (lr x {1, 10}) and its best validation step "
        f"along 500 steps (`{CURRENT_SEARCH}`); the suite's own searches (the per-task tables under each "
        "half) ran before that, with one initialisation at the best of four lrs (lr x {1, 3.16, 10, 31.6}); "
        "the default's targets come from the ablation's reruns of the search (its section first in each "
        "half). Its final selection re-scores "
        "the front's best three and every known loss with the meta-test's protocol (1500 steps, lr tuned, "
        "early-stopped) on five folds, one seed each, scored on the validation rows while a rotating fifth of "
        "the training rows chooses lr and stopping step (`selection_scoring='validation'`), with successive "
        "halving: every loss runs the first two folds, the four best there (and the best known and the best "
        "learned) run the other three (`selection_finalists=4`). It returns a learned loss only if it beats "
        "the best known loss there by 1.5 paired standard errors, else the best known loss if that beats the "
        "task kind's noise-tolerant loss (MAE for classification up to five classes, SCE above five, log-cosh "
        "for regression) by 1.5 paired standard errors, else that loss, each standard error holding the spread "
        "over the folds and the sampling error of the scored rows (`selection_prior='robust-classes'`, "
        "`selection_margin=1.5`, "
        f"`selection_uncertainty='folds-and-rows'`: `{CURRENT_DEFAULT}`, the selections of the same searches rerun "
        "with each row's error kept, their fold errors identical, and decided so). The ablation also runs three "
        "folds for every loss and the other scoring, `'folds'` (rotating folds of the pooled training + "
        "validation rows).",
        "- Meta-test: `meta_test(..., baselines='zoo', tune_lr=True)`: every method, learned or known, at its "
        "own lr of the grid 0.003-0.3 chosen on validation, early-stopped, the same seeds, initialisations and "
        "minibatches; paired verdicts at two standard errors. The test split is used only here.",
        "- The **development** half is where the defaults were chosen; the **evaluation** half is reported only.",
        *_prose("order"),
        "",
    ]
    body = []
    variant, searched = out.parent / "ablation" / CURRENT_DEFAULT, out.parent / "ablation" / CURRENT_SEARCH
    for name, tasks in halves.items():
        if not tasks:
            continue
        body += [f"## {name.capitalize()} half", ""]
        if all((variant / f"{t.key}.json").exists() for t in tasks):
            current = [TaskResult(out / t.key, variant) for t in tasks]
            body += [
                f"### The default search now (`{CURRENT_DEFAULT}`, {name} half)",
                "",
                "The search rerun by `benchmarks/ablation.py` with the default's settings, its short list of "
                "learned losses meta-tested with the suite's seeds; the known losses' rows are the suite's.",
                "",
                *_verdict_table(current),
                f"#### Targets, the default search now ({name} half)",
                "",
                *_targets(current, _idle_seconds(searched), "2 benchmark processes sharing the 2 cores"),
                f"### The suite's searches (the fitness before `{CURRENT_SEARCH}`, {name} half)",
                "",
            ]
        body += [
            *_verdict_table(tasks),
            f"#### Targets, the suite's searches ({name} half)",
            "",
            *_targets(tasks, _idle_seconds(out)),
        ]
    body += [
        "## Ablation: the final selection on and off",
        "",
        "The front's pick is what the search returned before this round (the simplest loss within 5% of the "
        "lowest validation error); the returned loss is the final selection's winner; the next columns are the "
        "winners of the previous default selection (five folds with successive halving, no prior), of the one "
        "before (three folds for every loss, 1500 steps), of an earlier one (600 steps) and of the selection "
        "scored on pooled folds instead (the first design, run first on the evaluation half; see the note "
        "above).",
        "",
        *_ablation(results),
        *_variants(),
        *_probes(),
        *_fresh(),
        *_lr_edge(),
        *_regression_prior(),
        *_idle_timing(searched, "The default search now timed alone"),
        *_idle_timing(out, f"The suite's search (the fitness before `{CURRENT_SEARCH}`) timed alone"),
        "## Rank agreement: does the search's score predict the fair test?",
        "",
        "Spearman correlation, over the short list (the front's best three and the known losses), between each "
        "score and the fair meta-test's early-stopped test error. Before: the search's own fitness (validation "
        "error of partial training; known losses only where the grammar writes them). After: each final "
        "selection's mean error over its runs (a loss screened out by successive halving: over its two "
        "screening runs).",
        "",
        *_ranks(results),
        "## Per task",
        "",
    ]
    for t in results:
        body += _details(t)
    atomic_write_text(path, "\n".join(head + body).rstrip() + "\n")

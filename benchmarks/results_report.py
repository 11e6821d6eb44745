"""RESULTS.md from the per-task files ``run_results.py`` writes: both halves, targets, ablation, rank agreement."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

from results_tables import fmt, idle_seconds, targets_table, verdict_table
from suite import DEVELOPMENT, EVALUATION, TASKS
from task_results import TaskResult

from evomal_sr.core.fileio import atomic_write_text, read_json
from evomal_sr.evaluation.report import paired_difference

#: The ablation variant (``benchmarks/ablation.py``) whose search is the default now: the suite's searches
#: ran with the fitness before it, so the default's targets come from that variant's reruns.
CURRENT_SEARCH = "fitness-seeds-2-grid-2"
#: The ablation variant that is the default now: ``CURRENT_SEARCH``'s searches, their selections rerun or decided
#: again with the default's selection settings (its records name the run whose rows they reuse: ``rows_from``).
CURRENT_DEFAULT = "classes-sce"


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
            cells.append(f"{chosen['winner']} {fmt(other.early_mean)} ({t.change(other):+.0%})" if other else "-")
        lines.append(
            f"| {t.spec.title} | {t.spec.half} | {fmt(t.front_pick.early_mean)} ({t.change(t.front_pick):+.0%}) | "
            f"{t.returned.method} {fmt(t.returned.early_mean)} ({t.change(t.returned):+.0%}) | "
            + " | ".join(cells)
            + f" | {diff:+.4f} ± {fmt(se)} ({verdict}) |"
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
        cells = " | ".join(f"{fmt(v, 2)} ({n})" for v, n in values)
        lines.append(f"| {t.spec.title} | {t.spec.half} | {cells} |")
    means = [f"{fmt(sum(c) / len(c), 2) if c else '-'} ({len(c)} tasks)" for c in columns]
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


def _today() -> list[str]:
    """The headline: today's default judged by today's meta-test (``lr_edge.TodayResult``), per half, with the
    issue's targets; the default timed alone at the commit of ``results/default_now/idle_timing.json``."""
    from lr_edge import OUT, TodayResult

    keys = [k for k in TASKS if (OUT / k / "metatest.json").exists()]
    if not keys:
        return []
    timing = OUT.parent / "default_now"
    lines = ["## Where the targets stand: today's default, by today's meta-test", "", *_prose("today"), ""]
    for which in (EVALUATION, DEVELOPMENT):
        results = [TodayResult(k) for k in keys if TASKS[k].half == which]
        lines += [
            f"### Today's default, {which} half",
            "",
            *verdict_table(results),
            f"#### Targets, today's default ({which} half)",
            "",
            *targets_table(results, idle_seconds(timing), "2-3 benchmark processes sharing the 2 cores"),
        ]
    return lines + [*_idle_timing(timing, "Today's default timed alone")]


def _normalised() -> list[str]:
    """The active-passive losses against the zoo's best (``normalised_losses.py``), from its files."""
    from normalised_losses import OUT, report_lines

    return _saved_section(
        OUT,
        "Does a published robust loss outside the zoo lift the ceiling? (`benchmarks/normalised_losses.py`)",
        "normalised",
        "`python benchmarks/normalised_losses.py --tasks KEY,...` (runs the tasks not yet saved), then "
        "`python benchmarks/normalised_losses.py --report-only`.",
        report_lines,
    )


def _fixed_answers() -> list[str]:
    """Each known loss as a fixed answer against today's default (``fixed_answers.py``), from saved meta-tests."""
    from fixed_answers import OUT, report_lines

    return _saved_section(
        OUT,
        "Would a fixed answer do better? (`benchmarks/fixed_answers.py`)",
        "fixed",
        "`python benchmarks/fixed_answers.py` (reads the saved meta-tests; trains nothing).",
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
            else f"{row['early_vs_baseline']:+.4f} ± {fmt(row['early_vs_baseline_se'])}"
        )
        lines.append(
            f"| {row['method']} | {row['lr']:.3g} | {fmt(row['early_mean'])} ± {fmt(row['early_std'])} | "
            f"{fmt(row['mean'])} ± {fmt(row['std'])} | {delta} | {row['early_verdict']} |"
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
        "task kind's noise-tolerant loss (MAE for classification up to five classes, SCE above five, MAE for "
        "regression since the twelfth session, log-cosh before) by 1.5 paired standard errors, else that loss, "
        "each standard error holding the spread over the folds and the sampling error of the scored rows "
        "(`selection_prior='robust-classes'`, "
        "`selection_margin=1.5`, "
        f"`selection_uncertainty='folds-and-rows'`: `{CURRENT_DEFAULT}`, the selections of the same searches rerun "
        "with each row's error kept, their fold errors identical, and decided so). The ablation also runs three "
        "folds for every loss and the other scoring, `'folds'` (rotating folds of the pooled training + "
        "validation rows).",
        "- Meta-test: `meta_test(..., baselines='zoo', tune_lr=True)`: every method, learned or known, at its "
        "own lr chosen on validation, early-stopped, the same seeds, initialisations and minibatches; paired "
        "verdicts at two standard errors. The test split is used only here. The suite's saved meta-tests chose "
        "each lr from the grid 0.003-0.3 as given; today's (`lr_extend=4`, `lr_fallback=True`, the defaults "
        "since the eleventh and twelfth sessions) extend a method's grid past an edge where its best lr lay and "
        "redo a final run that diverged before its stopping step at the next smaller lr: the first section "
        "judges today's default so (`benchmarks/lr_edge.py`), the later sections keep the judge of their day.",
        "- The **development** half is where the defaults were chosen; the **evaluation** half is reported only.",
        *_prose("order"),
        "",
    ]
    body = _today()
    variant, searched = out.parent / "ablation" / CURRENT_DEFAULT, out.parent / "ablation" / CURRENT_SEARCH
    for name, tasks in halves.items():
        if not tasks:
            continue
        body += [f"## {name.capitalize()} half", ""]
        if all((variant / f"{t.key}.json").exists() for t in tasks):
            current = [TaskResult(out / t.key, variant) for t in tasks]
            body += [
                f"### The default search before the twelfth session (`{CURRENT_DEFAULT}`, {name} half), by the "
                "saved meta-test",
                "",
                "The search rerun by `benchmarks/ablation.py` with the default's settings of that time (log-cosh "
                "the regression prior), its short list of learned losses meta-tested with the suite's seeds; the "
                "known losses' rows are the suite's, every method's lr from the grid 0.003-0.3 as given. Today's "
                "default by today's meta-test is the first section of this report.",
                "",
                *verdict_table(current),
                f"#### Targets, the default search before the twelfth session ({name} half), by the saved meta-test",
                "",
                *targets_table(current, idle_seconds(searched), "2 benchmark processes sharing the 2 cores"),
                f"### The suite's searches (the fitness before `{CURRENT_SEARCH}`, {name} half)",
                "",
            ]
        body += [
            *verdict_table(tasks),
            f"#### Targets, the suite's searches ({name} half)",
            "",
            *targets_table(tasks, idle_seconds(out)),
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
        *_normalised(),
        *_fixed_answers(),
        *_idle_timing(searched, "The default search before the twelfth session timed alone"),
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

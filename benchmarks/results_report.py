"""RESULTS.md from the per-task files ``run_results.py`` writes: both halves, targets, ablation, rank agreement."""

from __future__ import annotations

import math
from pathlib import Path

from results_sections import (
    adaptive_huber,
    fixed_answers,
    flip_transfer,
    fresh,
    idle_timing,
    label_shift,
    lr_edge,
    normalised,
    online_weights,
    probes,
    prose_section,
    regression_metric,
    regression_prior,
    regression_scoring,
    selection_extend,
    today,
    variants,
)
from results_tables import fmt, idle_seconds, targets_table, verdict_table
from suite import DEVELOPMENT, EVALUATION, TASKS
from task_results import TaskResult

from evomal_sr.core.fileio import atomic_write_text
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
        *prose_section("order"),
        "",
    ]
    body = today()
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
        *variants(),
        *probes(),
        *fresh(),
        *lr_edge(),
        *regression_prior(),
        *label_shift(),
        *regression_scoring(),
        *selection_extend(),
        *regression_metric(),
        *adaptive_huber(),
        *online_weights(),
        *normalised(),
        *flip_transfer(),
        *fixed_answers(),
        *idle_timing(searched, "The default search before the twelfth session timed alone"),
        *idle_timing(out, f"The suite's search (the fitness before `{CURRENT_SEARCH}`) timed alone"),
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

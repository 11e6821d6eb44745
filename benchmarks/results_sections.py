"""The report's sections read from other benchmarks' saved files, and its prose (``results_prose.md``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from results_tables import idle_seconds, targets_table, verdict_table
from suite import DEVELOPMENT, EVALUATION, TASKS

from evomal_sr.core.fileio import read_json


def variants() -> list[str]:
    """The settings ablation of ``ablation.py`` (selection horizon and scoring, the grammar), from its files."""
    from ablation import DEVELOPMENT as DEV
    from ablation import EVALUATION as EVAL
    from ablation import OUT, half, per_task, table

    def tables() -> list[str]:
        return [*table({h: [t.key for t in half(h)] for h in (DEV, EVAL)}), "", *per_task([t.key for t in half("all")])]

    return saved_section(
        OUT,
        "Ablation: settings of the default search (`benchmarks/ablation.py`)",
        "variants",
        "`python benchmarks/ablation.py --variant NAME --half development` per variant, then "
        "`python benchmarks/ablation.py --report-only`.",
        tables,
    )


def probes() -> list[str]:
    """The development probes of ``probe_tasks.py`` (more development tasks for one decision), from its files."""
    from probe_tasks import OUT, table

    return saved_section(
        OUT,
        "Development probes: twelve more development tasks (`benchmarks/probe_tasks.py`)",
        "probes",
        "`python benchmarks/probe_tasks.py` (runs the probes not yet run), "
        "`python benchmarks/probe_tasks.py --rerun robust-prior` (the regression probes' reruns) and "
        "`--rerun classes-sce` (the ten-class probes') and `--rerun auto-scoring` (the imbalanced probes'), then "
        "`python benchmarks/probe_tasks.py --report-only`.",
        table,
    )


def fresh() -> list[str]:
    """The fresh probes of ``fresh_probes.py`` (the default on tasks chosen after it was fixed), from its files."""
    from fresh_probes import OUT, table

    return saved_section(
        OUT,
        "Fresh probes of the default (`benchmarks/fresh_probes.py`)",
        "fresh",
        "`python benchmarks/fresh_probes.py` (runs the probes not yet saved), then "
        "`python benchmarks/fresh_probes.py --report-only`.",
        table,
    )


def lr_edge() -> list[str]:
    """The default's meta-tests rerun with the lr grid extended past its edges (``lr_edge.py``), from its files."""
    from lr_edge import OUT, report_lines
    from lr_edge_variant import report_lines as variant_lines

    def tables() -> list[str]:
        return [*report_lines(), "", *variant_lines()]

    return saved_section(
        OUT,
        "Does the meta-test's lr grid bind? (`benchmarks/lr_edge.py`)",
        "lr_edge",
        "`python benchmarks/lr_edge.py --tasks KEY,...` (runs the tasks not yet saved), "
        "`python benchmarks/lr_edge_selection.py --tasks KEY,...` (the reselections), "
        "`python benchmarks/lr_edge_variant.py --tasks KEY,...` (the search variant), then "
        "`python benchmarks/lr_edge.py --report-only`.",
        tables,
    )


def regression_prior() -> list[str]:
    """MAE against log-cosh as the selection's regression prior (``regression_prior.py``), from its files."""
    from regression_prior import OUT, report_lines

    return saved_section(
        OUT,
        "The regression prior: MAE or log-cosh? (`benchmarks/regression_prior.py`)",
        "regression_prior",
        "`python benchmarks/regression_prior.py --tasks KEY,...` (runs what is not saved), then "
        "`python benchmarks/regression_prior.py --report-only`.",
        report_lines,
    )


def today() -> list[str]:
    """The headline: today's default judged by today's meta-test (``lr_edge.TodayResult``), per half, with the
    issue's targets; the default timed alone at the commit of ``results/default_now/idle_timing.json``."""
    from lr_edge import OUT, TodayResult

    keys = [k for k in TASKS if (OUT / k / "metatest.json").exists()]
    if not keys:
        return []
    timing = OUT.parent / "default_now"
    lines = ["## Where the targets stand: today's default, by today's meta-test", "", *prose_section("today"), ""]
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
    return lines + [*idle_timing(timing, "Today's default timed alone")]


def normalised() -> list[str]:
    """The active-passive losses against the zoo's best (``normalised_losses.py``), from its files."""
    from normalised_losses import OUT, report_lines

    return saved_section(
        OUT,
        "Does a published robust loss outside the zoo lift the ceiling? (`benchmarks/normalised_losses.py`)",
        "normalised",
        "`python benchmarks/normalised_losses.py --tasks KEY,...` (runs the tasks not yet saved), then "
        "`python benchmarks/normalised_losses.py --report-only`.",
        report_lines,
    )


def flip_transfer() -> list[str]:
    """The learned loss of digits-seed113 on the other class-dependent-flip probes (``flip_transfer.py``)."""
    from flip_transfer import OUT, report_lines

    return saved_section(
        OUT,
        "Does a fresh probe's winning learned loss carry over? (`benchmarks/flip_transfer.py`)",
        "flip_transfer",
        "`python benchmarks/flip_transfer.py` (runs the probes not yet saved), then "
        "`python benchmarks/flip_transfer.py --report-only`.",
        report_lines,
    )


def fixed_answers() -> list[str]:
    """Each known loss as a fixed answer against today's default (``fixed_answers.py``), from saved meta-tests."""
    from fixed_answers import OUT, report_lines

    return saved_section(
        OUT,
        "Would a fixed answer do better? (`benchmarks/fixed_answers.py`)",
        "fixed",
        "`python benchmarks/fixed_answers.py` (reads the saved meta-tests; trains nothing).",
        report_lines,
    )


def label_shift() -> list[str]:
    """Label smoothing as the prior under label shift against the default's selection (``label_shift_prior.py``)."""
    from label_shift_prior import OUT, report_lines

    return saved_section(
        OUT,
        "Label smoothing under label shift (`benchmarks/label_shift_prior.py`)",
        "label_shift",
        "`python benchmarks/label_shift_prior.py --tasks KEY,...` (runs what is not saved), then "
        "`python benchmarks/label_shift_prior.py --report-only`.",
        report_lines,
    )


def regression_scoring() -> list[str]:
    """Validation-row folds on regression tasks against the default's selection (``regression_scoring.py``)."""
    from regression_scoring import OUT, report_lines

    return saved_section(
        OUT,
        "Where the folds choose on regression tasks (`benchmarks/regression_scoring.py`)",
        "regression_scoring",
        "`python benchmarks/regression_scoring.py --tasks KEY,...` (runs what is not saved), then "
        "`python benchmarks/regression_scoring.py --report-only`.",
        report_lines,
    )


def selection_extend() -> list[str]:
    """The final selection with each fold's lr grid extended, against today's (``selection_extend.py``)."""
    from selection_extend import OUT, report_lines

    return saved_section(
        OUT,
        "The selection's lr grid extended like the judge's (`benchmarks/selection_extend.py`)",
        "selection_extend",
        "`python benchmarks/selection_extend.py --tasks KEY,... --probes NAME,...` (runs what is not saved), then "
        "`python benchmarks/selection_extend.py --report-only`.",
        report_lines,
    )


def regression_metric() -> list[str]:
    """A bounded metric for the regression folds against today's MSE (``regression_metric.py``)."""
    from regression_metric import OUT, report_lines

    return saved_section(
        OUT,
        "Which metric scores the regression folds? (`benchmarks/regression_metric.py`)",
        "regression_metric",
        "`python benchmarks/regression_metric.py --tasks KEY,...` (runs what is not saved), then "
        "`python benchmarks/regression_metric.py --report-only`.",
        report_lines,
    )


def adaptive_huber() -> list[str]:
    """``adaptive-huber`` in the regression zoo and as the prior."""
    from adaptive_huber import OUT, report_lines
    from adaptive_huber_prior import OUT as SECOND
    from adaptive_huber_prior import report_lines as second_lines

    return saved_section(
        OUT,
        "A Huber loss whose threshold follows the residuals (`benchmarks/adaptive_huber.py`)",
        "adaptive_huber",
        "`python benchmarks/adaptive_huber.py --rows --tasks KEY,...` (the new loss's rows), `python "
        "benchmarks/adaptive_huber.py --tasks KEY,...` (the selections), `python benchmarks/adaptive_huber_prior.py "
        "--tasks KEY,...` (the second look), then each with `--report-only`.",
        lambda: [*report_lines(), "", *(second_lines() if SECOND.exists() else [])],
    )


def online_weights() -> list[str]:
    """The short list's learned losses with edge weights adapting online (``online_weights.py``)."""
    from online_weights import OUT, report_lines

    return saved_section(
        OUT,
        "Edge weights that keep learning during training (`benchmarks/online_weights.py`)",
        "online_weights",
        "`python benchmarks/online_weights.py --tasks KEY,...` (runs what is not saved), then "
        "`python benchmarks/online_weights.py --report-only`.",
        report_lines,
    )


def saved_section(folder: Path, title: str, prose: str, regenerate: str, tables: Callable[[], list[str]]) -> list[str]:
    """A report section of a benchmark's saved files (none before it ran): its title, its prose, how to
    regenerate it, its tables."""
    if not folder.exists():
        return []
    return [f"## {title}", "", *prose_section(prose), "", f"Regenerate: {regenerate}", "", *tables(), ""]


def prose_section(section: str) -> list[str]:
    """A section of ``results_prose.md`` (the report's prose, kept out of the code), as its lines."""
    text = Path(__file__).with_name("results_prose.md").read_text(encoding="utf-8")
    parts = re.split(r"^<!-- section: (\w+) -->$", text, flags=re.MULTILINE)
    sections = {name: body.strip() for name, body in zip(parts[1::2], parts[2::2])}
    return [line for line in sections[section].splitlines() if line]


def idle_timing(out: Path, title: str) -> list[str]:
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

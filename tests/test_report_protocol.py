"""What ``print(report)`` and a notebook show.

The meta-test report prints its protocol (seeds x steps, learning rates, early
stopping), its table, and the best tested loss against the best *known* loss,
paired over seeds with the two-standard-error verdict; reports and Pareto fronts
render as HTML tables in Jupyter.
"""

from __future__ import annotations

import html

import pytest

import evomal_sr as es
from evomal_sr.evaluation.metatest import LR_FACTORS
from evomal_sr.evaluation.report import MetaTestReport, MethodResult
from evomal_sr.results.front import FrontEntry, ParetoFront

GRID = [0.01 * f for f in LR_FACTORS]


def _row(method, early, *, baseline=False, known=False, lr=0.03):
    n = len(early)
    return MethodResult(
        method,
        f"{method} loss",
        0,
        list(range(n)),
        [e + 0.05 for e in early],
        [False] * n,
        1.0,
        lr=lr,
        early_errors=list(early),
        stop_steps=[60] * n,
        lr_grid=GRID,
        lr_scores=[0.1] * len(GRID),
        baseline=baseline,
        known=known,
    )


def _report(learned, sce, ce=(0.30, 0.32, 0.31), gce=(0.25, 0.26, 0.27), **options):
    rows = [
        _row("learned", learned),
        _row("cross-entropy", ce, baseline=True, known=True),
        _row("sce", sce, known=True),
        _row("gce", gce, known=True),
    ]
    settings = {"tune_lr": True, "eval_every": 60, "seconds": 9.0, **options}
    return MetaTestReport({"name": "digits", "model": "mlp"}, "error rate", 3000, 0.01, 32, "cpu", rows, **settings)


def test_print_shows_the_protocol_first():
    text = str(_report([0.10, 0.11, 0.12], [0.20, 0.21, 0.22]))
    lines = text.splitlines()
    assert lines[0] == "Meta-test on digits (mlp model): 3 seeds x 3000 SGD steps, batch 32, cpu; test error rate."
    assert lines[1] == "Learning rate: tuned per method on the validation rows from 0.003, 0.01, 0.03, 0.1, 0.3."
    assert (
        lines[2] == "Early stopping: the step of lowest validation error (checked every 60 steps) in a run on the "
        "training rows."
    )
    assert lines[3].startswith("Final models train on train + validation rows; tested at that step (early-stopped)")
    assert "method" in lines[5] and "early vs base (±se)" in lines[5]  # the table, its columns unchanged


def test_an_untuned_report_names_its_single_lr():
    text = _report([0.1] * 3, [0.2] * 3, tune_lr=False).protocol()
    assert "Learning rate: 0.01 for every method (not tuned)." in text


@pytest.mark.parametrize(
    "learned, verdict, delta",
    [
        ([0.10, 0.11, 0.12], "better", "-0.1000"),  # 0.1 below sce on every seed
        ([0.30, 0.31, 0.32], "worse", "+0.1000"),
        ([0.15, 0.24, 0.20], "within noise", "-0.0133"),
    ],
)
def test_the_comparison_is_against_the_best_known_loss(learned, verdict, delta):
    report = _report(learned, [0.20, 0.21, 0.22])
    assert report.best_known().method == "sce"  # not the standard loss (cross-entropy), the best of the known
    line = report.comparison()
    assert line.startswith(f"learned vs the best known loss (sce): early-stopped error rate {delta}")
    assert f"paired over 3 seeds: {verdict}" in line
    assert str(report).endswith(line)


def test_one_seed_has_no_verdict_and_no_known_loss_no_line():
    report = _report([0.1], [0.2], ce=(0.3,), gce=(0.25,))
    assert report.comparison().endswith("paired over 1 seeds: n/a (a verdict needs two standard errors).")
    alone = MetaTestReport({"name": "iris"}, "MSE", 10, 0.01, 8, "cpu", [_row("learned", [0.1, 0.2])])
    assert alone.comparison() == "" and str(alone) == f"{alone.protocol()}\n\n{alone.table()}"


def test_known_survives_json_and_old_reports_are_read(tmp_path):
    report = _report([0.10, 0.11, 0.12], [0.20, 0.21, 0.22])
    report.to_json(tmp_path / "r.json")
    loaded = MetaTestReport.load(tmp_path / "r.json")
    assert [r.known for r in loaded.methods] == [False, True, True, True]
    old = report.to_dict()
    for row in old["methods"]:
        del row["known"]  # written before the field existed
    assert [r.known for r in MetaTestReport.from_dict(old).methods] == [False, True, True, True]
    assert MetaTestReport.from_dict(old).comparison() == report.comparison()


def test_markdown_has_the_comparison():
    report = _report([0.10, 0.11, 0.12], [0.20, 0.21, 0.22])
    assert report.comparison() in report.to_markdown()


def test_a_real_meta_test_prints_protocol_and_comparison():
    task = es.Task.builtin("iris", seed=0, model="linear")
    report = es.meta_test(
        es.LearnedLoss("-(y * log(fx))"), task, seeds=2, steps=20, baselines=["standard", "mae"], verbose=0
    )
    text = str(report)
    assert text.startswith("Meta-test on iris (linear model): 2 seeds x 20 SGD steps")
    assert [r.known for r in report.methods] == [False, True, True]
    best = min(report.methods[1:], key=lambda r: (r.early_mean, r.method)).method
    assert f"learned vs the best known loss ({best}): early-stopped error rate" in text


# -- notebooks ----------------------------------------------------------------------------------------
def test_the_report_is_an_html_table_with_every_row():
    report = _report([0.10, 0.11, 0.12], [0.20, 0.21, 0.22])
    report.methods[0].method = "<b>mine</b>"
    page = report._repr_html_()
    assert page.count("<tr>") == 1 + len(report.methods)
    for row in report.methods:
        assert f"<tr><td>{html.escape(row.method)}</td>" in page
    assert "<b>mine</b>" not in page and "&lt;b&gt;mine&lt;/b&gt;" in page
    assert "<th>early-stopped error rate</th>" in page and "<th>verdict</th>" in page
    assert f"<p>{html.escape(report.comparison())}</p>" in page
    assert "<p>Meta-test on digits (mlp model): 3 seeds x 3000 SGD steps" in page


def test_a_front_is_an_html_table_with_every_entry():
    entries = [
        FrontEntry("-(y * log(fx))", (1.0,) * 4, 0.2, 5),
        FrontEntry("square((fx - y))", (1.0, 0.5, 1.0), 0.3, 4),
        FrontEntry("(log(fx) * (y * log(fx)))", (1.0,) * 6, 0.1, 7),
    ]
    front = ParetoFront(entries, task_kind="classification")
    page = front._repr_html_()
    assert page.count("<tr>") == 1 + len(front)
    for i, entry in enumerate(front):
        assert f"<tr><td>{i}</td><td>{entry.complexity}</td>" in page
        assert f"<td>{html.escape(entry.equation())}</td></tr>" in page
    assert "<td>accuracy,best</td>" in page and "Pareto front of 3 classification losses." in page
    empty = ParetoFront([], task_kind="regression")._repr_html_()
    assert "<tbody></tbody>" in empty

"""The meta-test's learning-rate grid grows past an edge where a method's best lr lies (``lr_extend``)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import evomal_sr as es
from evomal_sr.errors import ConfigError
from evomal_sr.evaluation.metatest import LR_EXTEND, extend_lr, meta_test
from evomal_sr.evaluation.report import MetaTestReport

SMALL = [1e-3, 3e-3]  # too small for 30 steps: every method's best lr is the grid's largest


@pytest.fixture(scope="module")
def iris():
    return es.Task.builtin("iris", seed=0, model="linear")


def run(iris, **options):
    options = {"seeds": 2, "steps": 30, "eval_every": 10, "tune_lr": True, "verbose": 0, **options}
    return meta_test(es.LearnedLoss("-(y * log(fx))"), iris, baselines=["mae"], **options)


@pytest.mark.parametrize(
    "grid, scores, expected",
    [
        ([0.01, 0.03, 0.1], [0.5, 0.4, 0.3], 0.1 * 0.1 / 0.03),  # best at the top: one step up by the top ratio
        ([0.01, 0.03, 0.1], [0.2, 0.4, 0.3], 0.01 / 3),  # at the bottom: one step down
        ([0.01, 0.03, 0.1], [0.5, 0.2, 0.3], None),  # inside: tuned
        ([0.01, 0.03, 0.1], [0.3, 0.4, 0.3], 0.01 / 3),  # a tie goes to the smaller lr, as the selection's
        ([0.01, 0.03, 0.1], [0.3, 0.3, 0.5], None),  # flat at the bottom: says nothing of smaller lrs
        ([0.01], [0.3], None),  # one lr: no ratio to extend by
        ([0.01, 0.03], [math.inf, math.inf], None),  # nothing finite: no edge to move past
        ([0.01, 0.03], [math.inf, 0.5], 0.09),  # the smaller diverged: the larger is the best
    ],
)
def test_extend_lr(grid, scores, expected):
    beyond = extend_lr(grid, scores)
    assert beyond == expected if expected is None else math.isclose(beyond, expected)


@given(
    st.lists(st.floats(1e-5, 10.0), min_size=2, max_size=6, unique=True),
    st.lists(st.floats(0.0, 1.0), min_size=6, max_size=6),
)
def test_an_extension_lies_outside_the_grid_by_its_edge_ratio(lrs, scores):
    grid = sorted(lrs)
    beyond = extend_lr(grid, scores[: len(grid)])
    if beyond is None:
        return
    if beyond > grid[-1]:
        assert math.isclose(beyond / grid[-1], grid[-1] / grid[-2])
    else:
        assert beyond < grid[0] and math.isclose(grid[0] / beyond, grid[1] / grid[0])


def test_a_method_at_the_top_edge_gets_its_grid_extended(iris):
    report = run(iris, lr_grid=SMALL, lr_extend=2)
    assert report.lr_extend == 2 and "extended up to 2 step(s)" in report.protocol()
    for row in report.methods:
        assert row.lr_grid[:2] == SMALL and len(row.lr_grid) == 4, row.lr_grid
        assert math.isclose(row.lr_grid[2], 9e-3) and math.isclose(row.lr_grid[3], 2.7e-2)
        assert len(row.lr_scores) == 4 and row.lr == row.lr_grid[min(range(4), key=lambda g: (row.lr_scores[g], g))]
    # the grid as given, though every method ran 0.009 and 0.027 too (each an extension of its own)
    assert report.lr_grid == SMALL and "from 0.001, 0.003, each grid extended" in report.protocol()


def test_a_report_names_its_given_grid_and_older_files_the_lrs_every_row_ran(iris, tmp_path):
    report = run(iris, lr_grid=SMALL, lr_extend=1)
    assert MetaTestReport.load(report.to_json(tmp_path / "r.json")).given_lr_grid() == SMALL
    data = report.to_dict()
    del data["lr_grid"]  # a file written before the report recorded it
    older = MetaTestReport.from_dict(data)
    assert older.lr_grid == [] and older.given_lr_grid() == pytest.approx([*SMALL, 9e-3])
    assert run(iris, tune_lr=False, lr=1e-3).lr_grid == []  # an untuned meta-test has no grid


def test_lr_extend_zero_keeps_the_grid_and_an_extension_is_the_run_that_lr_has_in_the_grid(iris):
    kept = run(iris, lr_grid=SMALL, lr_extend=0)
    assert all(row.lr_grid == SMALL and row.lr == SMALL[-1] for row in kept.methods)
    extended = run(iris, lr_grid=SMALL, lr_extend=1)
    given_grid = run(iris, lr_grid=[*SMALL, 9e-3], lr_extend=0)
    for a, b in zip(extended.methods, given_grid.methods):
        assert a.lr_grid == pytest.approx(b.lr_grid)
        assert a.lr_scores == b.lr_scores and a.val_curves == b.val_curves  # the same bits
        assert a.early_errors == b.early_errors and a.stop_steps == b.stop_steps


def test_an_untuned_meta_test_never_extends(iris):
    report = run(iris, tune_lr=False, lr=1e-3)
    assert report.lr_extend == 0 and all(row.lr_grid == [1e-3] for row in report.methods)


def test_the_default_and_a_report_round_trip(iris, tmp_path):
    report = run(iris, lr_grid=SMALL)
    assert report.lr_extend == LR_EXTEND == 4
    loaded = MetaTestReport.load(report.to_json(tmp_path / "r.json"))
    assert loaded.lr_extend == 4 and [r.lr_grid for r in loaded.methods] == [r.lr_grid for r in report.methods]
    data = report.to_dict()
    del data["lr_extend"]  # a file written before the setting: the grid as given
    assert MetaTestReport.from_dict(data).lr_extend == 0


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_a_bad_lr_extend_is_refused(iris, bad):
    with pytest.raises(ConfigError, match="lr_extend must be a whole number >= 0"):
        run(iris, lr_extend=bad)

"""Hall of fame and Pareto front: selection, CSV/JSON round trips, hostile files, plots."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest
import torch

from evomal_sr import ConfigError, LossFileError
from evomal_sr.grammar.expression import Expression
from evomal_sr.losses.symbolic import LearnedLoss
from evomal_sr.results.front import FRONT_FORMAT, FrontEntry, ParetoFront, load_front, non_dominated
from evomal_sr.results.hall_of_fame import HallOfFame


def entry(expression: str, fitness: float, *, complexity: int | None = None, weights=None) -> FrontEntry:
    """A front entry; ``complexity`` may be faked to build fronts by hand."""
    expr = Expression.parse(expression)
    if weights is None:
        weights = tuple(1.0 + 0.01 * (i + 1) for i in range(expr.size - 1))
    return FrontEntry(str(expr), tuple(weights), fitness, expr.complexity if complexity is None else complexity)


def fake_front(pairs, kind: str = "classification") -> ParetoFront:
    """A front of (complexity, fitness) pairs; the expression only tells entries apart."""
    return ParetoFront([entry(f"(y * {c}.0)", f, complexity=c) for c, f in pairs], task_kind=kind)


@pytest.fixture()
def real_front() -> ParetoFront:
    entries = [
        entry("-(y * log(fx))", 0.30, weights=(0.9, 1.1, 1.05, 0.97)),
        entry("square((fx - y))", 0.40),
        entry("aq((y - fx), sqrt(fx))", 0.20),
        entry("(max(y, fx) * log(abs((fx + -0.5))))", 0.10),
        entry("((y * 2.0) - tanh(fx))", 0.25),  # complexity 6 like the aq loss, which is better: dropped
    ]
    return ParetoFront(
        entries, task_kind="classification", config={"seed": 3, "preset": "tiny", "task": {"name": "iris"}}
    )


# -- non_dominated / hall of fame ----------------------------------------------------------


def test_non_dominated_keeps_strict_improvements_by_complexity():
    entries = [
        entry(f"(y * {c}.0)", f, complexity=c)
        for c, f in [(5, 0.4), (3, 0.5), (4, 0.6), (5, 0.3), (7, 0.3), (8, 0.1), (9, math.inf)]
    ]
    front = non_dominated(entries)
    assert [(e.complexity, e.fitness) for e in front] == [(3, 0.5), (5, 0.3), (8, 0.1)]
    assert non_dominated([]) == []


def test_hall_of_fame_keeps_best_per_complexity_and_first_on_ties():
    first = entry("(y * fx)", 0.5)
    tie = entry("(y - fx)", 0.5)  # same complexity, same fitness: the first stays
    better = entry("(y + fx)", 0.4)
    simple_bad = entry("log((y * fx))", 0.9)
    hof = HallOfFame([first])
    hof.update([tie, entry("aq(y, fx)", math.inf), entry("min(y, fx)", math.nan)])
    assert hof.entries() == [first]
    hof.update([better, simple_bad])
    assert hof.entries() == [better, simple_bad]  # sorted by complexity: 3 then 4
    assert len(hof) == 2
    restored = HallOfFame.from_list(json.loads(json.dumps(hof.to_list())))
    assert restored.entries() == hof.entries()
    front = hof.front(task_kind="regression")
    assert [e.expression for e in front] == ["(y + fx)"]  # log((y*fx)) is dominated


def test_hall_of_fame_from_list_refuses_non_lists():
    with pytest.raises(LossFileError):
        HallOfFame.from_list({"expression": "(y * fx)"})
    with pytest.raises(LossFileError):
        HallOfFame.from_list([{"expression": "(y * fx)"}])


# -- selection -------------------------------------------------------------------------------


def test_select_accuracy_index_and_errors():
    front = fake_front([(1, 0.5), (3, 0.45), (5, 0.1), (8, 0.09)])
    assert front.select("accuracy").complexity == 8
    assert front.select(0).complexity == 1
    assert front.select(-1).complexity == 8
    assert front[2].complexity == 5 and len(front) == 4
    for bad in (4, -5, 100):
        with pytest.raises(ConfigError, match="out of range"):
            front.select(bad)
    for bad in ("fastest", True, None, 1.0):
        with pytest.raises(ConfigError):
            front.select(bad)
    with pytest.raises(ConfigError, match="empty"):
        ParetoFront([], task_kind="regression").select("best")


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        # steepest log-drop per unit complexity among losses within 1.5x of the lowest
        ([(1, 0.5), (3, 0.45), (5, 0.1), (8, 0.09)], 5),
        # the steepest drop overall (complexity 2) is eligible: 0.2 <= 1.5 * 0.15
        ([(1, 1.0), (2, 0.2), (10, 0.15)], 2),
        # the steepest drop (complexity 2) is not within 1.5x of the lowest: the knee must be eligible
        ([(1, 1.0), (2, 0.3), (10, 0.1)], 10),
        # an error of zero does not break the logarithm
        ([(3, 0.1), (5, 0.0)], 5),
        # a single loss is its own knee
        ([(4, 0.3)], 4),
    ],
)
def test_select_best_follows_pysr_knee_rule(pairs, expected):
    front = fake_front(pairs)
    assert front.select("best").complexity == expected
    assert front.select().complexity == expected  # "best" is the default


def test_knee_rule_matches_direct_computation():
    pairs = [(1, 0.9), (2, 0.6), (4, 0.35), (5, 0.3), (9, 0.28), (12, 0.25)]
    front = fake_front(pairs)
    lowest = min(f for _, f in pairs)
    scores = [0.0] + [-math.log(f / pf) / (c - pc) for (pc, pf), (c, f) in zip(pairs, pairs[1:])]
    eligible = [i for i, (_, f) in enumerate(pairs) if f <= 1.5 * lowest]
    want = max(eligible, key=lambda i: scores[i])
    assert front.select("best").complexity == pairs[want][0]


def test_best_loss_carries_metadata(real_front):
    loss = real_front.best_loss("accuracy")
    assert isinstance(loss, LearnedLoss)
    assert str(loss.expression) == real_front.select("accuracy").expression
    assert loss.metadata["fitness"] == real_front.select("accuracy").fitness
    assert loss.metadata["seed"] == 3 and loss.metadata["task"] == {"name": "iris"}


# -- CSV ---------------------------------------------------------------------------------------


def _inputs(kind: str, n_outputs: int = 3):
    gen = torch.Generator().manual_seed(0)
    output = torch.randn(16, n_outputs, generator=gen)
    if kind == "classification":
        return output, torch.randint(0, n_outputs, (16,), generator=gen)
    return output, torch.randn(16, n_outputs, generator=gen)


@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_to_csv_layout_and_equation_value(real_front, tmp_path, kind):
    front = ParetoFront(list(real_front), task_kind=kind)
    path = front.to_csv(tmp_path / "pareto.csv")
    text = path.read_text()
    assert text.splitlines()[0] == "Complexity,Loss,Equation"
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(front) == 4
    output, target = _inputs(kind)
    for row, e in zip(rows, front):
        assert int(row["Complexity"]) == e.complexity
        assert float(row["Loss"]) == e.fitness
        folded = Expression.parse(row["Equation"])
        assert row["Equation"] == e.equation()  # simplified, constants to 4 significant digits
        learned = LearnedLoss(e.expression, task=kind, weights=list(e.weights))
        unit = LearnedLoss(folded, task=kind)
        torch.testing.assert_close(unit(output, target), learned(output, target), rtol=1e-2, atol=1e-4)
        exact = LearnedLoss(Expression.parse(e.equation(digits=None)), task=kind)  # the same function, exactly
        torch.testing.assert_close(exact(output, target), learned(output, target), rtol=1e-5, atol=1e-6)
        if any(w != 1.0 for w in e.weights):
            assert row["Equation"] != e.expression  # weights really are folded in


def test_csv_of_unit_weights_is_the_expression():
    e = entry("-(y * log(fx))", 0.2, weights=(1.0, 1.0, 1.0, 1.0))
    text = ParetoFront([e], task_kind="classification").to_csv_text()
    assert text == "Complexity,Loss,Equation\n5,0.2,-(y * log(fx))\n"


def test_to_dataframe(real_front):
    df = real_front.to_dataframe()
    assert list(df.columns) == ["index", "complexity", "loss", "score", "expression", "equation"]
    assert len(df) == len(real_front)
    assert real_front.table().splitlines()[0].split()[:2] == ["#", "complexity"]


# -- JSON --------------------------------------------------------------------------------------


def test_json_round_trip(real_front, tmp_path):
    path = real_front.to_json(tmp_path / "pareto.json")
    data = json.loads(path.read_text())
    assert data["format"] == FRONT_FORMAT
    assert data["entries"][0].keys() >= {"expression", "weights", "fitness", "complexity"}
    loaded = load_front(path)
    assert loaded.entries == real_front.entries
    assert loaded.config == real_front.config
    assert loaded.task_kind == "classification"
    assert load_front(tmp_path).entries == real_front.entries  # a run folder works too
    assert load_front(str(tmp_path)).entries == real_front.entries


def test_load_front_missing(tmp_path):
    with pytest.raises(LossFileError, match="no Pareto front"):
        load_front(tmp_path)
    with pytest.raises(LossFileError):
        load_front(tmp_path / "nope.json")


def _valid(real_front) -> dict:
    return json.loads(json.dumps(real_front.to_dict()))


def _entry_with(**changes) -> dict:
    data = {"expression": "(y * fx)", "weights": [1.0, 1.0], "fitness": 0.5, "complexity": 3}
    data.update(changes)
    return data


HOSTILE_DOCUMENTS = [
    [],
    "pareto",
    None,
    {"format": "evomal-sr/learned-loss", "version": 1, "entries": []},
    {"format": FRONT_FORMAT, "version": 99, "task_kind": "regression", "entries": []},
    {"format": FRONT_FORMAT, "version": 1, "task_kind": "regression", "entries": {"a": 1}},
    {"format": FRONT_FORMAT, "version": 1, "task_kind": "regression", "entries": [], "config": None},
    {"format": FRONT_FORMAT, "version": 1, "task_kind": "ranking", "entries": []},
    {"format": FRONT_FORMAT, "version": 1, "task_kind": ["regression"], "entries": []},
]
HOSTILE_ENTRIES = [
    "(y * fx)",
    [1, 2, 3],
    {},
    _entry_with(expression="__import__('os').system('echo pwned')"),
    _entry_with(expression="(y * fx); import os"),
    _entry_with(expression=5),
    _entry_with(expression="(" * 5000 + "y" + ")" * 5000),
    _entry_with(weights=[1.0]),
    _entry_with(weights=[1.0, 1.0, 1.0]),
    _entry_with(weights="11"),
    _entry_with(weights=[1.0, "1.0"]),
    _entry_with(weights=[1.0, True]),
    _entry_with(weights=[1.0, 10**400]),
    _entry_with(weights=[1.0, 1e308 * 10]),
    _entry_with(weights=None),
    _entry_with(fitness="nan"),
    _entry_with(fitness="0.5"),
    _entry_with(fitness=[0.5]),
    _entry_with(fitness=10**400),
]


@pytest.mark.parametrize("document", HOSTILE_DOCUMENTS, ids=range(len(HOSTILE_DOCUMENTS)))
def test_hostile_documents(tmp_path, document):
    path = tmp_path / "pareto.json"
    path.write_text(json.dumps(document))
    with pytest.raises(LossFileError):
        load_front(path)


@pytest.mark.parametrize("bad_entry", HOSTILE_ENTRIES, ids=range(len(HOSTILE_ENTRIES)))
def test_hostile_entries(tmp_path, real_front, bad_entry):
    data = _valid(real_front)
    data["entries"].append(bad_entry)
    path = tmp_path / "pareto.json"
    path.write_text(json.dumps(data).replace("Infinity", "1e999"))
    with pytest.raises(LossFileError):
        load_front(path)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        '{"format": "evomal-sr/pareto-front", "version": 1, "entries": [',
        '{"format": NaN}',
        '{"entries": [Infinity]}',
        "[" * 100_000 + "]" * 100_000,
        "not json at all",
    ],
)
def test_malformed_json_text(tmp_path, text):
    path = tmp_path / "pareto.json"
    path.write_text(text)
    with pytest.raises(LossFileError):
        load_front(path)


def test_non_utf8_file(tmp_path):
    path = tmp_path / "pareto.json"
    path.write_bytes(b'{"format": "\xff\xfe"}')
    with pytest.raises(LossFileError):
        load_front(path)


def test_front_truncated_after_valid_write(tmp_path, real_front):
    path = real_front.to_json(tmp_path / "pareto.json")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(LossFileError, match="not valid JSON"):
        load_front(tmp_path)


# -- plots ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG"), (".svg", b"<svg")])
def test_plot_writes_image(real_front, tmp_path, suffix, magic):
    hof = list(real_front) + [entry("(y * fx)", 0.9)]
    path = real_front.plot(tmp_path / "sub" / f"front{suffix}", hall_of_fame=hof, title="test")
    assert path.exists() and path.stat().st_size > 1000
    assert magic in path.read_bytes()[:400]
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_plot_empty_front(tmp_path):
    path = ParetoFront([], task_kind="regression").plot(tmp_path / "empty.png")
    assert path.stat().st_size > 0


@pytest.mark.parametrize("name", ["front.txt", "front", "front.json"])
def test_plot_bad_suffix(real_front, tmp_path, name):
    import matplotlib.pyplot as plt

    before = len(plt.get_fignums())
    with pytest.raises(ConfigError, match="must end in"):
        real_front.plot(tmp_path / name)
    assert not (tmp_path / name).exists()
    assert len(plt.get_fignums()) == before  # the figure was closed, not leaked


def test_selection_tolerance_prefers_the_simplest_loss_within_it():
    entries = [
        FrontEntry("square((fx - y))", (1.0, 1.0, 1.0), 0.50, 4),
        FrontEntry("abs((fx - y))", (1.0, 1.0, 1.0), 0.49, 5),
        FrontEntry("sqrt(abs((fx - y)))", (1.0, 1.0, 1.0, 1.0), 0.40, 6),
    ]
    plain = ParetoFront(entries, task_kind="regression")
    assert plain.select("accuracy").complexity == 6 and plain.selection_tolerance == 0.0
    close = ParetoFront(entries[:2], task_kind="regression", config={"settings": {"selection_tolerance": 0.05}})
    assert close.select("accuracy").complexity == 4  # 0.50 is within 5% of 0.49
    far = ParetoFront(entries, task_kind="regression", config={"settings": {"selection_tolerance": 0.05}})
    assert far.select("accuracy").complexity == 6  # 0.49 is not within 5% of 0.40
    bad = ParetoFront(entries, task_kind="regression", config={"settings": {"selection_tolerance": "x"}})
    assert bad.selection_tolerance == 0.0

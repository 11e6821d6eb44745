"""The benchmark suite of ``run_results.py``: tasks, in two halves.

Presets and defaults may be chosen on the **development** half only; the
**evaluation** half is looked at only to report. The six tasks of the first
RESULTS round are kept (``legacy``), split between the halves. Every task is a
built-in or synthetic dataset with the MLP, seeded (``seed`` of the run), its
test labels never corrupted.

The conditions: label noise in the training split only (the first round's), in
the training *and* validation splits (a user with noisy labels has no clean
validation split), pair noise (each class flips to the next one), heavy-tailed
(Student-t) regression noise, bounded outliers, class imbalance (9:1), no noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEVELOPMENT, EVALUATION = "development", "evaluation"
BOTH = ("train", "val")
#: Each built-in classification dataset's number of classes (the selection's prior depends on it).
CLASSES = {"digits": 10, "mnist1d": 10, "wine": 3, "iris": 3, "breast_cancer": 2}


@dataclass(frozen=True)
class SuiteTask:
    """One benchmark task: a built-in dataset and the :meth:`Task.builtin` options that make its condition."""

    key: str
    dataset: str
    half: str
    condition: str
    options: dict = field(default_factory=dict)
    noisy: bool = False
    legacy: bool = False

    def build(self, seed: int):
        from evomal_sr import Task

        return Task.builtin(self.dataset, seed=seed, model="mlp", **self.options)

    @property
    def title(self) -> str:
        return f"{self.dataset} ({self.condition})"


def _splits(splits) -> dict:
    """``noisy_splits`` where it is not ``Task.builtin``'s default (the training rows only)."""
    return {"noisy_splits": splits} if tuple(splits) != ("train",) else {}


def symmetric(rate: float, splits=("train",)) -> dict:
    """``Task.builtin`` options: symmetric label noise at ``rate`` in ``splits``."""
    return {"label_noise": rate, **_splits(splits)}


def pair(rate: float, splits=BOTH) -> dict:
    """``Task.builtin`` options: pair label noise (each class flips to the next) at ``rate`` in ``splits``."""
    return {"label_noise": rate, "noise": "pair", **_splits(splits)}


def flips(rate: float, classes: int, pairs: dict[int, int], splits=("train",)) -> dict:
    """``Task.builtin`` options: asymmetric label noise, class ``i`` flipping to ``pairs[i]`` at ``rate``
    (the other classes clean), as a transition matrix in ``splits``.

    Examples
    --------
    >>> flips(0.3, 3, {0: 1})["noise"]
    [[0.7, 0.3, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    matrix = [[float(i == j) for j in range(classes)] for i in range(classes)]
    for source, target in pairs.items():
        matrix[source][source], matrix[source][target] = round(1.0 - rate, 12), rate
    return {"noise": matrix, **_splits(splits)}


def student_t(scale: float, df: float, splits=BOTH) -> dict:
    """``Task.builtin`` options: Student-t target noise (``df``, ``scale`` target stds) in ``splits``."""
    return {"target_noise": "student_t", "noise_df": df, "noise_scale": scale, **_splits(splits)}


SUITE: tuple[SuiteTask, ...] = (
    # -- development half: presets and defaults are chosen here
    SuiteTask("digits", "digits", DEVELOPMENT, "no noise", legacy=True),
    SuiteTask("digits-noise40", "digits", DEVELOPMENT, "40% symmetric noise, train", symmetric(0.4), True, True),
    SuiteTask("diabetes", "diabetes", DEVELOPMENT, "no noise", legacy=True),
    SuiteTask("wine-pair30", "wine", DEVELOPMENT, "30% pair noise, train + val", pair(0.3), True),
    SuiteTask(
        "mnist1d-noise20-val", "mnist1d", DEVELOPMENT, "20% symmetric noise, train + val", symmetric(0.2, BOTH), True
    ),
    SuiteTask(
        "friedman1-t2",
        "friedman1",
        DEVELOPMENT,
        "Student-t noise (df 2, scale 0.5 std), train + val",
        student_t(0.5, 2.0),
        True,
    ),
    SuiteTask("breast_cancer-imbalance9", "breast_cancer", DEVELOPMENT, "9:1 class imbalance", {"imbalance": 9.0}),
    SuiteTask("sinusoid-outliers20", "sinusoid", DEVELOPMENT, "20% outlier targets, train", symmetric(0.2), True),
    SuiteTask("iris-noise30-val", "iris", DEVELOPMENT, "30% symmetric noise, train + val", symmetric(0.3, BOTH), True),
    SuiteTask("digits-pair20", "digits", DEVELOPMENT, "20% pair noise, train + val", pair(0.2), True),
    # -- evaluation half: looked at only to report
    SuiteTask(
        "breast_cancer-noise30", "breast_cancer", EVALUATION, "30% symmetric noise, train", symmetric(0.3), True, True
    ),
    SuiteTask(
        "friedman1-outliers20", "friedman1", EVALUATION, "20% outlier targets, train", symmetric(0.2), True, True
    ),
    SuiteTask("mnist1d", "mnist1d", EVALUATION, "no noise", legacy=True),
    SuiteTask(
        "digits-noise30-val", "digits", EVALUATION, "30% symmetric noise, train + val", symmetric(0.3, BOTH), True
    ),
    SuiteTask("mnist1d-pair30", "mnist1d", EVALUATION, "30% pair noise, train + val", pair(0.3), True),
    SuiteTask(
        "diabetes-t1.5",
        "diabetes",
        EVALUATION,
        "Student-t noise (df 1.5, scale 0.3 std), train + val",
        student_t(0.3, 1.5),
        True,
    ),
    SuiteTask(
        "sinusoid-t2",
        "sinusoid",
        EVALUATION,
        "Student-t noise (df 2, scale 0.5 std), train + val",
        student_t(0.5, 2.0),
        True,
    ),
    SuiteTask("digits-imbalance9", "digits", EVALUATION, "9:1 class imbalance", {"imbalance": 9.0}),
    SuiteTask("wine-noise20-val", "wine", EVALUATION, "20% symmetric noise, train + val", symmetric(0.2, BOTH), True),
    SuiteTask(
        "breast_cancer-asym40-val",
        "breast_cancer",
        EVALUATION,
        "40% asymmetric noise (class 0 -> 1 only), train + val",
        {"noise": [[0.6, 0.4], [0.0, 1.0]], "noisy_splits": BOTH},
        True,
    ),
)
TASKS: dict[str, SuiteTask] = {t.key: t for t in SUITE}


def half(name: str) -> list[SuiteTask]:
    """The tasks of ``name`` ("development", "evaluation" or "all")."""
    if name == "all":
        return list(SUITE)
    if name not in (DEVELOPMENT, EVALUATION):
        raise SystemExit(f"unknown half {name!r}; choose development, evaluation or all")
    return [t for t in SUITE if t.half == name]

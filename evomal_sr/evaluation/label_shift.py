"""Whether a task's training rows have another class balance than its validation rows (label shift).

A user whose training data were collected or subsampled unevenly, and who validates on rows drawn
as the model will meet them, has label shift: the class balance of the training rows is not that
of the validation (and test) rows. The final selection's default scoring chooses each fold's lr
and stopping step on a part of the training rows, at the training balance; under label shift that
choice is made for the wrong balance (a 9:1 fold stops where predicting the majority class is
best), while the meta-test chooses on the validation rows. ``selection_scoring="auto"`` therefore
chooses on validation rows (``"validation-folds"``) where the balances differ, and otherwise
keeps ``"validation"``; ``"auto-regression"`` (the default since the fourteenth session) does so on
regression tasks too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: The level of the chi-square test below which ``selection_scoring="auto"`` treats the training and
#: validation class balances as different.
SHIFT_LEVEL = 0.01


@dataclass(frozen=True)
class LabelShift:
    """Pearson's chi-square test of homogeneity of the training and validation class counts."""

    statistic: float
    dof: int
    p_value: float

    @property
    def shifted(self) -> bool:
        """Whether the balances differ at :data:`SHIFT_LEVEL`."""
        return self.p_value < SHIFT_LEVEL

    def __str__(self) -> str:
        return f"chi-square {self.statistic:.1f} on {self.dof} df, p = {self.p_value:.2g}"


def label_shift(task) -> LabelShift | None:
    """The chi-square test of ``task``'s training against its validation class counts; None for regression.

    Examples
    --------
    >>> import evomal_sr as es
    >>> label_shift(es.Task.builtin("breast_cancer", seed=0, imbalance=9.0)).shifted
    True
    >>> label_shift(es.Task.builtin("breast_cancer", seed=0)).shifted
    False
    """
    if task.kind != "classification":
        return None
    counts = torch.stack(
        [torch.bincount(labels, minlength=task.n_outputs) for labels in (task.y_train, task.y_val)]
    ).double()
    counts = counts[:, counts.sum(dim=0) > 0]  # a class in neither split adds nothing
    expected = counts.sum(dim=1, keepdim=True) * counts.sum(dim=0, keepdim=True) / counts.sum()
    statistic = float(((counts - expected) ** 2 / expected).sum())
    dof = counts.shape[1] - 1
    if dof == 0:
        return LabelShift(statistic, dof, 1.0)
    # the chi-square survival function: the regularised upper incomplete gamma function
    p_value = torch.special.gammaincc(
        torch.tensor(dof / 2, dtype=torch.float64), torch.tensor(statistic / 2, dtype=torch.float64)
    )
    return LabelShift(statistic, dof, float(p_value))


#: The ``selection_scoring`` values that choose a scoring per task (:func:`resolve_scoring`).
AUTO_SCORINGS = ("auto", "auto-regression")


def resolve_scoring(scoring: str, task) -> tuple[str, str]:
    """The scoring ``selection_scoring`` names on ``task``, and why: ``"auto"`` is ``"validation-folds"`` under
    label shift, else ``"validation"``; ``"auto-regression"`` is ``"validation-folds"`` on a regression task too
    (there a fifth of the training rows, whose outlier or heavy-tailed targets dominate their squared errors,
    would choose each fold's lr and stopping step); any other value is itself (and the reason empty).

    Examples
    --------
    >>> import evomal_sr as es
    >>> diabetes = es.Task.builtin("diabetes", seed=0)
    >>> resolve_scoring("auto", diabetes), resolve_scoring("folds", None)
    (('validation', 'auto: a regression task'), ('folds', ''))
    >>> resolve_scoring("auto-regression", diabetes)
    ('validation-folds', 'auto-regression: a regression task')
    """
    if scoring not in AUTO_SCORINGS:
        return scoring, ""
    shift = label_shift(task)
    if shift is None:
        return ("validation-folds" if scoring == "auto-regression" else "validation"), f"{scoring}: a regression task"
    if shift.shifted:
        differs = "the training rows' class balance differs from the validation rows'"
        return "validation-folds", f"{scoring}: {differs} ({shift})"
    return "validation", f"{scoring}: no label shift ({shift})"

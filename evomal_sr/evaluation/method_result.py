"""One method's meta-test result and the paired statistics the report's verdicts use."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields

from evomal_sr.errors import LossFileError
from evomal_sr.losses.zoo import KNOWN_LOSSES


def _stats(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value); inf if any value is."""
    n = len(values)
    if n == 0 or not all(math.isfinite(v) for v in values):
        return math.inf, math.nan
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return mean, math.sqrt(var)


def paired_difference(values: Sequence[float], reference: Sequence[float]) -> tuple[float, float, str]:
    """Mean of ``values - reference`` over seeds, its paired standard error, and a verdict.

    The verdict is ``"better"`` (lower error) or ``"worse"`` when the mean lies
    beyond two standard errors of zero, else ``"within noise"``; ``"n/a"`` with
    one seed or a non-finite value.

    Examples
    --------
    >>> paired_difference([0.1, 0.2, 0.3], [0.2, 0.3, 0.4])[2]
    'better'
    """
    diffs = [a - b for a, b in zip(values, reference)]
    mean, std = _stats(diffs)
    if len(diffs) < 2 or not math.isfinite(mean):
        return mean, math.nan, "n/a"
    se = std / math.sqrt(len(diffs))
    return mean, se, beyond_noise(mean, se, 2.0)


def beyond_noise(mean: float, se: float, margin: float) -> str:
    """``"better"`` (negative) or ``"worse"`` when ``mean`` lies strictly beyond ``margin`` SEs of zero.

    A mean that equals the bound up to float round-off is ``"within noise"``: with one of ``n``
    paired differences non-zero the mean equals its SE exactly (and with 3 of 9, twice it), so a
    strict comparison alone would be settled by the last bit. With ``se == 0`` (every difference
    the same) any non-zero mean counts.

    Examples
    --------
    >>> beyond_noise(-0.3, 0.1, 2.0), beyond_noise(-0.2, 0.1, 2.0), beyond_noise(0.0, 0.0, 2.0)
    ('better', 'within noise', 'within noise')
    """
    if not math.isfinite(se) or se == 0.0:
        return "within noise" if mean == 0.0 else ("better" if mean < 0 else "worse")
    bound = margin * se
    if abs(mean) <= bound or math.isclose(abs(mean), bound, rel_tol=1e-9, abs_tol=1e-15):
        return "within noise"
    return "better" if mean < 0 else "worse"


def _jsonable(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _float(value) -> float:
    return math.nan if value is None else float(value)


@dataclass
class MethodResult:
    """One method's meta-test.

    Attributes
    ----------
    method, loss, n_parameters : str, str, int
        Name in the report, the loss in words, its learnable parameters.
    seeds : list of int
    lr : float
        The SGD learning rate the method trained with (chosen on validation when tuned).
    errors, early_errors : list of float
        Per seed, the test error at the last step and at the early-stopping step.
    early_row_errors : list of list of float
        Per seed, each test row's error at the early-stopping step (``meta_test(..., row_errors=True)``;
        else empty).
    stop_steps : list of int
        Per seed, the step with the lowest validation error in the selection run.
    diverged : list of bool
        Per seed, whether the final training stopped at a non-finite loss or gradient.
    lr_grid, lr_scores : list of float
        The learning rates tried and each one's mean (over seeds) best validation error.
    lr_fallbacks : list of float
        The chosen lrs left, in order, because the final run diverged there before a seed's stopping
        step (``meta_test``'s ``lr_fallback``); empty when none was (and in files saved before the field).
    curve_steps : list of int
        Steps of every curve (0 = initialisation).
    val_curves, test_curves, loss_curves : list of list of float
        Per seed: validation error of the selection run at the chosen lr; test
        error and mean training loss of the final run.
    seconds : float
        This method's share of the wall time.
    baseline : bool
        Whether this row is the task's standard loss.
    known : bool
        Whether this row is a known loss (one of ``baselines``), not a tested one.
    """

    method: str
    loss: str
    n_parameters: int
    seeds: list[int]
    errors: list[float]
    diverged: list[bool]
    seconds: float
    lr: float = math.nan
    early_errors: list[float] = field(default_factory=list)
    early_row_errors: list[list[float]] = field(default_factory=list)
    stop_steps: list[int] = field(default_factory=list)
    lr_grid: list[float] = field(default_factory=list)
    lr_scores: list[float] = field(default_factory=list)
    lr_fallbacks: list[float] = field(default_factory=list)
    curve_steps: list[int] = field(default_factory=list)
    val_curves: list[list[float]] = field(default_factory=list)
    test_curves: list[list[float]] = field(default_factory=list)
    loss_curves: list[list[float]] = field(default_factory=list)
    baseline: bool = False
    known: bool = False

    @property
    def mean(self) -> float:
        """Mean final test error over seeds."""
        return _stats(self.errors)[0]

    @property
    def std(self) -> float:
        """Sample standard deviation of the final test error (0 for one seed)."""
        return _stats(self.errors)[1]

    @property
    def early_mean(self) -> float:
        """Mean early-stopped test error over seeds."""
        return _stats(self.early_errors)[0]

    @property
    def early_std(self) -> float:
        return _stats(self.early_errors)[1]

    def to_dict(self) -> dict:
        data = {k: _jsonable(v) for k, v in asdict(self).items()}
        data.update(mean=_jsonable(self.mean), std=_jsonable(self.std), early_mean=_jsonable(self.early_mean))
        return data

    @classmethod
    def from_dict(cls, data: dict) -> MethodResult:
        names = {f.name for f in fields(cls)}
        try:
            values = {k: v for k, v in data.items() if k in names}
            for key in ("errors", "early_errors", "lr_scores", "lr_fallbacks"):
                values[key] = [_float(v) for v in values.get(key, [])]
            for key in ("val_curves", "test_curves", "loss_curves", "early_row_errors"):
                values[key] = [[_float(v) for v in row] for row in values.get(key, [])]
            values["lr"] = _float(values.get("lr"))
            if "known" not in values:  # a report saved before the field: the zoo's names and the standard loss
                zoo = {name for names in KNOWN_LOSSES.values() for name in names}
                values["known"] = bool(values.get("baseline")) or str(values["method"]).split(" #")[0] in zoo
            return cls(**values)
        except (KeyError, TypeError, ValueError) as exc:
            raise LossFileError(f"malformed meta-test record: {exc}") from None

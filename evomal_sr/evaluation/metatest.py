"""Meta-testing: does a learned loss train better models than the standard loss?

:func:`meta_test` trains fresh base models from scratch with each loss (its
weights frozen) on the training and validation rows together, for the preset's
``meta_test_steps`` SGD steps (far longer than the search's partial training),
and reports the test error (error rate or MSE) over several seeds beside the
task's standard loss, cross-entropy or MSE, trained identically: for one seed,
every method starts from the same initial parameters and sees the same
minibatches in the same order. All seeds of one method train together as one
population-batched program (``vmap``); no global random state is used.

A loss learned on one task can be meta-tested on another of the same kind
(transfer); a classification loss is refused on a regression task and the
reverse, with :class:`~evomal_sr.errors.ConfigError`.
"""

from __future__ import annotations

import copy
import csv
import io
import math
import numbers
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from evomal_sr.core.devices import resolve_device
from evomal_sr.core.fileio import atomic_write_json, atomic_write_text, check_header, read_json
from evomal_sr.core.presets import Preset, resolve_preset
from evomal_sr.core.seeding import derive_seed
from evomal_sr.core.validation import check_positive_int, check_seed, is_index
from evomal_sr.errors import ConfigError, LossFileError
from evomal_sr.evaluation.methods import resolve_loss
from evomal_sr.fit.training import (
    BatchSampler,
    StackedModel,
    evaluate_metric,
    reduce_per_copy,
    sgd_update,
    train_population,
)
from evomal_sr.losses.flat import FlatParameterLoss
from evomal_sr.losses.io import count_parameters, describe_loss, load_loss
from evomal_sr.losses.standard import StandardLoss
from evomal_sr.losses.symbolic import LearnedLoss, output_to_fx, target_to_y

__all__ = ["MethodResult", "MetaTestReport", "StandardLoss", "count_parameters", "describe_loss", "load_loss",
           "meta_test", "resolve_loss"]

#: Default number of points on each training curve (plus the starting point).
CURVE_POINTS = 50
#: The ``format`` field of a saved report.
REPORT_FORMAT = "evomal-sr/meta-test-report"


def _stats(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value); inf if any value is."""
    n = len(values)
    if not all(math.isfinite(v) for v in values):
        return math.inf, math.nan
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return mean, math.sqrt(var)


def _jsonable(value):
    """Floats that JSON can hold: NaN and infinities become ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _float(value) -> float:
    return math.nan if value is None else float(value)


@dataclass
class MethodResult:
    """One method's meta-test: a test error per seed, curves and cost.

    Attributes
    ----------
    method : str
        Name in the report (``"learned"``, ``"ML3"``, ``"cross-entropy"`` ...).
    loss : str
        The loss in words: the expression with its weights, or the network's shape.
    n_parameters : int
        Learnable parameters of the loss (0 for the standard loss).
    seeds, errors, diverged : list
        Per seed: the seed, the final test error (error rate or MSE) and whether
        training stopped early at a non-finite loss or gradient.
    seconds : float
        Wall time to train all seeds.
    curve_steps : list of int
        Steps at which the curves were recorded (0 = initialisation).
    test_curves, loss_curves : list of list of float
        Per seed, the test error and the mean training loss over the preceding
        steps at each of ``curve_steps`` (the loss at step 0 is the first batch's).
    baseline : bool
        Whether this row is the standard-loss baseline.
    """

    method: str
    loss: str
    n_parameters: int
    seeds: list[int]
    errors: list[float]
    diverged: list[bool]
    seconds: float
    curve_steps: list[int] = field(default_factory=list)
    test_curves: list[list[float]] = field(default_factory=list)
    loss_curves: list[list[float]] = field(default_factory=list)
    baseline: bool = False

    @property
    def mean(self) -> float:
        """Mean test error over seeds."""
        return _stats(self.errors)[0]

    @property
    def std(self) -> float:
        """Sample standard deviation of the test error over seeds (0 for one seed)."""
        return _stats(self.errors)[1]

    def to_dict(self) -> dict:
        data = {k: _jsonable(v) for k, v in asdict(self).items()}
        data["mean"], data["std"] = _jsonable(self.mean), _jsonable(self.std)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> MethodResult:
        names = {f.name for f in fields(cls)}
        try:
            values = {k: v for k, v in data.items() if k in names}
            values["errors"] = [_float(v) for v in values["errors"]]
            for key in ("test_curves", "loss_curves"):
                values[key] = [[_float(v) for v in row] for row in values.get(key, [])]
            return cls(**values)
        except (KeyError, TypeError, ValueError) as exc:
            raise LossFileError(f"malformed meta-test record: {exc}") from None


@dataclass
class MetaTestReport:
    """The outcome of :func:`meta_test`: one :class:`MethodResult` per method.

    Examples
    --------
    >>> row = MethodResult("learned", "square(fx - y)", 3, [0, 1], [0.2, 0.4], [False, False], 1.0)
    >>> report = MetaTestReport({"name": "toy"}, "MSE", 10, 0.01, 8, "cpu", [row])
    >>> round(report["learned"].mean, 3), round(report["learned"].std, 3)
    (0.3, 0.141)
    """

    task: dict
    metric: str
    steps: int
    lr: float
    batch_size: int
    device: str
    methods: list[MethodResult]

    def __getitem__(self, method: str) -> MethodResult:
        for row in self.methods:
            if row.method == method:
                return row
        raise KeyError(f"no method {method!r} in this report; it has {[r.method for r in self.methods]}")

    @property
    def baseline(self) -> MethodResult | None:
        """The standard-loss row, if one was trained."""
        return next((r for r in self.methods if r.baseline), None)

    def best(self) -> MethodResult:
        """The tested (non-baseline) method with the lowest mean test error."""
        tested = [r for r in self.methods if not r.baseline] or self.methods
        return min(tested, key=lambda r: (r.mean, r.method))

    def rows(self) -> list[dict]:
        """One summary dict per method: mean, std, seeds, seconds, parameters, change vs baseline."""
        base = self.baseline
        out = []
        for r in self.methods:
            delta = None if base is None or r.baseline else r.mean - base.mean
            out.append({"method": r.method, "mean": r.mean, "std": r.std, "seeds": len(r.seeds),
                        "diverged": sum(r.diverged), "seconds": r.seconds, "n_parameters": r.n_parameters,
                        "vs_baseline": delta, "loss": r.loss})
        return out

    def table(self) -> str:
        """A plain-text table: method, test error mean ± std, seeds, seconds, parameters."""
        rows = self.rows()
        width = max([16, *(len(r["method"]) for r in rows)])
        header = f"{'method':<{width}} {'test ' + self.metric + ' (mean ± std)':>30} {'seeds':>12} " \
                 f"{'seconds':>8} {'params':>7} {'vs base':>8}"
        lines = [header, "-" * len(header)]
        for row in rows:
            std = f"{row['std']:.4f}" if math.isfinite(row["std"]) else "-"
            cell = f"{row['mean']:.4f} ± {std}"
            delta = "" if row["vs_baseline"] is None else f"{row['vs_baseline']:+.4f}"
            seeds = f"{row['seeds']}" + (f" ({row['diverged']} div.)" if row["diverged"] else "")
            lines.append(f"{row['method']:<{width}} {cell:>30} {seeds:>12} {row['seconds']:>8.1f} "
                         f"{row['n_parameters']:>7} {delta:>8}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"format": REPORT_FORMAT, "version": 1, "task": self.task, "metric": self.metric,
                "steps": self.steps, "lr": self.lr, "batch_size": self.batch_size, "device": self.device,
                "methods": [r.to_dict() for r in self.methods]}

    @classmethod
    def from_dict(cls, data) -> MetaTestReport:
        check_header(data, REPORT_FORMAT, 1, what="meta-test report", error=LossFileError)
        try:
            return cls(task=dict(data["task"]), metric=str(data["metric"]), steps=int(data["steps"]),
                       lr=float(data["lr"]), batch_size=int(data["batch_size"]), device=str(data["device"]),
                       methods=[MethodResult.from_dict(m) for m in data["methods"]])
        except (KeyError, TypeError, ValueError) as exc:
            raise LossFileError(f"malformed meta-test report: {exc}") from None

    def to_json(self, path) -> Path:
        """Everything, curves included, as JSON (written atomically)."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path) -> MetaTestReport:
        """Read a report written by :meth:`to_json`."""
        return cls.from_dict(read_json(path, LossFileError, "meta-test report"))

    def to_csv(self, path) -> Path:
        """One row per method and seed: test error, divergence, parameters, seconds (atomic)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["method", "baseline", "seed", "test_error", "diverged", "n_parameters", "seconds",
                         "steps", "loss"])
        for r in self.methods:
            for s, err, div in zip(r.seeds, r.errors, r.diverged):
                writer.writerow([r.method, int(r.baseline), s, repr(float(err)), int(div), r.n_parameters,
                                 f"{r.seconds:.3f}", self.steps, r.loss])
        return atomic_write_text(path, buffer.getvalue())

    def plot_curves(self, path, **kwargs) -> Path:
        """Test error against training step, mean with a ±1 std band per method (PNG/SVG/PDF)."""
        from evomal_sr.evaluation.curves import plot_training_curves

        return plot_training_curves(self, path, **kwargs)


def _method_name(module: torch.nn.Module) -> str:
    if isinstance(module, LearnedLoss):
        return "learned"
    return getattr(module, "method_name", None) or getattr(module, "name", None) or type(module).__name__


def _seed_list(seeds, seed: int) -> list[int]:
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"seeds must be at least 1, got {seeds}")
        check_seed(seed)
        return list(range(int(seed), int(seed) + int(seeds)))
    values = list(seeds) if isinstance(seeds, Iterable) and not isinstance(seeds, (str, bytes)) else []
    if not values or not all(is_index(s) for s in values):
        raise ConfigError(f"seeds must be a count or a non-empty list of non-negative integers, got {seeds!r}")
    values = [int(s) for s in values]
    if len(set(values)) != len(values):
        raise ConfigError(f"seeds must be distinct, got {values}")
    return values


def _methods(loss, kind: str, *, method: str | None, baseline: bool) -> list[tuple[str, torch.nn.Module, bool]]:
    """``(name, module, is_baseline)`` for every method, names made unique, baseline last."""
    if isinstance(loss, Mapping):
        if not loss:
            raise ConfigError("no losses given: the mapping of method names to losses is empty")
        given = [(str(name), resolve_loss(value, kind)) for name, value in loss.items()]
    else:
        module = resolve_loss(loss, kind)
        given = [(method or _method_name(module), module)]
    rows = [(name, module, False) for name, module in given]
    if baseline:
        standard = StandardLoss(kind)
        rows.append((standard.name, standard, True))
    seen: dict[str, int] = {}
    unique = []
    for name, module, is_base in rows:
        seen[name] = seen.get(name, 0) + 1
        unique.append((name if seen[name] == 1 else f"{name} #{seen[name]}", module, is_base))
    return unique


def meta_test(loss, task, *, seeds: int | Sequence[int] = 5, steps: int | None = None, baseline: bool = True,
              device: str = "cpu", lr: float | None = None, batch_size: int | None = None,
              preset: str | Preset = "quick", seed: int = 0, method: str | None = None,
              curve_points: int = CURVE_POINTS, progress: Callable[[int], None] | None = None) -> MetaTestReport:
    """Train fresh models with ``loss`` (frozen) and with the standard loss; compare test errors.

    Parameters
    ----------
    loss : LearnedLoss, nn.Module, str, Path, FrontEntry, ParetoFront or dict
        The loss to test (see :func:`resolve_loss`), or a mapping ``{method name: loss}``
        to test several with the same seeds.
    task : Task
        Models train on its training + validation rows and are scored on its test rows.
    seeds : int or sequence of int
        How many seeds (``seed, seed + 1, ...``) or the seeds themselves. A seed
        fixes the model's initialisation and the minibatch order, for every method.
    steps : int, optional
        SGD steps per model; default the preset's ``meta_test_steps``.
    baseline : bool
        Also train with the task's standard loss (cross-entropy or MSE).
    device : str
        Torch device, e.g. ``"cpu"`` or ``"cuda"``.
    lr, batch_size : optional
        SGD learning rate and minibatch size; default the preset's.
    preset : str or Preset
        Where the defaults come from (``"quick"``, ``"paper"``, ``"tiny"``).
    seed : int
        First seed when ``seeds`` is a count.
    method : str, optional
        Name of the tested loss in the report (default ``"learned"``, ``"ML3"``, ...).
    curve_points : int
        About how many points each training curve holds.
    progress : callable, optional
        Called with the number of SGD steps just done (e.g. ``tqdm.update``).

    Returns
    -------
    MetaTestReport

    Raises
    ------
    ConfigError
        On a classification loss for a regression task (or the reverse) and bad settings.

    Examples
    --------
    >>> import evomal_sr as es
    >>> task = es.Task.builtin("iris", seed=0, model="linear")
    >>> report = meta_test(es.LearnedLoss("-(y * log(fx))"), task, seeds=2, steps=20)
    >>> [row.method for row in report.methods]
    ['learned', 'cross-entropy']
    >>> len(report["learned"].errors)
    2
    """
    settings = resolve_preset(preset)
    steps = check_positive_int("steps", settings.meta_test_steps if steps is None else steps)
    batch_size = check_positive_int("batch_size", settings.batch_size if batch_size is None else batch_size)
    lr = settings.lr if lr is None else lr
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ConfigError(f"lr must be a positive number, got {lr!r}")
    seed_list = _seed_list(seeds, seed)
    every = max(1, steps // check_positive_int("curve_points", curve_points))
    dev = resolve_device(device)
    methods = _methods(loss, task.kind, method=method, baseline=baseline)
    task = task.to(dev)
    results = []
    for name, module, is_baseline in methods:
        frozen = _frozen_copy(module, dev)
        trained = _train_seeds(frozen, task, seeds=seed_list, steps=steps, lr=float(lr),
                               batch_size=batch_size, every=every, progress=progress)
        results.append(MethodResult(method=name, loss=describe_loss(module), n_parameters=count_parameters(module),
                                    seeds=list(seed_list), baseline=is_baseline, **trained))
    return MetaTestReport(task=task.describe(), metric="error rate" if task.kind == "classification" else "MSE",
                          steps=steps, lr=float(lr), batch_size=batch_size, device=str(dev), methods=results)


def _frozen_copy(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """A copy of ``module`` on ``device`` with gradients off, so the caller's loss is never modified.

    A module that cannot be copied is used as it is (moved to ``device``): training
    differentiates only with respect to the model's parameters, never the loss's.
    """
    try:
        copied = copy.deepcopy(module)
    except (AttributeError, TypeError, RuntimeError, ValueError):
        return module.to(device)
    return copied.to(device).requires_grad_(False)


def _initial_models(task, seeds: list[int]):
    models = [task.make_model(seed=derive_seed(s, "meta-test-init")) for s in seeds]
    params = {k: v.requires_grad_(True) for k, v in StackedModel.stack(models).items()}
    return StackedModel(models[0]), params


def _train_seeds(module, task, *, seeds: list[int], steps: int, lr: float, batch_size: int, every: int,
                 progress) -> dict:
    """Train one model per seed with ``module`` (population-batched); errors, curves and timing."""
    tick = time.perf_counter()
    X, Y = task.train_and_val()
    stacked, params = _initial_models(task, seeds)
    samplers = [BatchSampler(X.shape[0], batch_size, derive_seed(s, "meta-test-batches")) for s in seeds]
    test = (task.X_test, task.y_test)
    curve = _Curves(evaluate_metric(stacked, params, test, kind=task.kind))

    def copy_losses(theta, _step):
        index = torch.stack([s.next() for s in samplers]).to(X.device)
        return _seed_losses(module, stacked.each(theta, X[index]), Y, index)

    def after_step(step, theta):
        if step % every == 0 or step == steps:
            curve.point(step, evaluate_metric(stacked, theta, test, kind=task.kind))
        if progress is not None:
            progress(1)

    outcome = train_population(params, copy_losses, sgd_update(lr), steps=steps, stop_when_done=False,
                               on_losses=curve.add_losses, after_step=after_step)
    return {"errors": list(curve.test[-1]), "diverged": outcome.diverged.tolist(),
            "seconds": time.perf_counter() - tick, **curve.to_dict()}


def _seed_losses(module, outputs: torch.Tensor, Y: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The loss of each seed's copy on its own minibatch -> [S]."""
    if isinstance(module, (LearnedLoss, FlatParameterLoss)):  # known semantics: all seeds in one call
        kind, width = module.task, outputs.shape[-1]
        fx = output_to_fx(outputs, kind)
        y = target_to_y(Y[index.reshape(-1)], width, kind, fx.dtype).reshape(fx.shape)
        return reduce_per_copy(module.elementwise(y, fx), kind)
    values = []
    for k in range(outputs.shape[0]):
        value = module(outputs[k], Y[index[k]])
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise ConfigError(f"the loss {type(module).__name__} must return a scalar tensor, "
                              f"got {getattr(value, 'shape', type(value).__name__)}")
        values.append(value.reshape(()))
    return torch.stack(values)


class _Curves:
    """Test error per seed at a few steps, and the mean training loss over each window."""

    def __init__(self, initial_errors: torch.Tensor):
        self.steps = [0]
        self.test = [initial_errors.cpu().tolist()]
        self.loss: list[list[float]] = []
        self._sum = torch.zeros_like(initial_errors)
        self._count = torch.zeros_like(initial_errors)
        self._first: list[float] | None = None

    def add_losses(self, values: torch.Tensor, active: torch.Tensor) -> None:
        values = values.to(self._sum.dtype)
        if self._first is None:
            self._first = values.cpu().tolist()
        self._sum += torch.where(active, values, torch.zeros_like(values))
        self._count += active.to(self._count.dtype)

    def point(self, step: int, errors: torch.Tensor) -> None:
        self.steps.append(step)
        self.test.append(errors.cpu().tolist())
        mean = torch.where(self._count > 0, self._sum / self._count.clamp(min=1),
                           torch.full_like(self._sum, float("nan")))
        self.loss.append(mean.cpu().tolist())
        self._sum.zero_()
        self._count.zero_()

    def to_dict(self) -> dict:
        first = self._first if self._first is not None else [float("nan")] * len(self.test[0])
        by_seed = [list(col) for col in zip(*self.test)]
        losses = [list(col) for col in zip(first, *self.loss)]
        return {"curve_steps": list(self.steps), "test_curves": by_seed, "loss_curves": losses}

"""Meta-testing: would my model be better with this loss than with what I would otherwise use?

:func:`meta_test` compares a learned loss with known losses (the task's standard
loss by default, or any of the zoo in :mod:`evomal_sr.losses.zoo`), each at its
own SGD learning rate and each early-stopped, as a careful engineer would:

1. **Selection run** (training rows only). Every method trains at every
   learning rate of the grid (``tune_lr=True``; otherwise the one lr) and is
   scored on the validation rows every ``eval_every`` steps. A method's lr is the
   one with the lowest mean (over seeds) best validation error; its
   early-stopping step, per seed, is where that run's validation error was lowest.
   Where a method's best lr is the grid's largest or smallest, its grid is extended
   one step further that way, by the grid's own ratio, up to ``lr_extend`` times
   (:func:`extend_lr`): an lr at the edge of the grid is not known to be tuned.
2. **Final run** (training + validation rows) at the chosen lr. The test error
   is reported at the last step (``errors``) and at the early-stopping step of
   the selection run (``early_errors``; the validation rows are part of the final
   training, so the step is chosen on the selection run).
   A method whose final run diverged before a seed's stopping step has no
   early-stopped error there, and one whose training loss blew up there without
   becoming non-finite (:func:`~evomal_sr.evaluation.lr_tuning.collapsed`) reports
   a broken model's error; either falls back to the next smaller lr of its grid
   (``lr_fallback``, :func:`~evomal_sr.evaluation.lr_tuning.fall_back`).

For a given seed every method and lr starts from the same initial parameters and
sees the same minibatches; all copies of a run train together as one stacked,
``vmap``-ped program (:mod:`evomal_sr.evaluation.population`). The report gives,
for each method against the standard loss, the paired mean difference over
seeds, its standard error and a verdict. A classification loss is refused on a
regression task and the reverse, with :class:`~evomal_sr.errors.ConfigError`.
"""

from __future__ import annotations

import copy
import math
import numbers
import time
from collections.abc import Callable, Iterable, Sequence

import torch

from evomal_sr.core.devices import resolve_device
from evomal_sr.core.presets import Preset, resolve_preset
from evomal_sr.core.progress import StepProgress, check_verbose
from evomal_sr.core.threads import auto_threads, torch_threads
from evomal_sr.core.validation import check_positive_int, check_seed, is_index
from evomal_sr.errors import ConfigError
from evomal_sr.evaluation.lr_tuning import LrSelection, extend_lr, fall_back, select_lrs
from evomal_sr.evaluation.methods import Method, resolve_loss, resolve_methods
from evomal_sr.evaluation.population import CopySpec, train_copies
from evomal_sr.evaluation.report import MetaTestReport, MethodResult
from evomal_sr.losses.io import count_parameters, describe_loss, load_loss
from evomal_sr.losses.standard import StandardLoss
from evomal_sr.training.metrics import metric_name

__all__ = [
    "LR_EXTEND",
    "LR_FACTORS",
    "MethodResult",
    "MetaTestReport",
    "StandardLoss",
    "count_parameters",
    "describe_loss",
    "extend_lr",
    "load_loss",
    "meta_test",
    "resolve_loss",
]

#: Default number of evaluation points along a run (plus the starting point).
CURVE_POINTS = 50
#: The default learning-rate grid of ``tune_lr``, as multiples of the preset's lr.
LR_FACTORS = (0.3, 1.0, 3.0, 10.0, 30.0)
#: The default for ``lr_extend``: how many steps a method's grid may grow beyond an edge where its best lr lies.
LR_EXTEND = 4


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


def _positive_number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not value > 0:
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _lr_grid(lr: float, tune_lr: bool, lr_grid) -> list[float]:
    if not tune_lr:
        return [lr]
    grid = [lr * f for f in LR_FACTORS] if lr_grid is None else list(lr_grid)
    if not grid:
        raise ConfigError("lr_grid is empty: give at least one positive learning rate")
    return sorted({_positive_number("every learning rate of lr_grid", v) for v in grid})


def meta_test(
    loss,
    task,
    *,
    seeds: int | Sequence[int] = 5,
    steps: int | None = None,
    baselines=("standard",),
    baseline: bool = True,
    tune_lr: bool = False,
    lr_grid: Sequence[float] | None = None,
    lr_extend: int = LR_EXTEND,
    lr_fallback: bool = True,
    eval_every: int | None = None,
    device: str = "cpu",
    lr: float | None = None,
    batch_size: int | None = None,
    preset: str | Preset = "quick",
    seed: int = 0,
    method: str | None = None,
    curve_points: int = CURVE_POINTS,
    progress: Callable[[int], None] | None = None,
    verbose: int = 1,
    metric: str = "task",
    row_errors: bool = False,
) -> MetaTestReport:
    """Train fresh models with ``loss`` (frozen) and with known losses; compare test errors fairly.

    Parameters
    ----------
    loss : LearnedLoss, nn.Module, str, Path, FrontEntry, ParetoFront, dict or None
        The loss to test, or ``{method name: loss}`` to test several; ``None`` tests only the baselines.
    task : Task
    seeds : int or sequence of int
        How many seeds (``seed, seed + 1, ...``) or the seeds themselves.
    steps : int, optional
        SGD steps per model; default the preset's ``meta_test_steps``.
    baselines : sequence
        Zoo names (``es.KNOWN_LOSSES``), ``"standard"`` (the task's standard loss),
        ``"zoo"`` (every zoo loss of the task kind), saved-loss paths, loss modules
        (e.g. ML3 or TaylorGLO results) or a ``{name: loss}`` mapping.
    baseline : bool
        ``False`` drops the baselines (only ``loss`` is trained).
    tune_lr : bool
        Choose each method's lr from ``lr_grid`` by validation error.
    lr_grid : sequence of float, optional
        Default: the preset's lr times 0.3, 1, 3, 10 and 30.
    lr_extend : int
        With ``tune_lr``: where a method's best lr is the largest (smallest) of its grid, one more lr
        beyond it, by the grid's ratio there, up to this many times per method (:func:`extend_lr`);
        0 keeps the grid as given. Every method gets the same rule, so none is left at an edge its
        neighbour was tuned past. Each method's own grid is its row's ``lr_grid``.
    lr_fallback : bool
        With ``tune_lr``: a method whose final run diverged before a seed's stopping step (its
        early-stopped error there is not finite), or collapsed there (its mean training loss over the
        window ending at the stop more than ten times its first loss's size above it,
        :func:`~evomal_sr.evaluation.lr_tuning.collapsed`), trains its final run again at the next
        smaller lr of its grid, for every seed, until none diverges or collapses so or the grid has no
        smaller lr
        (:func:`~evomal_sr.evaluation.lr_tuning.fall_back`); the lrs left are its row's ``lr_fallbacks``.
        The stopping steps come from that lr's selection run, so a fallback is the meta-test that
        lr would have had. ``False``: the row is reported as it is (a diverged row's mean is infinite).
        Reports record both (``lr_fallback``, ``lr_collapse``; files from before the collapse rule have
        ``lr_collapse`` False).
    eval_every : int, optional
        Steps between validation/test evaluations; default ``steps // curve_points``.
    device, lr, batch_size, preset, seed, method
        Torch device; SGD lr and batch size (default the preset's); where the
        defaults come from; the first seed; the tested loss's name in the report.
    progress : callable, optional
        Called with the number of training steps just done (``tqdm.update``).
    verbose : int
        1 (default): a progress bar over the ``2 * steps`` steps on stderr
        (``tqdm.auto``) and a log record per run (logger ``evomal_sr.evaluation``,
        level INFO); 0: nothing. See :mod:`evomal_sr.core.progress`.
    metric : {"task", "mae", "huber"}
        What chooses lr and stopping step and what is reported on a regression task: the
        MSE (``"task"``), the mean absolute error, or a Huber error whose threshold is the
        targets' robust spread (one heavy-tailed label cannot dominate either; see
        :data:`~evomal_sr.training.metrics.METRICS`). Classification always uses the error rate.
    row_errors : bool
        Keep each test row's error at each seed's early-stopping step (``MethodResult.early_row_errors``;
        :func:`~evomal_sr.training.metrics.task_metric_rows`): the final selection estimates the
        sampling error of the rows it scores on from them.

    Returns
    -------
    MetaTestReport

    Examples
    --------
    >>> import evomal_sr as es
    >>> task = es.Task.builtin("iris", seed=0, model="linear")
    >>> report = meta_test(es.LearnedLoss("-(y * log(fx))"), task, seeds=2, steps=20, verbose=0)
    >>> [row.method for row in report.methods]
    ['learned', 'cross-entropy']
    >>> len(report["learned"].early_errors)
    2
    """
    settings = resolve_preset(preset)
    steps = check_positive_int("steps", settings.meta_test_steps if steps is None else steps)
    batch_size = check_positive_int("batch_size", settings.batch_size if batch_size is None else batch_size)
    lr = _positive_number("lr", settings.lr if lr is None else lr)
    grid = _lr_grid(lr, tune_lr, lr_grid)
    if isinstance(lr_extend, bool) or not isinstance(lr_extend, numbers.Integral) or lr_extend < 0:
        raise ConfigError(f"lr_extend must be a whole number >= 0 (0: the grid as given), got {lr_extend!r}")
    extend = int(lr_extend) if tune_lr else 0  # an untuned lr has no grid to extend
    fallback = bool(lr_fallback) and tune_lr  # nor a smaller lr to fall back to
    every = _eval_every(steps, eval_every, curve_points)
    seed_list = _seed_list(seeds, seed)
    verbose = check_verbose(verbose)
    metric_label = metric_name(task.kind, metric)
    methods = resolve_methods(loss, task.kind, method=method, baselines=baselines if baseline else ())
    dev = resolve_device(device)
    task = task.to(dev)
    modules = [_frozen_copy(m.module, dev) for m in methods]
    tick = time.perf_counter()
    bar = StepProgress(2 * steps, verbose=verbose)
    try:
        chosen, final = _train(
            task,
            modules,
            grid,
            seed_list,
            steps=steps,
            every=every,
            batch_size=batch_size,
            progress=_both(bar.update, progress),
            metric=metric,
            rows=row_errors,
            extend=extend,
            fallback=fallback,
        )
    finally:
        bar.close()
    seconds = time.perf_counter() - tick
    per_seed = len(seed_list)  # the final run holds each method's seeds contiguously, in seed order
    rows = [
        _method_result(
            m, i, seed_list, chosen, final, list(range(i * per_seed, (i + 1) * per_seed)), seconds / len(methods)
        )
        for i, m in enumerate(methods)
    ]
    return MetaTestReport(
        task=task.describe(),
        metric=metric_label,
        steps=steps,
        lr=lr,
        batch_size=batch_size,
        device=str(dev),
        methods=rows,
        tune_lr=tune_lr,
        eval_every=every,
        seconds=seconds,
        lr_extend=extend,
        lr_fallback=fallback,
        lr_collapse=fallback,
        lr_grid=list(grid) if tune_lr else [],
    )


def _eval_every(steps: int, eval_every: int | None, curve_points: int) -> int:
    """Steps between validation checks: ``eval_every``, or ``steps / curve_points``; at most ``steps``."""
    every = (
        max(1, steps // check_positive_int("curve_points", curve_points))
        if eval_every is None
        else check_positive_int("eval_every", eval_every)
    )
    if every > steps:
        raise ConfigError(f"eval_every ({every}) must not exceed steps ({steps}): nothing would be evaluated")
    return every


def _train(task, modules, grid, seed_list, *, rows: bool, extend: int, fallback: bool, **run):
    """The selection run, then the final run at each method's chosen lr (``run``: :func:`train_copies`'s options;
    ``rows``: keep the final run's per-row test errors; ``extend``, ``fallback``: see ``meta_test``'s
    ``lr_extend`` and ``lr_fallback``)."""
    validation, test = (task.X_val, task.y_val), (task.X_test, task.y_test)
    quiet = {**run, "progress": None}  # the progress counts the selection and final runs, not extensions, fallbacks

    def selection(copies, extension=False):
        train = (task.X_train, task.y_train)
        return train_copies(task, modules, copies, train, validation, **(quiet if extension else run))

    def final_run(copies, again=False):
        return train_copies(task, modules, copies, task.train_and_val(), test, rows=rows, **(quiet if again else run))

    with torch_threads(auto_threads("auto", task.make_model(seed=0), task.device)):  # one thread for small models
        chosen = select_lrs(selection, len(modules), grid, seed_list, steps=run["steps"], extend=extend)
        final = final_run([CopySpec(i, chosen.lr[i], s) for i in range(len(modules)) for s in seed_list])
        if fallback:
            final = fall_back(chosen, final, seed_list, lambda copies: final_run(copies, again=True))
    return chosen, final


def _both(first: Callable[[int], None], second: Callable[[int], None] | None) -> Callable[[int], None]:
    if second is None:
        return first

    def call(n: int) -> None:
        first(n)
        second(n)

    return call


def _method_result(
    method: Method, i: int, seeds, chosen: LrSelection, final, rows: list[int], seconds: float
) -> MethodResult:
    """One method's row; ``rows`` are its copies' positions in the final run, in seed order."""
    test = [final.curves[k] for k in rows]
    early = [curve[final.curve_steps.index(chosen.stops[i, s])] for curve, s in zip(test, seeds)]
    return MethodResult(
        method=method.name,
        loss=describe_loss(method.module),
        n_parameters=count_parameters(method.module),
        seeds=list(seeds),
        errors=[curve[-1] for curve in test],
        diverged=[final.diverged[k] for k in rows],
        seconds=seconds,
        lr=chosen.lr[i],
        early_errors=early,
        early_row_errors=[final.rows_at(k, chosen.stops[i, s]) for k, s in zip(rows, seeds)]
        if final.row_points is not None
        else [],
        stop_steps=[chosen.stops[i, s] for s in seeds],
        lr_grid=list(chosen.grids[i]),
        lr_scores=chosen.scores[i],
        lr_fallbacks=list(chosen.fallbacks[i]),
        curve_steps=list(final.curve_steps),
        val_curves=[chosen.val_curves[i, s] for s in seeds],
        test_curves=test,
        loss_curves=[final.loss_curves[k] for k in rows],
        baseline=method.baseline,
        known=method.known,
    )


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

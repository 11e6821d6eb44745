"""The meta-test's learning rates: chosen on a selection run, extended past an edge, fallen back from on divergence.

:func:`select_lrs` runs every method at every lr of its grid on the training rows and
keeps, per method, the lr of lowest mean best validation error and, per seed, the step
where that run's validation error was lowest. Where a method's best lr lies at an edge of
its grid, the grid grows one step that way (:func:`extend_lr`). :func:`fall_back` then
mends the final run: a method whose final run diverged before a seed's stopping step has
no early-stopped error to report, and one whose final run collapsed there (:func:`collapsed`:
its training loss blew up without becoming non-finite) reports the error of a broken model;
either falls back to the next smaller lr of its grid (whose selection curves are already
there) and its final run is redone there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from evomal_sr.evaluation.population import CopySpec, PopulationRun


def extend_lr(grid: Sequence[float], scores: Sequence[float]) -> float | None:
    """The next lr to try beyond the edge of ``grid`` (ascending) where ``scores`` are lowest, else ``None``.

    The best lr (the lowest score; ties to the smaller lr, as the selection breaks them) lies at the
    largest lr: one step above it by the ratio of the two largest; at the smallest, and strictly better
    than the next (a flat start says nothing of smaller lrs): one step below by the ratio of the two
    smallest. Inside the grid, or with a single lr, or no finite score, ``None``.

    Examples
    --------
    >>> round(extend_lr([0.01, 0.03, 0.1], [0.5, 0.4, 0.3]), 6)
    0.333333
    >>> round(extend_lr([0.01, 0.03, 0.1], [0.2, 0.4, 0.3]), 6)
    0.003333
    >>> extend_lr([0.01, 0.03, 0.1], [0.5, 0.2, 0.3]) is None
    True
    """
    if len(grid) < 2 or not any(math.isfinite(v) for v in scores):
        return None
    best = min(range(len(grid)), key=lambda g: (scores[g], g))
    if best == len(grid) - 1:
        return grid[-1] * (grid[-1] / grid[-2])
    if best == 0 and scores[0] < scores[1]:
        return grid[0] * (grid[0] / grid[1])
    return None


#: How far above its first loss a run's mean training loss must be, in multiples of that first loss's size,
#: for :func:`collapsed`. Chosen from the saved meta-tests (``benchmarks/results``, 2100 method rows): the 31
#: seeds it flags there rose 16-850 times (label smoothing at lr 2.7: 65) and ended at early-stopped errors
#: of 0.33-0.90, at or near chance; the healthy runs rose at most 1.8 times (a learned loss under outlier
#: targets; MSE under heavy-tailed targets 1.0), one broken run 4.7 times.
COLLAPSE_FACTOR = 10.0


def collapsed(loss_curve: Sequence[float], index: int) -> bool:
    """Whether a run's mean training loss at curve point ``index`` is more than :data:`COLLAPSE_FACTOR` times
    its first loss's magnitude above that first loss (``loss_curve[0]``): the optimiser blew up, though no
    number became non-finite. Non-finite values say nothing here (divergence is told apart elsewhere).

    Examples
    --------
    >>> collapsed([0.71, 0.30, 47.0], 2), collapsed([1.74, 3.54], 1), collapsed([0.7, float("nan")], 1)
    (True, False, False)
    """
    first, at = loss_curve[0], loss_curve[index]
    return math.isfinite(first) and math.isfinite(at) and at - first > COLLAPSE_FACTOR * abs(first)


def broke(early: Sequence[float], loss_curves: Sequence[Sequence[float]], stops: Sequence[int]) -> bool:
    """Whether a method's final run diverged before a seed's stopping step (a non-finite early-stopped error in
    ``early``) or :func:`collapsed` at it (``loss_curves[k]`` seed ``k``'s training losses, ``stops[k]`` the
    index of its stopping step there): what :func:`fall_back` leaves.

    Examples
    --------
    >>> broke([0.2, math.inf], [[0.7, 0.3], [0.7, 0.4]], [1, 1]), broke([0.2], [[0.7, 47.0]], [1])
    (True, True)
    >>> broke([0.2], [[0.7, 0.3]], [1])
    False
    """
    return not all(math.isfinite(v) for v in early) or any(collapsed(c, j) for c, j in zip(loss_curves, stops))


def fallback_lr(grid: Sequence[float], lr: float) -> float | None:
    """The largest lr of ``grid`` below ``lr`` (where a run that diverged at ``lr`` goes next), else ``None``.

    Examples
    --------
    >>> fallback_lr([0.01, 0.03, 0.1], 0.1)
    0.03
    >>> fallback_lr([0.01, 0.03, 0.1], 0.01) is None
    True
    """
    return max((v for v in grid if v < lr), default=None)


@dataclass
class LrSelection:
    """What the selection run decided, per method ``i`` (and seed ``s``), and the curves it decided on."""

    steps: int
    curves: dict[CopySpec, list[float]] = field(default_factory=dict)  # every selection copy's validation curve
    curve_steps: list[int] = field(default_factory=list)
    lr: dict[int, float] = field(default_factory=dict)
    grids: dict[int, list[float]] = field(default_factory=dict)  # each method's lrs, ascending (extensions too)
    scores: dict[int, list[float]] = field(default_factory=dict)  # mean best validation error per lr of its grid
    stops: dict[tuple[int, int], int] = field(default_factory=dict)  # early-stopping step
    val_curves: dict[tuple[int, int], list[float]] = field(default_factory=dict)  # at the chosen lr
    fallbacks: dict[int, list[float]] = field(default_factory=dict)  # lrs left because the final run diverged

    def choose(self, i: int, lr: float, seeds: Sequence[int]) -> None:
        """Method ``i`` trains at ``lr`` (of its grid): each seed stops where its selection curve there was lowest."""
        self.lr[i] = lr
        for s in seeds:
            curve = self.val_curves[i, s] = self.curves[CopySpec(i, lr, s)]
            finite = [(v, j) for j, v in enumerate(curve) if math.isfinite(v)]
            self.stops[i, s] = self.curve_steps[min(finite)[1]] if finite else self.steps


def select_lrs(
    run: Callable[[list[CopySpec], bool], PopulationRun], n_methods: int, grid, seeds, *, steps: int, extend: int
):
    """The selection run (``run`` trains copies on the training rows, scored on the validation rows).

    Then, up to ``extend`` times, one more run for the methods whose best lr lies at an edge of their
    grid, each at its next lr beyond it (:func:`extend_lr`); every copy's initialisation and minibatches
    depend on its seed only, so an extension run is the run that lr would have had in the first.
    ``run(copies, extension)`` is told whether it trains an extension run.
    """
    chosen = LrSelection(steps)
    grids = {i: list(grid) for i in range(n_methods)}
    pending = {i: list(grid) for i in grids}  # the lrs each method still has to run
    for extension in range(extend + 1):
        copies = [CopySpec(i, lr, s) for i, lrs in pending.items() for lr in lrs for s in seeds]
        if not copies:
            break
        result = run(copies, bool(extension))
        chosen.curves.update(zip(copies, result.curves))
        chosen.curve_steps = list(result.curve_steps)
        if extension == extend:
            break
        pending = {}
        for i, lrs in grids.items():
            beyond = extend_lr(lrs, _scores(chosen.curves, i, lrs, seeds))
            if beyond is not None and beyond not in lrs:
                grids[i], pending[i] = sorted([*lrs, beyond]), [beyond]
    for i, lrs in grids.items():
        scores = _scores(chosen.curves, i, lrs, seeds)
        chosen.grids[i], chosen.scores[i], chosen.fallbacks[i] = lrs, scores, []
        chosen.choose(i, lrs[min(range(len(lrs)), key=lambda g: (scores[g], g))], seeds)
    return chosen


def fall_back(
    chosen: LrSelection, final: PopulationRun, seeds: Sequence[int], run: Callable[[list[CopySpec]], PopulationRun]
) -> PopulationRun:
    """Redo the final run of every method whose final run diverged before a seed's stopping step or
    :func:`collapsed` at it, one lr lower.

    ``final`` holds each method's seeds contiguously, in method then seed order; ``run`` trains copies
    as the final run does. Repeated while such a method has a smaller lr in its grid; each lr left is
    recorded in ``chosen.fallbacks``. The methods that did not diverge keep their runs untouched.

    Examples
    --------
    One method, one seed, chosen at lr 0.3; its final run's error is infinite at its stopping step (10):

    >>> chosen = LrSelection(steps=20, curve_steps=[0, 10, 20])
    >>> chosen.curves = {CopySpec(0, lr, 0): [0.9, 0.5, 0.6] for lr in (0.1, 0.3)}
    >>> chosen.grids, chosen.fallbacks = {0: [0.1, 0.3]}, {0: []}
    >>> chosen.choose(0, 0.3, [0])
    >>> final = PopulationRun([0, 10, 20], [[0.9, math.inf, 0.5]], [[1.0] * 3], [True])
    >>> redo = lambda copies: PopulationRun([0, 10, 20], [[0.9, 0.4, 0.4]], [[1.0] * 3], [False])
    >>> fall_back(chosen, final, [0], redo).curves, chosen.lr, chosen.fallbacks
    ([[0.9, 0.4, 0.4]], {0: 0.1}, {0: [0.3]})
    """
    while True:
        moved = {}
        for i, lr in chosen.lr.items():
            positions = [i * len(seeds) + k for k in range(len(seeds))]
            stops = [final.curve_steps.index(chosen.stops[i, s]) for s in seeds]
            early = [final.curves[p][j] for p, j in zip(positions, stops)]
            lower = fallback_lr(chosen.grids[i], lr)
            if lower is not None and broke(early, [final.loss_curves[p] for p in positions], stops):
                chosen.fallbacks[i].append(lr)
                chosen.choose(i, lower, seeds)
                moved[i] = positions
        if not moved:
            return final
        redo = run([CopySpec(i, chosen.lr[i], s) for i in moved for s in seeds])
        _replace(final, redo, [p for positions in moved.values() for p in positions])


def _replace(final: PopulationRun, redo: PopulationRun, positions: list[int]) -> None:
    """Put ``redo``'s copies in ``final`` at ``positions`` (both ran the same steps)."""
    for k, p in enumerate(positions):
        final.curves[p], final.loss_curves[p], final.diverged[p] = redo.curves[k], redo.loss_curves[k], redo.diverged[k]
    if final.row_points is not None and redo.row_points is not None:
        index = torch.tensor(positions)
        for point, new in zip(final.row_points, redo.row_points):
            point[index] = new


def _scores(curves: dict, i: int, lrs: Sequence[float], seeds) -> list[float]:
    """Method ``i``'s mean (over seeds) best validation error at each lr of ``lrs`` (inf: never finite)."""

    def best(curve: list[float]) -> float:
        return min((v for v in curve if math.isfinite(v)), default=math.inf)

    return [sum(best(curves[CopySpec(i, lr, s)]) for s in seeds) / len(seeds) for lr in lrs]

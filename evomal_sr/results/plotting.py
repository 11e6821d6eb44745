"""Plots of Pareto fronts and training curves (matplotlib, headless Agg backend)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from evomal_sr.core.fileio import plain_open_mode
from evomal_sr.errors import ConfigError

PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=False)  # no display needed; only sets the backend if none is active
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path) -> Path:
    """Save ``fig`` atomically to ``path`` (format from the suffix) and close it."""
    path = Path(path)
    if path.suffix.lower() not in PLOT_SUFFIXES:
        _figure().close(fig)
        raise ConfigError(f"plot file {str(path)!r} must end in one of {', '.join(PLOT_SUFFIXES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = plain_open_mode(path)  # the mode a plain open would give, not mkstemp's 0600
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.fchmod(fd, mode)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", metadata={"Software": None} if path.suffix == ".png" else None)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
        _figure().close(fig)
    return path


#: Longest equation shown in the legend table of a front plot.
LEGEND_WIDTH = 52


def _metric_label(task_kind: str) -> str:
    if task_kind == "classification":
        return "validation error rate (fraction misclassified)"
    return "validation MSE (squared target units)"


def _short(text: str, width: int = LEGEND_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def plot_front(front, path, *, hall_of_fame=None, title: str | None = None) -> Path:
    """Validation error against complexity; each front point numbered with its ``--index``.

    The numbers never hide the data: each sits just off its point, and the
    equations (4 significant digits) are listed in a table beside the plot
    instead of on it, so nothing overlaps or leaves the figure.

    Parameters
    ----------
    front : ParetoFront
    path : str or Path
        Output file (``.png``, ``.svg`` or ``.pdf``).
    hall_of_fame : list of FrontEntry, optional
        Dominated losses drawn as grey points behind the front.
    title : str, optional
        Figure title; a partial front says so in the default one.
    """
    plt = _figure()
    entries = list(front)
    rows = max(len(entries), 1)
    fig = plt.figure(figsize=(12, max(4.5, 1.6 + 0.28 * rows)))
    grid = fig.add_gridspec(1, 2, width_ratios=(1.0, 1.15), wspace=0.05)
    ax, table = fig.add_subplot(grid[0]), fig.add_subplot(grid[1])
    if hall_of_fame:
        ax.scatter(
            [e.complexity for e in hall_of_fame],
            [e.fitness for e in hall_of_fame],
            color="0.75",
            s=18,
            label="best per complexity",
        )
    if entries:
        xs, ys = [e.complexity for e in entries], [e.fitness for e in entries]
        ax.step(xs, ys, where="post", color="tab:blue", alpha=0.6)
        ax.scatter(xs, ys, color="tab:blue", s=36, zorder=3, label="Pareto front (# = --index)")
        for i, (x, y) in enumerate(zip(xs, ys)):  # above and below in turn, so neighbours do not collide
            ax.annotate(
                str(i),
                (x, y),
                textcoords="offset points",
                xytext=(4, 5 if i % 2 == 0 else -12),
                fontsize=8,
                color="tab:blue",
                annotation_clip=True,
            )
        ax.legend(loc="upper right", fontsize=8)
    elif hall_of_fame:
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("complexity (weighted node count)")
    ax.set_ylabel(_metric_label(front.task_kind))
    ax.grid(alpha=0.3)
    ax.margins(x=0.08, y=0.12)
    partial = front.partial
    default = "Learned losses: error against complexity"
    if partial:
        default += f" (partial: generation {partial.get('generation')} of {partial.get('generations')})"
    ax.set_title(title or default, fontsize=10)
    _legend_table(table, entries)
    return save_figure(fig, path)


def _legend_table(ax, entries) -> None:
    """The front as text beside the plot: index, complexity, error and equation."""
    ax.axis("off")
    header = f"{'#':>3} {'cx':>4} {'error':>8}  equation"
    lines = [header] + [
        f"{i:>3} {e.complexity:>4} {e.fitness:>8.4f}  {_short(e.equation())}" for i, e in enumerate(entries)
    ]
    if not entries:
        lines.append("  (empty front: no candidate trained successfully)")
    ax.text(
        0.0,
        1.0,
        "\n".join(lines),
        transform=ax.transAxes,
        va="top",
        ha="left",
        family="monospace",
        fontsize=8,
        clip_on=False,
    )  # the tight bounding box then always takes in the whole table

"""Plots of Pareto fronts and training curves (matplotlib, headless Agg backend)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", metadata={"Software": None} if path.suffix == ".png"
                    else None)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
        _figure().close(fig)
    return path


def plot_front(front, path, *, hall_of_fame=None, label_top: int = 3, title: str | None = None) -> Path:
    """Validation error against complexity: the front as a step line, best losses labelled.

    Parameters
    ----------
    front : ParetoFront
    path : str or Path
        Output file (``.png``, ``.svg`` or ``.pdf``).
    hall_of_fame : list of FrontEntry, optional
        Dominated losses drawn as grey points behind the front.
    label_top : int
        How many of the most accurate losses to annotate with their formula.
    """
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if hall_of_fame:
        ax.scatter([e.complexity for e in hall_of_fame], [e.fitness for e in hall_of_fame],
                   color="0.75", s=18, label="best per complexity")
    xs = [e.complexity for e in front]
    ys = [e.fitness for e in front]
    if xs:
        ax.step(xs, ys, where="post", color="tab:blue", alpha=0.6)
        ax.scatter(xs, ys, color="tab:blue", s=36, zorder=3, label="Pareto front")
        for entry in sorted(front, key=lambda e: e.fitness)[:label_top]:
            text = entry.expression if len(entry.expression) <= 40 else entry.expression[:37] + "..."
            ax.annotate(text, (entry.complexity, entry.fitness), textcoords="offset points", xytext=(6, 6),
                        fontsize=8)
    metric = "validation error rate" if front.task_kind == "classification" else "validation MSE"
    ax.set_xlabel("complexity (nodes)")
    ax.set_ylabel(metric)
    ax.set_title(title or "Learned losses: error against complexity")
    ax.grid(alpha=0.3)
    if xs or hall_of_fame:  # an empty plot has nothing to put in a legend
        ax.legend(loc="upper right", fontsize=8)
    return save_figure(fig, path)

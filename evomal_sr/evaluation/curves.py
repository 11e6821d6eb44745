"""Training-curve plots of meta-test reports (matplotlib, headless)."""

from __future__ import annotations

import math
from pathlib import Path

from evomal_sr.results.plotting import _figure, save_figure


def _band(curves: list[list[float]]) -> tuple[list[float], list[float]]:
    """Mean and standard deviation across seeds at each point (non-finite values skipped)."""
    means, stds = [], []
    for column in zip(*curves):
        values = [v for v in column if math.isfinite(v)]
        if not values:
            means.append(math.nan)
            stds.append(0.0)
            continue
        mean = sum(values) / len(values)
        means.append(mean)
        stds.append(math.sqrt(sum((v - mean) ** 2 for v in values) / max(len(values) - 1, 1)))
    return means, stds


def plot_training_curves(
    report, path, *, title: str | None = None, log_y: bool = False, which: str = "validation"
) -> Path:
    """Error against training step per method: mean over seeds, a ±1 std band, early stops marked.

    Parameters
    ----------
    report : MetaTestReport
    path : str or Path
        Output file (``.png``, ``.svg`` or ``.pdf``).
    title : str, optional
    log_y : bool
        Logarithmic error axis (useful for MSE).
    which : {"validation", "test"}
        The selection run's validation curves at each method's chosen lr (default;
        the marker is the mean early-stopping step), or the final run's test curves.

    Examples
    --------
    >>> from evomal_sr.evaluation.report import MetaTestReport, MethodResult
    >>> row = MethodResult("learned", "square(fx - y)", 3, [0, 1], [0.2, 0.4], [False, False], 1.0,
    ...                    lr=0.1, early_errors=[0.2, 0.3], stop_steps=[10, 10], curve_steps=[0, 10],
    ...                    val_curves=[[0.9, 0.2], [0.8, 0.4]], test_curves=[[0.9, 0.2], [0.8, 0.4]])
    >>> report = MetaTestReport({"name": "toy"}, "MSE", 10, 0.01, 8, "cpu", [row])
    >>> import tempfile, os
    >>> plot_training_curves(report, os.path.join(tempfile.mkdtemp(), "c.png")).suffix
    '.png'
    """
    plt = _figure()
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, row in enumerate(report.methods):
        curves = row.val_curves if which == "validation" else row.test_curves
        if not curves:
            continue
        mean, std = _band(curves)
        color = "black" if row.baseline else f"C{i % 10}"
        style = "--" if row.baseline else "-"
        label = f"{row.method} (lr {row.lr:.3g}; test {row.early_mean:.4f} early-stopped)"
        ax.plot(row.curve_steps, mean, style, color=color, label=label, linewidth=1.4)
        ax.fill_between(
            row.curve_steps,
            [m - s for m, s in zip(mean, std)],
            [m + s for m, s in zip(mean, std)],
            color=color,
            alpha=0.12,
            linewidth=0,
        )
        if which == "validation" and row.stop_steps:
            stop = sum(row.stop_steps) / len(row.stop_steps)
            nearest = min(range(len(row.curve_steps)), key=lambda j: abs(row.curve_steps[j] - stop))
            ax.plot([row.curve_steps[nearest]], [mean[nearest]], "o", color=color, markersize=6)
    task = report.task
    noise = f", {task.get('label_noise', 0):.0%} label noise" if task.get("label_noise") else ""
    seeds = len(report.methods[0].seeds) if report.methods else 0
    ax.set_title(
        title
        or f"Meta-test on {task.get('name', '?')} ({task.get('model', '?')}{noise}), {seeds} seeds"
        + ("; dots: early stops" if which == "validation" else "")
    )
    ax.set_xlabel("training step")
    ax.set_ylabel(f"{which} {report.metric}")
    if log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=7)
    return save_figure(fig, path)

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


def plot_training_curves(report, path, *, title: str | None = None, log_y: bool = False) -> Path:
    """Test error against training step: each method's mean over seeds with a ±1 std band.

    Parameters
    ----------
    report : MetaTestReport
    path : str or Path
        Output file (``.png``, ``.svg`` or ``.pdf``).
    title : str, optional
    log_y : bool
        Logarithmic error axis (useful for MSE).

    Examples
    --------
    >>> from evomal_sr.evaluation.metatest import MetaTestReport, MethodResult
    >>> row = MethodResult("learned", "square(fx - y)", 3, [0, 1], [0.2, 0.4], [False, False], 1.0,
    ...                    [0, 10], [[0.9, 0.2], [0.8, 0.4]], [[1.0, 0.5], [1.0, 0.6]])
    >>> report = MetaTestReport({"name": "toy"}, "MSE", 10, 0.01, 8, "cpu", [row])
    >>> import tempfile, os
    >>> plot_training_curves(report, os.path.join(tempfile.mkdtemp(), "c.png")).suffix
    '.png'
    """
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, row in enumerate(report.methods):
        if not row.test_curves:
            continue
        mean, std = _band(row.test_curves)
        color = "black" if row.baseline else f"C{i}"
        style = "--" if row.baseline else "-"
        label = f"{row.method} ({row.mean:.4f} ± {row.std:.4f})"
        ax.plot(row.curve_steps, mean, style, color=color, label=label, linewidth=1.5)
        ax.fill_between(row.curve_steps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                        color=color, alpha=0.15, linewidth=0)
    task = report.task
    noise = f", {task.get('label_noise', 0):.0%} label noise" if task.get("label_noise") else ""
    ax.set_title(title or f"Meta-test on {task.get('name', '?')} ({task.get('model', '?')}{noise}), "
                          f"{len(report.methods[0].seeds) if report.methods else 0} seeds")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"test {report.metric}")
    if log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    return save_figure(fig, path)

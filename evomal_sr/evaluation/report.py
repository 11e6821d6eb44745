"""The report of a meta-test: per method, tuned lr, final and early-stopped test errors, paired statistics."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from evomal_sr.core.fileio import atomic_write_json, atomic_write_text, check_header, read_json
from evomal_sr.core.tables import html_table
from evomal_sr.errors import LossFileError
from evomal_sr.evaluation.method_result import MethodResult, paired_difference  # noqa: F401  (public here too)

#: The ``format`` field of a saved report.
REPORT_FORMAT = "evomal-sr/meta-test-report"
REPORT_VERSION = 2


@dataclass
class MetaTestReport:
    """The outcome of :func:`~evomal_sr.evaluation.metatest.meta_test`.

    ``print(report)`` shows the protocol (seeds x steps, learning rates, early
    stopping), the table (:meth:`table`) and the tested loss against the best
    known loss (:meth:`comparison`); in a notebook the report is an HTML table.

    Examples
    --------
    >>> row = MethodResult("learned", "square(fx - y)", 3, [0, 1], [0.2, 0.4], [False, False], 1.0)
    >>> report = MetaTestReport({"name": "toy"}, "MSE", 10, 0.01, 8, "cpu", [row])
    >>> round(report["learned"].mean, 3), round(report["learned"].std, 3)
    (0.3, 0.141)
    >>> print(report.protocol())
    Meta-test on toy: 2 seeds x 10 SGD steps, batch 8, cpu; test MSE.
    Learning rate: 0.01 for every method (not tuned).
    Early stopping: none recorded.
    Final models train on train + validation rows; tested at the last step.
    """

    task: dict
    metric: str
    steps: int
    lr: float
    batch_size: int
    device: str
    methods: list[MethodResult]
    tune_lr: bool = False
    eval_every: int = 0
    seconds: float = 0.0
    lr_extend: int = 0  # how far a method's grid could grow past an edge (meta_test's lr_extend; 0 in older files)
    lr_fallback: bool = False  # whether a diverged final run fell back to a smaller lr (False in older files)
    lr_collapse: bool = False  # whether a collapsed one did too (lr_tuning.collapsed; False in older files)
    # the lr grid every method was given, before any extension (empty in older files: read from the rows)
    lr_grid: list[float] = field(default_factory=list)

    def __getitem__(self, method: str) -> MethodResult:
        for row in self.methods:
            if row.method == method:
                return row
        raise KeyError(f"no method {method!r} in this report; it has {[r.method for r in self.methods]}")

    def __str__(self) -> str:
        return "\n\n".join(part for part in (self.protocol(), self.table(), self.comparison()) if part)

    @property
    def baseline(self) -> MethodResult | None:
        """The standard-loss row, if one was trained."""
        return next((r for r in self.methods if r.baseline), None)

    def best(self) -> MethodResult:
        """The tested (not known) method with the lowest mean early-stopped test error."""
        tested = [r for r in self.methods if not (r.known or r.baseline)] or self.methods
        return min(tested, key=lambda r: (_primary(r), r.method))

    def best_known(self) -> MethodResult | None:
        """The known loss (of ``baselines``) with the lowest mean early-stopped test error, if any was trained."""
        known = [r for r in self.methods if r.known or r.baseline]
        return min(known, key=lambda r: (_primary(r), r.method)) if known else None

    def given_lr_grid(self) -> list[float]:
        """The lr grid every method was given, before any extension past an edge (a row's ``lr_grid`` has its own).

        Older files did not record it: there it is the lrs every row ran, which includes an extension that
        every method made.
        """
        if self.lr_grid or not self.methods:
            return list(self.lr_grid)
        return sorted(set.intersection(*(set(r.lr_grid) for r in self.methods)))

    def protocol(self) -> str:
        """How the methods were trained and compared: seeds x steps, lr, early stopping, final training."""
        task = self.task.get("name", "task") + (f" ({self.task['model']} model)" if self.task.get("model") else "")
        seeds = len(self.methods[0].seeds) if self.methods else 0
        grid = self.given_lr_grid()
        lr = (
            f"tuned per method on the validation rows from {', '.join(f'{v:g}' for v in grid)}"
            if self.tune_lr
            else f"{self.lr:g} for every method (not tuned)"
        )
        if self.tune_lr and self.lr_extend:
            lr += f", each grid extended up to {self.lr_extend} step(s) past an edge where its best lr lay"
        if self.tune_lr and self.lr_fallback:
            broke = "diverged or collapsed" if self.lr_collapse else "diverged"
            lr += f"; a final run that {broke} before its stopping step fell back to the next smaller lr"
        fell = [
            f"{r.method} from {', '.join(f'{v:g}' for v in r.lr_fallbacks)}" for r in self.methods if r.lr_fallbacks
        ]
        if fell:
            lr += f" ({'; '.join(fell)})"
        every = "at every step" if self.eval_every == 1 else f"every {self.eval_every} steps"
        stop = (
            f"Early stopping: the step of lowest validation error (checked {every}) in a run on the training "
            "rows.\nFinal models train on train + validation rows; tested at that step (early-stopped) and at "
            "the last (final)."
            if self.eval_every
            else "Early stopping: none recorded.\nFinal models train on train + validation rows; tested at the last "
            "step."
        )
        return (
            f"Meta-test on {task}: {seeds} seed{'s' * (seeds != 1)} x {self.steps} SGD steps, batch "
            f"{self.batch_size}, {self.device}; test {self.metric}.\nLearning rate: {lr}.\n{stop}"
        )

    def comparison(self) -> str:
        """The best tested loss against the best known loss, paired over seeds, and the verdict ("" without both).

        The verdict follows :func:`paired_difference`: ``better`` or ``worse``
        beyond two paired standard errors of zero, else ``within noise``.
        """
        tested, known = self.best(), self.best_known()
        if known is None or tested is known or tested.known or tested.baseline:
            return ""
        early = bool(tested.early_errors and known.early_errors)
        mean, se, verdict = paired_difference(
            *((tested.early_errors, known.early_errors) if early else (tested.errors, known.errors))
        )
        what = f"{'early-stopped' if early else 'final'} {self.metric}"
        return (
            f"{tested.method} vs the best known loss ({known.method}): {what} {_delta(mean, se)}, paired over "
            f"{len(tested.seeds)} seeds: {verdict} (a verdict needs two standard errors)."
        )

    def rows(self) -> list[dict]:
        """One summary per method, sorted by early-stopped test error, with paired differences vs the baseline."""
        base = self.baseline
        out = []
        for r in sorted(self.methods, key=lambda r: (_primary(r), r.method)):
            row = {
                "method": r.method,
                "lr": r.lr,
                "mean": r.mean,
                "std": r.std,
                "early_mean": r.early_mean,
                "early_std": r.early_std,
                "seeds": len(r.seeds),
                "diverged": sum(r.diverged),
                "seconds": r.seconds,
                "n_parameters": r.n_parameters,
                "loss": r.loss,
                "baseline": r.baseline,
                "vs_baseline": None,
                "vs_baseline_se": None,
                "verdict": "",
                "early_vs_baseline": None,
                "early_vs_baseline_se": None,
                "early_verdict": "",
            }
            if base is not None and not r.baseline:
                row["vs_baseline"], row["vs_baseline_se"], row["verdict"] = paired_difference(r.errors, base.errors)
                if r.early_errors and base.early_errors:
                    row["early_vs_baseline"], row["early_vs_baseline_se"], row["early_verdict"] = paired_difference(
                        r.early_errors, base.early_errors
                    )
            out.append(row)
        return out

    def table(self) -> str:
        """Plain text: per method lr, early-stopped and final test error, paired difference and verdict."""
        rows = self.rows()
        width = max([16, *(len(r["method"]) for r in rows)])
        head = (
            f"{'method':<{width}} {'lr':>8} {'early-stopped ' + self.metric:>24} {'final ' + self.metric:>24} "
            f"{'early vs base (±se)':>22} {'verdict':>13} {'seeds':>9}"
        )
        lines = [head, "-" * len(head)]
        for r in rows:
            delta = _delta(r["early_vs_baseline"], r["early_vs_baseline_se"])
            seeds = f"{r['seeds']}" + (f" ({r['diverged']} div.)" if r["diverged"] else "")
            lines.append(
                f"{r['method']:<{width}} {r['lr']:>8.3g} {_cell(r['early_mean'], r['early_std']):>24} "
                f"{_cell(r['mean'], r['std']):>24} {delta:>22} {r['early_verdict']:>13} {seeds:>9}"
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The protocol, the table and the comparison as HTML, for notebooks."""
        head = [
            "method",
            "lr",
            f"early-stopped {self.metric}",
            f"final {self.metric}",
            "early vs base (±se)",
            "verdict",
            "seeds",
        ]
        body = [
            [
                r["method"],
                f"{r['lr']:.3g}",
                _cell(r["early_mean"], r["early_std"]),
                _cell(r["mean"], r["std"]),
                _delta(r["early_vs_baseline"], r["early_vs_baseline_se"]),
                r["early_verdict"],
                f"{r['seeds']}" + (f" ({r['diverged']} div.)" if r["diverged"] else ""),
            ]
            for r in self.rows()
        ]
        return html_table(head, body, before=self.protocol().splitlines(), after=[self.comparison()])

    def to_markdown(self) -> str:
        """A short report for people: settings, the table, the plot (``curves.png``)."""
        tuned = "tuned per method on validation" if self.tune_lr else "the same for every method"
        lines = [
            f"# Meta-test: {self.task.get('name', 'task')}",
            "",
            f"- {self.steps} SGD steps, batch {self.batch_size}, lr {tuned}; test {self.metric}.",
            f"- Early stopping: the step with the lowest validation error of a training-rows-only run "
            f"(every {self.eval_every} steps); the final models train on train + validation rows and are "
            "scored at that step and at the last.",
            "- vs base: paired mean difference over seeds ± its standard error; a verdict needs two standard errors.",
            "",
            "| "
            + " | ".join(
                [
                    "method",
                    "lr",
                    f"early-stopped {self.metric}",
                    f"final {self.metric}",
                    "early vs base",
                    "verdict",
                    "seeds",
                ]
            )
            + " |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in self.rows():
            lines.append(
                f"| {r['method']} | {r['lr']:.3g} | {_cell(r['early_mean'], r['early_std'])} | "
                f"{_cell(r['mean'], r['std'])} | {_delta(r['early_vs_baseline'], r['early_vs_baseline_se'])}"
                f" | {r['early_verdict']} | {r['seeds']} |"
            )
        if self.comparison():
            lines += ["", self.comparison()]
        lines += ["", "![validation curves](curves.png)", ""]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "format": REPORT_FORMAT,
            "version": REPORT_VERSION,
            "task": self.task,
            "metric": self.metric,
            "steps": self.steps,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "device": self.device,
            "tune_lr": self.tune_lr,
            "eval_every": self.eval_every,
            "seconds": self.seconds,
            "lr_extend": self.lr_extend,
            "lr_fallback": self.lr_fallback,
            "lr_collapse": self.lr_collapse,
            "lr_grid": self.lr_grid,
            "methods": [r.to_dict() for r in self.methods],
        }

    @classmethod
    def from_dict(cls, data) -> MetaTestReport:
        check_header(data, REPORT_FORMAT, REPORT_VERSION, what="meta-test report", error=LossFileError)
        try:
            return cls(
                task=dict(data["task"]),
                metric=str(data["metric"]),
                steps=int(data["steps"]),
                lr=float(data["lr"]),
                batch_size=int(data["batch_size"]),
                device=str(data["device"]),
                methods=[MethodResult.from_dict(m) for m in data["methods"]],
                tune_lr=bool(data.get("tune_lr", False)),
                eval_every=int(data.get("eval_every", 0)),
                seconds=float(data.get("seconds", 0.0)),
                lr_extend=int(data.get("lr_extend", 0)),
                lr_fallback=bool(data.get("lr_fallback", False)),
                lr_collapse=bool(data.get("lr_collapse", False)),
                lr_grid=[float(v) for v in data.get("lr_grid", [])],
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise LossFileError(f"malformed meta-test report: {exc}") from None

    def to_json(self, path) -> Path:
        """Everything, curves included, as JSON (written atomically)."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path) -> MetaTestReport:
        """Read a report written by :meth:`to_json`."""
        return cls.from_dict(read_json(path, LossFileError, "meta-test report"))

    def to_csv(self, path) -> Path:
        """One row per method and seed: lr, final and early-stopped test error, stop step (atomic)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(
            [
                "method",
                "baseline",
                "seed",
                "lr",
                "test_error",
                "early_stopped_test_error",
                "stop_step",
                "diverged",
                "n_parameters",
                "steps",
                "loss",
            ]
        )
        for r in self.methods:
            early = r.early_errors or [math.nan] * len(r.seeds)
            stops = r.stop_steps or [self.steps] * len(r.seeds)
            for s, err, e_err, stop, div in zip(r.seeds, r.errors, early, stops, r.diverged):
                writer.writerow(
                    [
                        r.method,
                        int(r.baseline),
                        s,
                        repr(float(r.lr)),
                        repr(float(err)),
                        repr(float(e_err)),
                        stop,
                        int(div),
                        r.n_parameters,
                        self.steps,
                        r.loss,
                    ]
                )
        return atomic_write_text(path, buffer.getvalue())

    def plot_curves(self, path, **kwargs) -> Path:
        """Validation error against step per method, early-stopping points marked (PNG/SVG/PDF)."""
        from evomal_sr.evaluation.curves import plot_training_curves

        return plot_training_curves(self, path, **kwargs)


def _primary(r: MethodResult) -> float:
    return r.early_mean if r.early_errors else r.mean


def _cell(mean: float, std: float) -> str:
    if not math.isfinite(mean):
        return "inf"
    return f"{mean:.4f} ± {std:.4f}" if math.isfinite(std) else f"{mean:.4f}"


def _delta(mean, se) -> str:
    if mean is None:
        return ""
    if se is None or not math.isfinite(se):
        return f"{mean:+.4f}"
    return f"{mean:+.4f} ± {se:.4f}"

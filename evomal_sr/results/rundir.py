"""The layout of a search's output folder.

``DIR/pareto.csv``      PySR's hall-of-fame layout (``Complexity,Loss,Equation``)
``DIR/pareto.json``     the front with weights, fitness and the run's configuration
``DIR/pareto.png``      error against complexity
``DIR/hall_of_fame.json`` best loss per complexity (dominated ones included)
``DIR/history.csv``     one row per generation, rewritten after each
``DIR/checkpoint.json`` the state to resume from

Every file is written atomically.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from evomal_sr.core.fileio import atomic_write_json, atomic_write_text

HISTORY_COLUMNS = ("generation", "best_fitness", "median_fitness", "evaluations", "exact_hits",
                   "equivalent_hits", "rejected", "seconds", "best_expression")


class RunDir:
    """Paths and writers of one run folder.

    Examples
    --------
    >>> RunDir("runs/digits").pareto_csv.name
    'pareto.csv'
    """

    def __init__(self, path):
        self.path = Path(path)

    pareto_csv = property(lambda self: self.path / "pareto.csv")
    pareto_json = property(lambda self: self.path / "pareto.json")
    pareto_png = property(lambda self: self.path / "pareto.png")
    hall_of_fame_json = property(lambda self: self.path / "hall_of_fame.json")
    history_csv = property(lambda self: self.path / "history.csv")
    checkpoint = property(lambda self: self.path / "checkpoint.json")

    def remove_stale_temp_files(self) -> list[Path]:
        """Delete the temporary files a run killed mid-write left behind (only this folder's own)."""
        if not self.path.is_dir():
            return []
        patterns = [f".{p.name}.*.tmp" for p in (self.pareto_csv, self.pareto_json, self.hall_of_fame_json,
                                                  self.history_csv, self.checkpoint)]
        patterns.append(f".{self.pareto_png.stem}.*{self.pareto_png.suffix}")  # plotting's temporary image
        removed = []
        for pattern in patterns:
            for stale in self.path.glob(pattern):
                if stale.is_file():
                    stale.unlink(missing_ok=True)
                    removed.append(stale)
        return removed

    def write_history(self, records) -> Path:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(HISTORY_COLUMNS)
        for record in records:
            writer.writerow([_cell(getattr(record, c)) for c in HISTORY_COLUMNS])
        return atomic_write_text(self.history_csv, buffer.getvalue())

    def write_results(self, front, hall_of_fame, history) -> None:
        """Write the front (CSV, JSON, PNG), the hall of fame and the history."""
        self.path.mkdir(parents=True, exist_ok=True)
        front.to_csv(self.pareto_csv)
        front.to_json(self.pareto_json)
        atomic_write_json(self.hall_of_fame_json, hall_of_fame.to_list())
        self.write_history(history)
        front.plot(self.pareto_png, hall_of_fame=hall_of_fame.entries())


def _cell(value):
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.6g}"
    return value

"""The layout of a search's output folder.

``DIR/pareto.csv``      PySR's hall-of-fame layout (``Complexity,Loss,Equation``)
``DIR/pareto.json``     the front with weights, fitness and the run's configuration
``DIR/pareto.png``      error against complexity
``DIR/hall_of_fame.json`` best loss per complexity (dominated ones included)
``DIR/history.csv``     one row per generation, rewritten after each
``DIR/checkpoint.json`` the state to resume from
``DIR/.evomal-sr.lock`` held while a search writes to the folder

Every file is written atomically; while the search runs, ``pareto.json`` holds
the front of the last completed generation, marked ``config["partial"]``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
from pathlib import Path

from evomal_sr.core.fileio import atomic_write_json, atomic_write_text
from evomal_sr.errors import ConfigError
from evomal_sr.results.lock import RunLock

#: ``best_so_far`` never goes up; ``best_of_generation`` is that generation's own best.
HISTORY_COLUMNS = (
    "generation",
    "best_so_far",
    "best_of_generation",
    "median_fitness",
    "evaluations",
    "exact_hits",
    "equivalent_hits",
    "rejected",
    "seconds",
    "best_expression",
)
#: The files a run writes (what ``--force`` replaces; anything else in the folder stays).
RUN_FILES = (
    "pareto.csv",
    "pareto.json",
    "pareto.png",
    "hall_of_fame.json",
    "history.csv",
    "checkpoint.json",
    "selection.json",
)


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
    lock_file = property(lambda self: self.path / ".evomal-sr.lock")

    def run_files(self) -> list[Path]:
        """The run's own files that exist in the folder."""
        return [self.path / name for name in RUN_FILES if (self.path / name).exists()]

    def has_run(self) -> bool:
        """Whether the folder holds a run, finished or interrupted."""
        return bool(self.run_files())

    def remove_run_files(self) -> list[Path]:
        """Delete the run's own files (``--force``); other files in the folder are left alone."""
        removed = self.run_files()
        for path in removed:
            path.unlink(missing_ok=True)
        return removed

    @contextlib.contextmanager
    def claim(self, *, resume: bool, force: bool = False):
        """Hold the folder for one search: refuse a busy folder, a run not to be overwritten, or nothing to resume.

        Without ``resume`` a folder that already holds a run is refused unless
        ``force``, which deletes the run's own files (:data:`RUN_FILES`) and
        nothing else. With ``resume`` the folder must hold a checkpoint.

        Raises
        ------
        ConfigError
            In one line naming the way on (``resume=True`` or ``force=True``;
            the command line says ``--resume`` or ``--force``).
        """
        if resume and not self.checkpoint.is_file():
            raise ConfigError(self._nothing_to_resume())
        with self.lock():
            if not resume and self.has_run():
                if not force:
                    raise ConfigError(
                        f"{str(self.path)!r} already holds a run; add resume=True to continue it "
                        "or force=True to start it over"
                    )
                self.remove_run_files()
            self.remove_stale_temp_files()  # left by a run killed mid-write
            yield self

    def killed_run(self) -> dict | None:
        """The lock record (``pid``, ``argv``, ``cwd``, ...) of a run killed while it held this folder, or ``None``.

        Examples
        --------
        >>> import tempfile
        >>> RunDir(tempfile.mkdtemp()).killed_run() is None
        True
        """
        return self.lock().stale_holder()

    def only_first_generation_files(self) -> bool:
        """Whether the run files here are at most what a run writes just before its first checkpoint.

        A run writes ``history.csv`` and the partial ``pareto.json`` of a
        generation, then ``checkpoint.json``; a run killed in between leaves the
        first two without the third.
        """
        return {p.name for p in self.run_files()} <= {
            self.history_csv.name,
            self.pareto_json.name,
        } and not self.checkpoint.exists()

    def _nothing_to_resume(self) -> str:
        busy = self.lock().live_holder_message()
        if busy is not None:
            return busy
        where = f"nothing to resume in {str(self.path)!r}"
        killed = self.killed_run()
        if killed is not None:
            return (
                f"{where}: its run (process {killed.get('pid')}) was stopped before its first checkpoint, "
                "so nothing was lost; start it again without resume=True"
            )
        return f"{where}: it holds no checkpoint.json; start the run without resume=True"

    def lock(self) -> RunLock:
        """A context manager holding the folder's lock (see :class:`~evomal_sr.results.lock.RunLock`)."""
        return RunLock(self.lock_file)

    def remove_stale_temp_files(self) -> list[Path]:
        """Delete the temporary files a run killed mid-write left behind (only this folder's own)."""
        if not self.path.is_dir():
            return []
        patterns = [
            f".{p.name}.*.tmp"
            for p in (self.pareto_csv, self.pareto_json, self.hall_of_fame_json, self.history_csv, self.checkpoint)
        ]
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
        best = math.inf
        for record in records:
            best = min(best, record.best_fitness)
            values = {"best_so_far": best, "best_of_generation": record.best_fitness}
            writer.writerow([_cell(values[c] if c in values else getattr(record, c)) for c in HISTORY_COLUMNS])
        return atomic_write_text(self.history_csv, buffer.getvalue())

    def write_partial_front(self, front, *, generation: int, generations: int) -> Path:
        """Write ``pareto.json`` for a run still going: the front after ``generation`` of ``generations``."""
        front.config["partial"] = {"generation": int(generation), "generations": int(generations)}
        self.path.mkdir(parents=True, exist_ok=True)
        return front.to_json(self.pareto_json)

    def write_results(self, front, hall_of_fame, history) -> None:
        """Write the front (CSV, JSON, PNG), the hall of fame and the history."""
        self.path.mkdir(parents=True, exist_ok=True)
        front.to_csv(self.pareto_csv)
        front.to_json(self.pareto_json)
        atomic_write_json(self.hall_of_fame_json, hall_of_fame.to_list())
        self.write_history(history)
        front.plot(self.pareto_png, hall_of_fame=hall_of_fame.entries())

    def write_selection(self, summary: dict) -> Path:
        """Write ``selection.json``: the final selection's short list, fold errors and verdict."""
        self.path.mkdir(parents=True, exist_ok=True)
        return atomic_write_json(self.path / "selection.json", summary)


def _cell(value):
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.6g}"
    return value

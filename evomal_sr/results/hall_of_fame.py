"""The hall of fame of a search: the best trained loss for every complexity over a whole run.

Its non-dominated subset is the run's :class:`~evomal_sr.results.front.ParetoFront`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from evomal_sr.errors import LossFileError
from evomal_sr.results.front import FrontEntry, ParetoFront, non_dominated


class HallOfFame:
    """The best trained loss for every complexity seen so far.

    Examples
    --------
    >>> hof = HallOfFame()
    >>> hof.update([FrontEntry("square((fx - y))", (1.0, 1.0, 1.0), 0.3, 4)])
    >>> len(hof)
    1
    """

    def __init__(self, entries: Iterable[FrontEntry] = ()):
        self._best: dict[int, FrontEntry] = {}
        self.update(entries)

    def __len__(self) -> int:
        return len(self._best)

    def update(self, entries: Iterable[FrontEntry]) -> None:
        """Keep each entry that beats the current best of its complexity (ties keep the first)."""
        for entry in entries:
            if not math.isfinite(entry.fitness):
                continue
            current = self._best.get(entry.complexity)
            if current is None or entry.fitness < current.fitness:
                self._best[entry.complexity] = entry

    def entries(self) -> list[FrontEntry]:
        return [self._best[c] for c in sorted(self._best)]

    def front(self, *, task_kind: str, config: dict | None = None) -> ParetoFront:
        return ParetoFront(non_dominated(self._best.values()), task_kind=task_kind, config=config)

    def to_list(self) -> list[dict]:
        return [e.to_dict() for e in self.entries()]

    @classmethod
    def from_list(cls, data) -> HallOfFame:
        if not isinstance(data, list):
            raise LossFileError("hall of fame must be a list of entries")
        return cls(FrontEntry.from_dict(d) for d in data)

"""One suite task's saved results read back (``TaskResult``), and what the reports and ablations share with it."""

from __future__ import annotations

import math
from pathlib import Path

from suite import TASKS

from evomal_sr.core.fileio import atomic_write_text, read_json
from evomal_sr.evaluation.report import MetaTestReport, paired_difference
from evomal_sr.losses.zoo import KNOWN_LOSSES

RETURNED, FRONT_PICK = "returned (default search)", "front's pick (no final selection)"

#: Ablation variants that rerun only the final selection on another variant's saved search (its fronts, and
#: its learned losses' meta-test): variant -> that search variant.
SEARCH_FROM = {
    "rows": "fitness-seeds-2-grid-2",
    "robust-prior": "fitness-seeds-2-grid-2",
    "prior-sce": "fitness-seeds-2-grid-2",
    "classes-sce": "fitness-seeds-2-grid-2",
    "auto-scoring": "fitness-seeds-2-grid-2",
    "fixed-scale-100-now": "fixed-scale-100",
}


def selection_signature(chosen: dict) -> tuple:
    """``(scoring, steps, folds, finalists, prior[, metric])`` of a saved selection (files from before a setting
    existed used its first value: pooled folds, three folds, no successive halving, no prior, the task's metric)."""
    signature = (
        chosen.get("scoring", "folds"),
        chosen["steps"],
        chosen.get("folds", 3),
        chosen.get("finalists") or 0,
        chosen.get("prior") or "none",
    )
    metric = chosen.get("metric") or "task"
    return signature if metric == "task" else (*signature, metric)


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN for fewer than 3 pairs or a constant side."""

    def ranks(values):
        order = sorted(range(len(values)), key=lambda i: values[i])
        out = [0.0] * len(values)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
                j += 1
            for k in range(i, j + 1):
                out[order[k]] = (i + j) / 2.0
            i = j + 1
        return out

    if len(a) < 3:
        return math.nan
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va, vb = sum((x - ma) ** 2 for x in ra), sum((y - mb) ** 2 for y in rb)
    return cov / math.sqrt(va * vb) if va > 0 and vb > 0 else math.nan


def with_learned_rows(rows: dict, metatest: Path) -> dict:
    """``rows`` with its learned losses' rows replaced by those of ``metatest``, where that file exists
    (a search variant's own short list, meta-tested with the suite's seeds)."""
    if not metatest.exists():
        return rows
    known = {name: row for name, row in rows.items() if not name.startswith("learned #")}
    return known | {r.method: r for r in MetaTestReport.load(metatest).methods if r.method.startswith("learned #")}


def known_rows(report: MetaTestReport) -> list:
    """A meta-test's rows of the known losses of its task's kind (the zoo), in the zoo's order."""
    kind = "classification" if report.metric == "error rate" else "regression"
    rows = {r.method: r for r in report.methods}
    return [rows[n] for n in KNOWN_LOSSES[kind] if n in rows]


class Comparison:
    """A meta-test's rows against its best known loss and its standard loss (what every report judges by)."""

    def __init__(self, report: MetaTestReport):
        self.report = report
        self.rows = {r.method: r for r in report.methods}
        self.known = known_rows(report)
        self.best_known = min(self.known, key=lambda r: r.early_mean)
        self.base = report.baseline

    def change(self, row) -> float:
        """``row``'s early-stopped error relative to the tuned standard loss's."""
        return (row.early_mean - self.base.early_mean) / self.base.early_mean if self.base.early_mean else 0.0

    def vs_best_known(self, row) -> tuple[float, float, str]:
        """``row`` minus the best known loss, paired over seeds: (difference, standard error, verdict)."""
        return paired_difference(row.early_errors, self.best_known.early_errors)


class TaskResult(Comparison):
    """One task's saved files, read back, and the comparisons the report needs."""

    def __init__(self, folder: Path, variant: Path | None = None):
        super().__init__(MetaTestReport.load(folder / "metatest.json"))
        self.key = folder.name
        self.info = read_json(folder / "search.json", ValueError, "search summary")
        selection = self.info["selection"]
        self.returned = self.rows[selection["winner"]]
        self.returned_kind = selection["winner_kind"]
        self.front_pick = self.rows[FRONT_PICK]
        if variant is not None:
            self._use_variant(variant)

    def _use_variant(self, variant: Path) -> None:
        """Take the search and selection of an ablation variant (``variant/<key>.json``) as the returned one.

        A search variant meta-tested its own learned losses (``variant/<key>/metatest.json``, the same
        seeds): they replace the suite's learned rows; known losses keep the suite's rows.
        """
        record = read_json(variant / f"{self.key}.json", ValueError, "selection")
        rows_from = record.get("rows_from", variant.name)  # a variant decided from another's rows
        searched = variant.parent / SEARCH_FROM.get(rows_from, rows_from)  # whose search it reran the selection of
        self.rows = with_learned_rows(self.rows, searched / self.key / "metatest.json")
        selection = record["selection"]
        self.info = {**self.info, "selection": selection, "search_seconds": record["seconds"]}
        self.returned, self.returned_kind = self.rows[selection["winner"]], selection["winner_kind"]

    @property
    def spec(self):
        return TASKS[self.key]

    def saved_selection(self, signature: tuple) -> dict | None:
        """The saved final selection with this :func:`selection_signature` (the returned one or an earlier one)."""
        saved = [self.info.get("selection"), self.info.get("selection_alternative")]
        for chosen in saved + self.info.get("selections_before", []):
            if chosen and selection_signature(chosen) == signature:
                return chosen
        return None

    def rank_agreement(self, chosen: dict | None) -> tuple[float, float, int, int]:
        """Spearman of the search's score and of a selection's score against the fair test, over the short list."""
        if chosen is None:
            return math.nan, math.nan, 0, 0
        selection = {r["name"]: r["mean"] for r in chosen["rows"] if r["mean"] is not None}
        before = self.info.get("search_scores", {})
        fair = {name: self.rows[name].early_mean for name in selection if name in self.rows}
        names_b = [n for n in fair if n in before and before[n] is not None and math.isfinite(before[n])]
        names_a = list(fair)
        return (
            spearman([before[n] for n in names_b], [fair[n] for n in names_b]),
            spearman([selection[n] for n in names_a], [fair[n] for n in names_a]),
            len(names_b),
            len(names_a),
        )


def same_run(row, saved) -> bool:
    """Whether meta-test rows ``row`` and ``saved`` hold the same numbers, bit for bit: the same training, rerun
    (their names, timing and lr fallbacks aside)."""
    skip = ("seconds", "lr_fallbacks", "method", "baseline")
    return {k: v for k, v in row.to_dict().items() if k not in skip} == {
        k: v for k, v in saved.to_dict().items() if k not in skip
    }


def winner_verdict(test: Comparison, chosen: dict, noisy: bool) -> dict:
    """A saved selection's winner (``chosen``) judged by meta-test ``test``, which holds its row."""
    return row_verdict(test, test.rows[chosen["winner"]], chosen, noisy)


def row_verdict(test: Comparison, row, chosen: dict, noisy: bool) -> dict:
    """A selection's winner (``chosen``), meta-tested as ``row``, judged against meta-test ``test``'s known losses
    (paired over the same seeds): worse than the best known loss, 20% below the tuned standard loss, a learned
    loss better than the best known, the gap to it, and as text."""
    diff, se, verdict = test.vs_best_known(row)
    best = test.best_known.early_mean
    return {
        "text": f"{chosen['winner']} {row.early_mean:.4f} ({diff:+.4f} ± {se:.4f}, {verdict})",
        "worse": verdict == "worse",
        "twenty": noisy and test.change(row) <= -0.20,
        "learned": noisy and chosen.get("winner_kind") == "learned" and verdict == "better",
        "gap": diff / best if best else 0.0,
        "best": f"{test.best_known.method} {best:.4f}",
    }


def variant_lines(
    keys: list[str], names, verdicts, half, noisy, what: str, halves=("development", "evaluation")
) -> list[str]:
    """Selections ``names`` compared on the same tasks, per half and per task; ``verdicts(key, name)`` is
    :func:`winner_verdict`'s, ``half(key)`` (one of ``halves``) and ``noisy(key)`` say where a task counts."""
    lines = [
        f"| half | {what} | tasks | worse than the best known (2 SEs) | noisy tasks >= 20% below the tuned standard "
        "| learned better than the best known | mean gap to the best known |",
        "|---|---|---|---|---|---|---|",
    ]
    for which in halves:
        among = [k for k in keys if half(k) == which]
        for name in names:
            judged = [verdicts(k, name) for k in among]
            worse = [k for k, j in zip(among, judged) if j["worse"]]
            gap = sum(j["gap"] for j in judged) / len(among) if among else 0.0
            lines.append(
                f"| {which} | {name} | {len(among)} | {len(worse)}"
                + (f" ({', '.join(worse)})" if worse else "")
                + f" | {sum(j['twenty'] for j in judged)} of {sum(noisy(k) for k in among)} "
                f"| {sum(j['learned'] for j in judged)} | {gap:+.1%} |"
            )
    lines += [
        "",
        "| task | half | best known | " + " | ".join(f"{name} returns" for name in names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for k in keys:
        judged = [verdicts(k, name) for name in names]
        lines.append(f"| {k} | {half(k)} | {judged[0]['best']} | " + " | ".join(j["text"] for j in judged) + " |")
    return lines


def write_table(folder: Path, lines: list[str]) -> None:
    """A benchmark's table: written to ``folder/TABLE.md`` and printed."""
    atomic_write_text(folder / "TABLE.md", "\n".join(lines) + "\n")
    print("\n".join(lines))

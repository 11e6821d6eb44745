"""Edge weights that keep learning while the model trains: the issue's last untried lever, as a ceiling check.

A searched loss's edge weights are learned offline (local search) and frozen for training. AdaLFL (Raymond et
al., 2023) instead adapts a neural loss online, during the training that uses it; the issue lists a symbolic
loss that does so as a lever. ``evomal_sr.training.online.OnlineLearnedLoss`` is that loss: at every training
step its weights take one Adam step down the meta-gradient of the task's standard loss after one virtual SGD
step, on the same minibatch, so it uses no rows the training does not already use.

The question is a ceiling: the default's short list of learned losses (the ``classes-sce`` run's front, the
three losses ``lr_edge.py`` meta-tested) holds no loss better than the best known loss on any noisy development
task by today's judge. Does online adaptation make one of them better?

Protocol: on each development task of the suite, each of the three short-listed learned losses meta-tested as
``OnlineLearnedLoss(loss, meta_lr=1e-3)`` with ``lr_edge.py``'s protocol (the suite's 5 seeds, 1500 steps, the
``quick`` preset's grid, lr tuned with today's extension and fallback), beside a control, ``learned #1`` frozen,
which must repeat the judge's saved row bit for bit (or the script stops). Each online row is judged by the
task's judge (``lr_edge.judge``, with the zoo's added loss): against its best known loss and its tuned standard
loss, paired over the seeds at two standard errors, and against its own frozen row.

**The rule, written and committed before any online row ran**: online adaptation earns a place on the final
selection's short list (a variant to build and decide next; no default changes here) only if, on the
development half, (1) an online learned loss is better than the best known loss (two paired SEs) on at least
one noisy task, where no frozen learned loss of the short list is, and (2) the online rows are better than
their frozen rows (two paired SEs) on more (task, loss) pairs than they are worse. Otherwise it is not kept:
``OnlineLearnedLoss`` stays an opt-in module. ``meta_lr`` is 1e-3, the paper preset's local-search step, fixed
before any run; no other value is tried, and the evaluation half is not run.

    python benchmarks/online_weights.py --tasks digits,diabetes     # run (skips tasks already run)
    python benchmarks/online_weights.py --report-only               # the table, from saved files
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from lr_edge import cli, judge, learned_losses, with_added_loss  # noqa: E402
from run_results import machine  # noqa: E402
from suite import TASKS, half  # noqa: E402
from task_results import Comparison, same_run  # noqa: E402

from evomal_sr.core.fileio import atomic_write_json  # noqa: E402
from evomal_sr.evaluation.metatest import meta_test  # noqa: E402
from evomal_sr.evaluation.report import MetaTestReport, paired_difference  # noqa: E402
from evomal_sr.training.online import OnlineLearnedLoss  # noqa: E402

OUT = ROOT / "results" / "online_weights"
META_LR = 1e-3
CONTROL = "learned #1"


def online_name(name: str) -> str:
    return name.replace("learned", "online")


def run(key: str, args) -> None:
    """The short list's learned losses meta-tested online on ``key``, with the frozen control."""
    target = OUT / key / "metatest.json"
    if target.exists():
        print(f"[{key}] already run: {target}", flush=True)
        return
    task, saved = TASKS[key].build(args.seed), judge(key)
    learned = learned_losses(key, task.kind)
    losses = {online_name(n): OnlineLearnedLoss(loss, meta_lr=META_LR) for n, loss in learned.items()}
    tick, load = time.perf_counter(), machine()
    report = meta_test(
        {**losses, CONTROL: learned[CONTROL]},
        task,
        seeds=saved[CONTROL].seeds,
        steps=saved.steps,
        batch_size=saved.batch_size,
        baseline=False,
        tune_lr=True,
        preset="quick",
        seed=args.seed,
        verbose=0,
    )
    if not same_run(report[CONTROL], saved[CONTROL]):
        raise SystemExit(f"{key}: the frozen control did not repeat its saved row; the protocols differ")
    report.to_json(target)
    seconds = time.perf_counter() - tick
    atomic_write_json(OUT / key / "run.json", {"command": " ".join(sys.argv), "machine": load, "seconds": seconds})
    print(f"[{key}] {seconds:.0f} s", flush=True)


def rows(key: str) -> list[dict]:
    """Each short-listed loss on ``key``: frozen and online, against the best known loss and each other."""
    test = Comparison(with_added_loss(judge(key), key))
    online = MetaTestReport.load(OUT / key / "metatest.json")
    out = []
    for name in [r.method for r in online.methods if r.method.startswith("online #")]:
        frozen, adapted = test.rows[name.replace("online", "learned")], online[name]
        out.append(
            {
                "loss": name.replace("online ", ""),
                "frozen": frozen,
                "online": adapted,
                "vs_frozen": paired_difference(adapted.early_errors, frozen.early_errors),
                "frozen_vs_best": test.vs_best_known(frozen),
                "online_vs_best": test.vs_best_known(adapted),
                "online_change": test.change(adapted),
                "best": test.best_known,
            }
        )
    return out


def _cell(diff_se_verdict) -> str:
    diff, se, verdict = diff_se_verdict
    return f"{diff:+.4f} ± {se:.4f} {verdict}"


def report_lines() -> list[str]:
    keys = [t.key for t in half("development") if (OUT / t.key / "metatest.json").exists()]
    lines = [
        "| task | loss | best known | frozen (lr) | online (lr) | online - frozen | frozen - best known "
        "| online - best known | online vs tuned standard |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    tally = {"better": 0, "worse": 0, "within noise": 0}
    noisy_wins, frozen_wins = [], []
    for key in keys:
        for r in rows(key):
            f, o, b = r["frozen"], r["online"], r["best"]
            tally[r["vs_frozen"][2]] = tally.get(r["vs_frozen"][2], 0) + 1
            if TASKS[key].noisy and r["online_vs_best"][2] == "better":
                noisy_wins.append(key)
            if TASKS[key].noisy and r["frozen_vs_best"][2] == "better":
                frozen_wins.append(key)
            lines.append(
                f"| {key} | {r['loss']} | {b.method} {b.early_mean:.4f} | {f.early_mean:.4f} ({f.lr:g}) "
                f"| {o.early_mean:.4f} ({o.lr:g}) | {_cell(r['vs_frozen'])} | {_cell(r['frozen_vs_best'])} "
                f"| {_cell(r['online_vs_best'])} | {r['online_change']:+.1%} |"
            )
    new = sorted(set(noisy_wins) - set(frozen_wins))
    kept = bool(new) and tally["better"] > tally["worse"]
    lines += [
        "",
        f"Development tasks run: {len(keys)} of {len(half('development'))}. Online against frozen (paired, 2 SEs): "
        f"better on {tally['better']}, worse on {tally['worse']}, within noise on {tally['within noise']} "
        "(task, loss) pairs.",
        f"Noisy tasks where an online learned loss beats the best known loss: {len(set(noisy_wins))} "
        f"({', '.join(sorted(set(noisy_wins))) or 'none'}); where a frozen one does: {len(set(frozen_wins))}.",
        "By the rule: "
        + (
            f"undecided until every development task has run ({len(keys)} so far)."
            if len(keys) < len(half("development"))
            else f"{'kept (a short-list variant to build next)' if kept else 'not kept'}."
        ),
    ]
    return lines


def main(argv=None) -> int:
    return cli(argv, __doc__ or "", run, OUT, report_lines)


if __name__ == "__main__":
    raise SystemExit(main())

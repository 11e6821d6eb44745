#!/usr/bin/env python3
"""Summarise a side-by-side run: python3 summarize.py RESULT_DIR  (plain Python, no dependencies).

Definitions (same for both sides)
  evaluated candidate  one that went through the evaluation pipeline in this call: not an
                       exact-cache / symbolic-equivalence-archive hit, and (ours) not a
                       gradient-equivalence hit.  Rejected candidates count.
  mean s/candidate     total pipeline wall time / evaluated candidates
                       (reference: wall of meta_train; ours: wall of all Evaluator.evaluate calls)
  median s/candidate   median of per-candidate time: reference = its measured stage times;
                       ours = its share of the batch (rejection share for all, local-search and
                       training shares for survivors); on both sides the unattributed remainder
                       (GP bookkeeping, screening, ...) is spread evenly, so the shares sum to the wall
  per trained cand.    mean of that per-candidate time over candidates not rejected
"""

import glob
import json
import os
import statistics
import sys

FRESH = ("ok", "diverged", "rejected")


def ref_candidates(pass_):
    cands = pass_["candidates"]
    stage_sum = sum(c["seconds"] for c in cands)
    rest = (pass_["wall"] - stage_sum) / max(len(cands), 1)
    out = []
    for c in cands:
        out.append(
            {
                "t": c["seconds"] + rest,
                "rejected": bool(c.get("rejected")),
                "size": c["size"],
                "stages": {
                    "local_search": c.get("local_search", 0.0),
                    "rejection": c.get("rejection", 0.0) + c.get("filter_predictions", 0.0),
                    "train+val": c.get("fitness", 0.0),
                    "other": rest + c.get("phase_transformer", 0.0),
                },
                "label": c.get("label", c["expression"]),
            }
        )
    return out, pass_["wall"]


def ours_candidates(calls):
    out, wall = [], 0.0
    for call in calls:
        fresh = [r for r in call["results"] if r["status"] in FRESH]
        wall += call["wall"]
        attributed = sum(sum(r["seconds"].values()) for r in fresh)
        rest = (call["wall"] - attributed) / max(len(fresh), 1)
        survivors = sum(r["status"] != "rejected" for r in fresh)
        for r in fresh:
            s = r["seconds"]
            out.append(
                {
                    "t": sum(s.values()) + rest,
                    "rejected": r["status"] == "rejected",
                    "size": r["size"],
                    "stages": {
                        "local_search": s.get("local_search", 0.0),
                        "rejection": s.get("rejection", 0.0),
                        "train+val": s.get("training", 0.0),
                        "other": rest,
                    },
                    "label": r["expression"],
                    "batch_survivors": survivors,
                }
            )
    return out, wall


def stats(cands, wall):
    n = len(cands)
    if n == 0:
        return {"n": 0}
    trained = [c["t"] for c in cands if not c["rejected"]]
    stages = {k: sum(c["stages"][k] for c in cands) / n for k in cands[0]["stages"]}
    return {
        "n": n,
        "wall": wall,
        "mean": wall / n,
        "median": statistics.median(c["t"] for c in cands),
        "rejected": sum(c["rejected"] for c in cands),
        "trained_n": len(trained),
        "trained_mean": statistics.mean(trained) if trained else float("nan"),
        "stages": stages,
        "mean_size": statistics.mean(c["size"] for c in cands),
    }


def fmt(s, name):
    if s["n"] == 0:
        return f"  {name:10s} no evaluated candidates"
    st = ", ".join(f"{k} {v:.2f}" for k, v in s["stages"].items())
    return (
        f"  {name:10s} {s['n']:3d} cand. (mean size {s['mean_size']:4.1f}) in {s['wall']:6.1f} s | "
        f"mean {s['mean']:.2f} s, median {s['median']:.2f} s per evaluated candidate | "
        f"rejected {s['rejected']}/{s['n']} ({100 * s['rejected'] / s['n']:.0f}%) | "
        f"per trained candidate {s['trained_mean']:.2f} s (n={s['trained_n']})\n"
        f"  {'':10s} stages, s per evaluated candidate: {st}"
    )


def ratio(a, b):
    return a / b if b and b == b else float("nan")


def main(directory):
    rounds = sorted(
        {int(os.path.basename(p)[len("ref_round") : -5]) for p in glob.glob(f"{directory}/ref_round*.json")}
    )
    pooled = {"ref": ([], 0.0), "ours": ([], 0.0)}
    fixed_rows = []
    meta = []
    for r in rounds:
        with open(f"{directory}/ref_round{r}.json") as f:
            ref = json.load(f)
        try:
            with open(f"{directory}/ours_round{r}.json") as f:
                ours = json.load(f)
        except FileNotFoundError:
            print(f"round {r}: ours missing")
            continue
        meta.append((r, ref, ours))
        print(
            f"=== round {r}: reference seed {ref['seed']} (load {ref['loadavg_start'][0]:.2f} at start), "
            f"ours seeds {','.join(str(s['seed']) for s in ours['passes'].get('random', {}).get('searches', []))} "
            f"(load {ours['loadavg_start'][0]:.2f}); torch threads {ref['threads']}/{ours['threads']}, "
            f"OMP_WAIT_POLICY {ref['omp_wait_policy']}/{ours['omp_wait_policy']}"
        )
        if "random" in ref["passes"] and "random" in ours["passes"]:
            rc, rw = ref_candidates(ref["passes"]["random"])
            oc, ow = ours_candidates(ours["passes"]["random"]["calls"])
            rs, os_ = stats(rc, rw), stats(oc, ow)
            print("random GP trees (each side's own generator and evolution):")
            print(fmt(rs, "reference"))
            print(fmt(os_, "ours"))
            eq = sum(s["counters"]["equivalent_hits"] for s in ours["passes"]["random"]["searches"])
            ex = sum(s["counters"]["exact_hits"] for s in ours["passes"]["random"]["searches"])
            batches = [c["batch_survivors"] for c in oc]
            print(
                f"  {'':10s} ours also served {eq} gradient-equivalence and {ex} exact-cache hits (not counted); "
                f"reference archive hits {ref['passes']['random']['archive_hits']} (not counted); "
                f"ours survivors per batch (candidate-weighted mean) "
                f"{statistics.mean(batches) if batches else 0:.1f}"
            )
            gens = [g for s in ours["passes"]["random"]["searches"] for g in s["generation_seconds"]]
            population = ours["passes"]["random"]["settings"]["population"]
            print(
                f"  {'':10s} ours search generations (population {population}): "
                + ", ".join(f"{g:.1f}" for g in gens)
                + " s"
            )
            print(
                f"  ratio reference/ours: mean {ratio(rs['mean'], os_['mean']):.2f}x, "
                f"median {ratio(rs['median'], os_['median']):.2f}x, "
                f"per trained candidate {ratio(rs.get('trained_mean'), os_.get('trained_mean')):.2f}x"
            )
            for key, cands, wall in (("ref", rc, rw), ("ours", oc, ow)):
                pc, pw = pooled[key]
                pooled[key] = (pc + cands, pw + wall)
        if "fixed" in ref["passes"] and "fixed" in ours["passes"]:
            rc, _ = ref_candidates(ref["passes"]["fixed"])
            calls = ours["passes"]["fixed"]["calls"]
            ob, _ = ours_candidates([c for c in calls if c["batched"]])
            ou, _ = ours_candidates([c for c in calls if not c["batched"]])
            labels = ours["passes"]["fixed"]["labels"]
            print("fixed trees (same 3 trees on both sides; all should be trained, none rejected):")
            for i, label in enumerate(labels):
                rcd, obd, oud = rc[i], ob[i], ou[i]
                print(
                    f"  {label:44s} ref {rcd['t']:.2f} s{' (REJECTED)' if rcd['rejected'] else ''} "
                    f"[LS {rcd['stages']['local_search']:.2f}, rej {rcd['stages']['rejection']:.2f}, "
                    f"train {rcd['stages']['train+val']:.2f}] | ours one-by-one {oud['t']:.2f} s "
                    f"[LS {oud['stages']['local_search']:.2f}, rej {oud['stages']['rejection']:.2f}, "
                    f"train {oud['stages']['train+val']:.2f}]{' (REJECTED)' if oud['rejected'] else ''} | "
                    f"ours batch-of-3 share {obd['t']:.2f} s"
                )
            rm = statistics.mean(c["t"] for c in rc)
            bm = statistics.mean(c["t"] for c in ob)
            um = statistics.mean(c["t"] for c in ou)
            print(
                f"  mean per tree: ref {rm:.2f} s, ours one-by-one {um:.2f} s, ours batch of 3 {bm:.2f} s; "
                f"ratio ref/ours {ratio(rm, um):.2f}x (one-by-one), {ratio(rm, bm):.2f}x (batch of 3)"
            )
            fixed_rows.append((rm, um, bm))
    print("=== pooled over rounds")
    if pooled["ref"][0] and pooled["ours"][0]:
        rs, os_ = stats(*pooled["ref"]), stats(*pooled["ours"])
        print("random GP trees:")
        print(fmt(rs, "reference"))
        print(fmt(os_, "ours"))
        print(
            f"  ratio reference/ours: mean {ratio(rs['mean'], os_['mean']):.2f}x, "
            f"median {ratio(rs['median'], os_['median']):.2f}x, "
            f"per trained candidate {ratio(rs['trained_mean'], os_['trained_mean']):.2f}x"
        )
        per_round = []
        for _, ref, ours in meta:
            if "random" in ref["passes"] and "random" in ours["passes"]:
                a = stats(*ref_candidates(ref["passes"]["random"]))
                b = stats(*ours_candidates(ours["passes"]["random"]["calls"]))
                per_round.append(ratio(a["mean"], b["mean"]))
        print("  per-round mean ratios: " + ", ".join(f"{x:.2f}x" for x in per_round))
    if fixed_rows:
        rm = statistics.mean(x[0] for x in fixed_rows)
        um = statistics.mean(x[1] for x in fixed_rows)
        bm = statistics.mean(x[2] for x in fixed_rows)
        print(
            f"fixed trees, mean per tree over {len(fixed_rows)} round(s): ref {rm:.2f} s, ours one-by-one "
            f"{um:.2f} s, ours batch of 3 {bm:.2f} s; ratio ref/ours {ratio(rm, um):.2f}x (one-by-one), "
            f"{ratio(rm, bm):.2f}x (batch of 3)"
        )


if __name__ == "__main__":
    main(sys.argv[1])

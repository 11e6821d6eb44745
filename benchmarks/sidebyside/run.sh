#!/usr/bin/env bash
# Side-by-side cost per evaluated candidate loss: the EvoMAL reference code vs evomal-sr,
# the paper's per-candidate settings, sklearn digits, MLP 64-100-100-10 (ReLU), CPU.
# See README.md in this folder for what is measured and what is not comparable.
#
# Run from the project root (which has .venv with evomal-sr installed):
#   bash benchmarks/sidebyside/run.sh                  # 2 rounds, ~6-9 min on 2 cores
#   ROUNDS=3 THREADS=1 bash benchmarks/sidebyside/run.sh
#
# Each round runs, in this order and in fresh processes: reference (warm-up, fixed trees,
# random search), then ours (warm-up, fixed trees, random searches).  Results (JSON per run,
# log.txt, summary.txt) go to $OUT.
#
# Knobs (environment):
#   ROUNDS=2        alternating rounds (reference, ours, reference, ours, ...)
#   THREADS=2       torch.set_num_threads on both sides (also OMP_NUM_THREADS / MKL_NUM_THREADS)
#   REF_POP=12 REF_GENS=2                 reference search per round (seed = round index)
#   OURS_POP=25 OURS_GENS=2 OURS_SEEDS=3  ours: OURS_SEEDS searches per round (seeds round*OURS_SEEDS+j)
#   PASSES=fixed,random
#   REF_DATA=ref    reference data: "ref" = load_digits X/16, stratified 1437/180/180 (random_state 0);
#                   "ours" = the exact standardised 1077/360/360 split evomal-sr uses
#   OUT             results folder (default ${TMPDIR:-/tmp}/evomal-sidebyside/<timestamp>); if you
#                   point it inside a git checkout, git-ignore it
#   OURS_PY         python with evomal-sr installed (default ./.venv/bin/python); never installed here
#   REF_VENV        the reference's venv (default ${XDG_CACHE_HOME:-$HOME/.cache}/evomal-ref-venv),
#                   built on first use (see setup.sh)
#   REF_SRC         the reference source (default: a clone at the pinned commit in
#                   ${XDG_CACHE_HOME:-$HOME/.cache}/evomal-reference, made on first use; see common.sh)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-2}
REF_POP=${REF_POP:-12}
REF_GENS=${REF_GENS:-2}
OURS_POP=${OURS_POP:-25}
OURS_GENS=${OURS_GENS:-2}
OURS_SEEDS=${OURS_SEEDS:-3}
PASSES=${PASSES:-fixed,random}
REF_DATA=${REF_DATA:-ref}

check_ours
ensure_ref_src
ensure_ref_venv

OUT=${OUT:-${TMPDIR:-/tmp}/evomal-sidebyside/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
export PYTHONDONTWRITEBYTECODE=1 TQDM_DISABLE=1

ref_commit=$(ref_commit | cut -c1-7)
{ read -r ours_version; read -r ours_dir; read -r ours_torch; } < <(in_here "$OURS_PY" -c \
  'import os, evomal_sr, torch; print(evomal_sr.__version__, os.path.dirname(evomal_sr.__file__), torch.__version__, sep="\n")')
ours_commit=$(git -C "$ours_dir" describe --always --dirty --abbrev=7 2>/dev/null || echo '?')

{
echo "side-by-side: $(date -Is), host $(hostname), $(nproc) CPUs"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "settings: ROUNDS=$ROUNDS THREADS=$THREADS REF_POP=$REF_POP REF_GENS=$REF_GENS OURS_POP=$OURS_POP" \
     "OURS_GENS=$OURS_GENS OURS_SEEDS=$OURS_SEEDS PASSES=$PASSES REF_DATA=$REF_DATA OMP_WAIT_POLICY=$OMP_WAIT_POLICY"
echo "reference: EvoMAL ${ref_commit:-?} from $REF_SRC," \
     "torch $(in_here "$REF_PY" -c 'import torch; print(torch.__version__)') deap $(in_here "$REF_PY" -c 'import deap; print(deap.__version__)')"
echo "ours: evomal-sr $ours_version from $ours_dir ($ours_commit) torch $ours_torch"
} | tee "$OUT/log.txt"

if [ "$REF_DATA" = ours ]; then
  export OURS_DATA=$OUT/digits_ours.pt
  "$OURS_PY" "$HERE/ours_bench.py" --dump-data "$OURS_DATA"
fi

start=$(date +%s)
for ((r = 0; r < ROUNDS; r++)); do
  seeds=$(seq -s, $((r * OURS_SEEDS)) $((r * OURS_SEEDS + OURS_SEEDS - 1)))
  echo "--- round $r: reference (load $(cut -d' ' -f1 /proc/loadavg))" | tee -a "$OUT/log.txt"
  "$REF_PY" "$HERE/ref_bench.py" --pass "$PASSES" --seed "$r" --population "$REF_POP" \
      --generations "$REF_GENS" --threads "$THREADS" --data "$REF_DATA" --out "$OUT/ref_round$r.json" 2>&1 | tee -a "$OUT/log.txt"
  echo "--- round $r: ours (load $(cut -d' ' -f1 /proc/loadavg))" | tee -a "$OUT/log.txt"
  "$OURS_PY" "$HERE/ours_bench.py" --pass "$PASSES" --seeds "$seeds" --population "$OURS_POP" \
      --generations "$OURS_GENS" --threads "$THREADS" --out "$OUT/ours_round$r.json" 2>&1 | tee -a "$OUT/log.txt"
done
echo "total $(( $(date +%s) - start )) s; load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/log.txt"
echo | tee -a "$OUT/log.txt"
"$OURS_PY" "$HERE/summarize.py" "$OUT" | tee "$OUT/summary.txt"
echo "results in $OUT"

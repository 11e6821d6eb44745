#!/usr/bin/env bash
# Per-generation wall time of a real `evomal-sr search --dataset digits --preset paper`
# (population 25, the paper's per-candidate settings), GENS generations (default 2).
# Run from the project root (which has .venv with evomal-sr installed; or set OURS_PY):
#   bash benchmarks/sidebyside/paper_generation.sh            # ~1 min on 2 cores
#   GENS=3 THREADS=2 bash benchmarks/sidebyside/paper_generation.sh
# The run folder goes to $OUT (default ${TMPDIR:-/tmp}/evomal-sidebyside/paper-search-<timestamp>;
# git-ignore it if you put it inside a checkout).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
GENS=${GENS:-2}
THREADS=${THREADS:-2}
check_ours
OUT=${OUT:-${TMPDIR:-/tmp}/evomal-sidebyside/paper-search-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$(dirname "$OUT")"
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
cli=$(dirname "$OURS_PY")/evomal-sr
evomal_sr() {
  if [ -x "$cli" ]; then "$cli" "$@"; else "$OURS_PY" -c 'import sys; from evomal_sr.cli import main; sys.argv[0] = "evomal-sr"; main()' "$@"; fi
}
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); torch threads via OMP_NUM_THREADS=$THREADS"
t0=$(date +%s.%N)
evomal_sr search --dataset digits --preset paper --generations "$GENS" --seed 0 --out "$OUT" --quiet 2>&1 | tail -n 4
t1=$(date +%s.%N)
echo "wall of the whole command: $("$OURS_PY" -c "print(f'{$t1-$t0:.1f}')") s (includes imports, writing results)"
echo "history.csv:"; cat "$OUT/history.csv"
"$OURS_PY" - "$OUT/history.csv" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
secs = [float(r["seconds"]) for r in rows]
print("per-generation seconds:", ", ".join(f"{s:.1f}" for s in secs))
later = secs[1:] or secs
print(f"50-generation estimate: {secs[0] + 49 * sum(later) / len(later):.0f} s "
      f"(generation 0 + 49 x mean of generations >= 1; later generations usually have more cache hits)")
EOF
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "run folder: $OUT"

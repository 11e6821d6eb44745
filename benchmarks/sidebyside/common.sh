# Sourced by run.sh, setup.sh and paper_generation.sh; runs nothing by itself.
#
#   HERE      this folder (symlinks resolved)
#   REF_SRC   the EvoMAL reference source (Decadz/Evolved-Model-Agnostic-Loss at REF_COMMIT);
#             default ${XDG_CACHE_HOME:-$HOME/.cache}/evomal-reference, cloned there by
#             ensure_ref_src on first use. Its code is never copied into this repository.
#   REF_VENV  the reference's virtual environment (built on first use by ensure_ref_venv)
#   OURS_PY   the python that has evomal-sr installed: .venv/bin/python of the current
#             directory (the project root) unless set; the harness never installs the project

HERE=$(cd -P "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REF_REPO=${REF_REPO:-https://github.com/Decadz/Evolved-Model-Agnostic-Loss.git}
REF_COMMIT=${REF_COMMIT:-9e09e900a3fee977bf2f6215c88406885c7d558d}  # the commit every published comparison used
REF_SRC_DEFAULT=${XDG_CACHE_HOME:-$HOME/.cache}/evomal-reference
REF_SRC=${REF_SRC:-$REF_SRC_DEFAULT}
case $REF_SRC in /*) ;; *) REF_SRC=$PWD/$REF_SRC ;; esac
export REF_SRC
REF_VENV=${REF_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/evomal-ref-venv}
case $REF_VENV in /*) ;; *) REF_VENV=$PWD/$REF_VENV ;; esac
REF_PY=$REF_VENV/bin/python
OURS_PY=${OURS_PY:-$PWD/.venv/bin/python}
case $OURS_PY in
  /*) ;;
  */*) OURS_PY=$PWD/$OURS_PY ;;
  *) OURS_PY=$(command -v "$OURS_PY" || echo "$PWD/$OURS_PY") ;;
esac

# Run a command from this folder, as the benchmark scripts themselves see imports: a python
# started in the project root would otherwise import evomal_sr from the checkout even when
# the environment does not have it installed.
in_here() { (cd "$HERE" && "$@"); }

die() {
  echo "error: $*" >&2
  exit 1
}

has_ref_src() {
  [ -f "$REF_SRC/source/__init__.py" ] && [ -f "$REF_SRC/experiments/resources/__init__.py" ]
}

# The commit of the reference source: its PROVENANCE.txt (an unpacked archive of the commit), or
# its git HEAD when REF_SRC is itself a clone; "?" if neither says.
ref_commit() {
  local commit
  commit=$(sed -n 's/^Commit: *//p' "$REF_SRC/PROVENANCE.txt" 2>/dev/null)
  if [ -z "$commit" ] && [ "$(git -C "$REF_SRC" rev-parse --show-toplevel 2>/dev/null)" = "$(cd -P "$REF_SRC" && pwd -P)" ]; then
    commit=$(git -C "$REF_SRC" rev-parse HEAD 2>/dev/null)
  fi
  echo "${commit:-?}"
}

# The reference source at REF_SRC: cloned at REF_COMMIT into the default folder on first use
# (git and internet needed once); a REF_SRC you set is used as it is.  A commit other than
# REF_COMMIT is reported, not refused.
ensure_ref_src() {
  if ! has_ref_src; then
    [ "$REF_SRC" = "$REF_SRC_DEFAULT" ] ||
      die "the EvoMAL reference source was not found at REF_SRC=$REF_SRC (unset REF_SRC to have it cloned, or point it at a copy of $REF_REPO)."
    [ ! -e "$REF_SRC" ] ||
      die "$REF_SRC exists but holds no EvoMAL reference source; remove it to have it cloned again."
    echo "cloning the EvoMAL reference ($REF_REPO at ${REF_COMMIT:0:7}) into $REF_SRC (first use only)" >&2
    mkdir -p "$(dirname "$REF_SRC")"
    git clone -q "$REF_REPO" "$REF_SRC" && git -C "$REF_SRC" checkout -q "$REF_COMMIT" ||
      die "could not clone $REF_REPO at $REF_COMMIT into $REF_SRC (git and internet are needed once; or set REF_SRC to a copy)."
  fi
  REF_SRC=$(cd -P "$REF_SRC" && pwd -P)
  local commit
  commit=$(ref_commit)
  [ "$commit" = "$REF_COMMIT" ] ||
    echo "note: the reference source at $REF_SRC is at commit $commit, not the pinned $REF_COMMIT" >&2
}

check_ours() {
  [ -x "$OURS_PY" ] ||
    die "no python at OURS_PY=$OURS_PY; run this from the project root with its .venv (python3 -m venv .venv && .venv/bin/pip install -e .), or set OURS_PY to a python that has evomal-sr installed."
  in_here "$OURS_PY" -c 'import evomal_sr' >/dev/null 2>&1 ||
    die "OURS_PY=$OURS_PY cannot import evomal_sr; install the project into that environment (pip install -e . from the project root) or set OURS_PY to one that has it."
}

# The reference's environment: torch first (so pip does not pick another build for the
# others), then the reference's own dependencies.  Built only when it is missing or incomplete.
ensure_ref_venv() {
  if [ -x "$REF_PY" ] && in_here "$REF_PY" -c 'import torch, deap, higher, sklearn, numpy, yaml, tqdm' >/dev/null 2>&1; then
    return 0
  fi
  echo "building the reference's environment in $REF_VENV (first use only)" >&2
  if [ ! -x "$REF_PY" ]; then
    mkdir -p "$(dirname "$REF_VENV")"
    "${REF_BASE_PYTHON:-python3}" -m venv "$REF_VENV" ||
      die "could not create a virtual environment at REF_VENV=$REF_VENV."
  fi
  "$REF_PY" -m pip install -q torch==2.13.0 &&
    "$REF_PY" -m pip install -q deap==1.3.3 higher scikit-learn numpy pyyaml tqdm ||
    die "could not install the reference's packages into REF_VENV=$REF_VENV (see pip's messages above)."
}

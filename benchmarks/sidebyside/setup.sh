#!/usr/bin/env bash
# Prepare the side-by-side benchmark (idempotent; run.sh does the same on each start).
#
#   cd <project root> && bash benchmarks/sidebyside/setup.sh
#
# - The reference source is $REF_SRC: by default a clone of Decadz/Evolved-Model-Agnostic-Loss at
#   the pinned commit in ${XDG_CACHE_HOME:-$HOME/.cache}/evomal-reference, made on first use
#   (git and internet needed once); set REF_SRC to use a copy you already have.
# - The reference's virtual environment is built in $REF_VENV
#   (default ${XDG_CACHE_HOME:-$HOME/.cache}/evomal-ref-venv) only if it is missing or incomplete:
#   pip install torch==2.13.0, then deap==1.3.3 higher scikit-learn numpy pyyaml tqdm.
#   REF_BASE_PYTHON (default python3) is the interpreter it is created with.
# - The project side is never cloned or installed here: $OURS_PY (default ./.venv/bin/python)
#   must already be able to `import evomal_sr`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ensure_ref_src
check_ours
ensure_ref_venv
echo "reference: $REF_SRC ($(ref_commit | cut -c1-7)), python $REF_PY," \
     "torch $(in_here "$REF_PY" -c 'import torch; print(torch.__version__)'), deap $(in_here "$REF_PY" -c 'import deap; print(deap.__version__)')"
echo "ours: evomal-sr $(in_here "$OURS_PY" -c 'import evomal_sr; print(evomal_sr.__version__)'), python $OURS_PY," \
     "torch $(in_here "$OURS_PY" -c 'import torch; print(torch.__version__)')"

#!/usr/bin/env bash
# The one prepared device check of the one-program issue: a single call on a lent GPU machine.
#
# Its budget is about 6 minutes of the session's 15 (the machine's start comes on top): the
# `cuda`-marked tests (a recorded training step, rejection fit and local search against the eager
# loops on the GPU), then benchmarks/bench_gpu.py (the issue's GPU figures with their exactness
# checks). The device image has PyTorch but not deap or mnist1d; they travel as wheels.
#
# Here, once (downloads into .gpu-wheels/, which git ignores):
#     bash benchmarks/gpu_session.sh --prepare
# On the device (the device tool's `run`, carry [".gpu-wheels"], timeout_s 560):
#     bash benchmarks/gpu_session.sh
# What it prints also goes to $OUT (the folder the device tool sends back): device.txt,
# cuda-tests.txt, bench_gpu.txt, bench_gpu.json. PY picks the python (default python3, the
# one that holds PyTorch there); on a machine without CUDA the tests skip and bench_gpu exits 2.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
if [ "${1:-}" = "--prepare" ]; then
    exec "$PY" -m pip download -q deap mnist1d --only-binary=:all: --python-version 3.12 \
        --platform manylinux2014_x86_64 --platform any --no-deps -d .gpu-wheels
fi
OUT=${OUT:-/tmp/gpu-session}
mkdir -p "$OUT"
"$PY" -m pip install -q --no-index --no-deps .gpu-wheels/*.whl
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true; "$PY" -c \
    "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"; } | tee "$OUT/device.txt"
timeout 150 "$PY" -m pytest -q -rs -m cuda -p no:cacheprovider tests/test_captured.py tests/test_captured_stages.py \
    2>&1 | tee "$OUT/cuda-tests.txt" | tail -8
timeout 360 "$PY" benchmarks/bench_gpu.py --cpu-s-per-candidate 0.35 --json "$OUT/bench_gpu.json" 2>&1 \
    | tee "$OUT/bench_gpu.txt"
echo "bench_gpu exit status ${PIPESTATUS[0]}"

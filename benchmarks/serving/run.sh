#!/usr/bin/env bash
# docs/serving.md's measurements: run alone on an idle machine (about 12 minutes on 2 cores).
# Serves the optimize run's 3-layer fused int8 student with slimformer (several workers x
# threads, batching off, the cache on), and the teacher behind two hand-written FastAPI
# servers (transformers pipeline() of the PyTorch teacher, optimum ORTModel pipeline() of its
# int8), each loaded with `slimformer loadtest` at concurrency 1, 8, 32 and 128 over loopback.
set -euo pipefail
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
RUN=${RUN:-outputs/optimize-full}
DATA=${DATA:-../shared/data/clinc150}
OUT=${OUT:-outputs/serving}
STUDENT=${STUDENT:-$RUN/variants/student-3l-0-2-4/student-3l-0-2-4-onnx-O2-int8}
TEACHER_INT8=${TEACHER_INT8:-$RUN/variants/teacher/teacher-onnx-int8}
SECONDS_PER_LEVEL=${SECONDS_PER_LEVEL:-10}
mkdir -p "$OUT"

# serve_and_load NAME PORT LEVELS COMMAND...: start the server, wait for /health, load it, stop
serve_and_load() {
  local name=$1 port=$2 levels=$3; shift 3
  [ -f "$OUT/$name/loadtest.json" ] && return
  "$@" --port "$port" >"$OUT/$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
    sleep 0.2
  done
  # shellcheck disable=SC2086
  slimformer loadtest "http://127.0.0.1:$port" --data_file "$DATA" --concurrency $levels \
    --duration_s "$SECONDS_PER_LEVEL" --server_pid "$pid" --name "$name" \
    --output_dir "$OUT/$name"
  kill -TERM "$pid"
  wait "$pid" || true
}

ALL="1 8 32 128"
serve_and_load teacher-pytorch-pipeline 8081 "$ALL" \
  python benchmarks/serving/handwritten.py pytorch "$RUN/teacher" --threads 2
serve_and_load teacher-int8-ort-pipeline 8082 "$ALL" \
  python benchmarks/serving/handwritten.py ort "$TEACHER_INT8" --threads 2
for wt in "1 2" "2 1" "1 1"; do
  set -- $wt
  serve_and_load "student-slimformer-w$1-t$2" 8083 "$ALL" \
    slimformer serve "$STUDENT" --workers "$1" --threads "$2" --cache_size 0
done
serve_and_load student-slimformer-no-batching 8084 "$ALL" \
  slimformer serve "$STUDENT" --workers 1 --threads 2 --cache_size 0 --max_batch_size 1
serve_and_load student-slimformer-cache 8085 "32" \
  slimformer serve "$STUDENT" --workers 1 --threads 2 --cache_size 20000
python benchmarks/serving/overhead.py "$STUDENT" --data_file "$DATA" --threads 2 \
  > "$OUT/overhead.json"
python benchmarks/serving/plot.py "$OUT"

#!/usr/bin/env bash
# Issue 14's targets on the students of benchmarks/distillation_targets.sh (run that first, and
# run this alone): vocabulary-trimmed int8 of the teacher and the 3-layer student, the 3-layer
# student pruned to half its heads and FFN neurons (movement top-k, distilled from the teacher,
# 2 epochs) in fused int8, and one side-by-side benchmark against the untrimmed, unpruned int8.
set -euo pipefail
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
TEACHER=outputs/optimize-full/teacher
DATA=../shared/data/clinc150/data_oos_plus.json
FROM=outputs/distillation-targets
OUT=outputs/trim-prune-targets

for model in teacher student-3l; do
  source="$FROM/$model"; [ "$model" = teacher ] && source="$TEACHER"
  [ -d "$OUT/$model-trimmed" ] || slimformer trim-vocab --model "$source" \
    --data_file "$DATA" --output_dir "$OUT/$model-trimmed"
  [ -d "$OUT/variants/$model-trimmed-onnx-int8" ] || slimformer compress \
    --model "$OUT/$model-trimmed" --variants onnx-int8 --data_file "$DATA" \
    --output_dir "$OUT/variants"
done
# The unpruned reference: its plain int8, and its fused (O2) int8 where fusing pays here.
[ -f "$OUT/variants/.fused-tried" ] || { slimformer compress --model "$FROM/student-3l" \
  --variants onnx-int8 onnx-opt-int8 --data_file "$DATA" --output_dir "$OUT/variants" &&
  touch "$OUT/variants/.fused-tried"; }
fused=()
[ -d "$OUT/variants/student-3l-onnx-O2-int8" ] && \
  fused=(student-3l-onnx-O2-int8="$OUT/variants/student-3l-onnx-O2-int8@onnx-lean")
# The 3-layer student pruned to half its heads and neurons for EPOCHS epochs, into NAME (and
# its ONNX int8 under variants/), unless an earlier run made it.
prune_student() {  # NAME EPOCHS
  [ -d "$OUT/$1" ] || python recipes/prune.py \
    --config recipes/prune_minilm_topk_offline.yaml --model_name_or_path "$FROM/student-3l" \
    --teacher_model_name_or_path "$TEACHER" --final_sparsity 0.5 --num_train_epochs "$2" \
    --output_dir "$OUT/$1" --onnx_dir "$OUT/variants/$1-onnx"
}
prune_student student-3l-pruned 2
slimformer benchmark --data_file "$DATA" --output_dir "$OUT/benchmark" \
  --baseline student-3l-onnx-int8 --rounds 5 --latency_queries 300 --variants \
  teacher-onnx-int8="$FROM/variants/teacher-onnx-int8@onnx-lean" \
  teacher-trimmed-onnx-int8="$OUT/variants/teacher-trimmed-onnx-int8@onnx-lean" \
  student-3l-onnx-int8="$OUT/variants/student-3l-onnx-int8@onnx-lean" \
  student-3l-trimmed-onnx-int8="$OUT/variants/student-3l-trimmed-onnx-int8@onnx-lean" \
  "${fused[@]}" \
  student-3l-pruned-onnx-O2-int8="$OUT/variants/student-3l-pruned-onnx-int8@onnx-lean"

# Re-run (second session): the same pruning with 6 epochs instead of 2 (~10 min here), and one
# side-by-side benchmark of the unpruned int8 and both pruned int8 variants.
prune_student student-3l-pruned-6ep 6
slimformer benchmark --data_file "$DATA" --output_dir "$OUT/benchmark-6ep" \
  --baseline student-3l-onnx-int8 --rounds 5 --latency_queries 300 --variants \
  student-3l-onnx-int8="$OUT/variants/student-3l-onnx-int8@onnx-lean" \
  student-3l-pruned-2ep-onnx-O2-int8="$OUT/variants/student-3l-pruned-onnx-int8@onnx-lean" \
  student-3l-pruned-6ep-onnx-O2-int8="$OUT/variants/student-3l-pruned-6ep-onnx-int8@onnx-lean"

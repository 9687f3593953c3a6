#!/usr/bin/env bash
# Issue 13's targets, end to end on 2 CPU cores (about 75 minutes; run it alone):
# the layer-wise search, then 5-epoch students with its best settings (3 and 2 layers), the
# same 3-layer student on labels alone (same epochs and learning rate), their ONNX int8
# variants (each with its own out-of-scope fallback), and one side-by-side benchmark.
# Needs the teacher of `slimformer optimize --config recipes/optimize_minilm_full_offline.yaml`.
set -euo pipefail
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
TEACHER=outputs/optimize-full/teacher
DATA=../shared/data/clinc150/data_oos_plus.json
OUT=outputs/distillation-targets
BEST=outputs/search-minilm-3l-layerwise/best_params.yaml

python recipes/search.py --config recipes/search_minilm_layerwise_offline.yaml
common=(--config "$BEST" --num_train_epochs 5 --eval_strategy "no" --save_strategy "no")
[ -f "$OUT/student-3l/model.safetensors" ] || \
  python recipes/distill.py "${common[@]}" --output_dir "$OUT/student-3l"
[ -f "$OUT/student-3l-labels/model.safetensors" ] || \
  python recipes/distill.py "${common[@]}" --alpha 1 --hidden_weight 0 --attention_weight 0 \
    --output_dir "$OUT/student-3l-labels"
[ -f "$OUT/student-2l/model.safetensors" ] || \
  python recipes/distill.py "${common[@]}" --student_layers 0 5 --output_dir "$OUT/student-2l"
for model in teacher student-3l student-3l-labels student-2l; do
  source="$OUT/$model"; [ "$model" = teacher ] && source="$TEACHER"
  [ -d "$OUT/variants/$model-onnx-int8" ] || \
    slimformer compress --model "$source" --variants onnx-int8 --data_file "$DATA" \
      --output_dir "$OUT/variants"
done
slimformer benchmark --data_file "$DATA" --output_dir "$OUT/benchmark" --baseline teacher \
  --rounds 5 --latency_queries 300 --variants \
  teacher="$TEACHER" \
  teacher-onnx-int8="$OUT/variants/teacher-onnx-int8@onnx-lean" \
  student-3l="$OUT/student-3l" \
  student-3l-onnx-int8="$OUT/variants/student-3l-onnx-int8@onnx-lean" \
  student-3l-labels-onnx-int8="$OUT/variants/student-3l-labels-onnx-int8@onnx-lean" \
  student-2l-onnx-int8="$OUT/variants/student-2l-onnx-int8@onnx-lean"

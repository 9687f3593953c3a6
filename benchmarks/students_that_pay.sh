#!/usr/bin/env bash
# Issue 21's measurements on 2 CPU cores; run it alone (nothing else may time on the machine).
# 1. the full profile (its students distilled on the transfer set), side-by-side benchmark;
# 2. the same student distilled without the transfer set (the profile's settings and
#    layer-wise losses, 3 epochs), and on labels alone (its learning rate and epochs), their
#    accuracy with the fallback, and the transfer set's gains paired over the test queries;
# 3. the out-of-scope scores compared on the teacher and the students (docs/distillation.md;
#    OOS_SCORES=0 leaves it out).
# STUDENT_LAYERS picks the student (the teacher's layers it keeps; the profile's "1 2 4 5" by
# default); OPTIMIZE_ARGS adds flags to step 1, e.g. OPTIMIZE_ARGS="--prune_levels 0.25".
set -euo pipefail
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
RUN=${RUN:-outputs/optimize-full}
DATA=../shared/data/clinc150/data_oos_plus.json
OUT=${OUT:-outputs/students-that-pay}
SOFT_LOSS=${SOFT_LOSS:-kl}  # the distillation's teacher term (optimize --soft_loss)
LAYERS=${STUDENT_LAYERS:-1 2 4 5}
read -r -a layers <<< "$LAYERS"
# optimize names a student by its depth and layers: student-3l-1-3-5.
NAME="student-${#layers[@]}l"
STUDENT="$RUN/$NAME-$(IFS=-; echo "${layers[*]}")"
read -r -a extra <<< "${OPTIMIZE_ARGS:-}"

slimformer optimize --config recipes/optimize_minilm_full_offline.yaml --output_dir "$RUN" \
  --soft_loss "$SOFT_LOSS" --students "$LAYERS" "${extra[@]}"
common=(--teacher_model "$RUN/teacher" --student_layers "${layers[@]}" --data_file "$DATA"
        --num_train_epochs 3 --learning_rate 2.2e-4 --per_device_train_batch_size 32
        --save_strategy no --eval_strategy no --report_to none --disable_tqdm true
        --cache_dir "$RUN/cache")
[ -f "$OUT/$NAME-plain/model.safetensors" ] || \
  slimformer distill "${common[@]}" --alpha 0.78 --temperature 4.8 --hidden_weight 5.84 \
    --attention_weight 0.81 --soft_loss "$SOFT_LOSS" --output_dir "$OUT/$NAME-plain"
[ -f "$OUT/$NAME-labels/model.safetensors" ] || \
  slimformer distill "${common[@]}" --alpha 1 --output_dir "$OUT/$NAME-labels"
slimformer benchmark --data_file "$DATA" --output_dir "$OUT/benchmark" --baseline teacher \
  --latency_queries 100 --variants teacher="$RUN/teacher" \
  "$NAME-transfer-set=$STUDENT" \
  "$NAME-plain=$OUT/$NAME-plain" "$NAME-labels=$OUT/$NAME-labels"
# The issue's two gains, each paired over the same test queries with its 95% interval.
python benchmarks/paired.py "$OUT/benchmark" "$NAME-transfer-set:$NAME-labels" \
  "$NAME-transfer-set:$NAME-plain" "$NAME-transfer-set:teacher" | tee "$OUT/paired.md"
[ "${OOS_SCORES:-1}" = 0 ] && exit 0
python benchmarks/oos_scores.py --data_file "$DATA" --output "$OUT/oos-scores.md" \
  --variants teacher="$RUN/teacher" "$NAME-transfer-set=$STUDENT" \
  "$NAME-plain=$OUT/$NAME-plain"

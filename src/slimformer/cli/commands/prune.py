"""Prune a CLINC150 classifier while fine-tuning it (optionally distilling from a teacher), then
compact it into a smaller dense model, and optionally export it to int8 ONNX.

    slimformer prune --config recipes/prune_minilm_hybrid_offline.yaml
    slimformer prune --config recipes/prune_minilm_hybrid_offline.yaml \
        --model_name_or_path outputs/student-3l --output_dir outputs/student-3l-pruned

Writes to --output_dir: the compacted model (safetensors; load it with
`slimformer.load_pruned`, or as variant kind `pytorch-pruned`), the tokenizer, sparsity.json/.md
(heads, neurons and parameters kept per layer), schedule.png, metrics.json and slimformer.json.
With --onnx_dir it also writes the ONNX export there, and its O2-optimized int8 version to
ONNX_DIR-int8.
"""

from __future__ import annotations

from slimformer.compression.pruning.args import PruningArguments
from slimformer.compression.pruning.run import PruneRunArguments
from slimformer.data.args import DataArguments
from slimformer.training.args import DistillationTrainingArguments, ModelArguments

ARGUMENTS = (ModelArguments, DataArguments, PruneRunArguments, PruningArguments,
             DistillationTrainingArguments)


def main(argv: list[str] | None = None) -> None:
    from slimformer.cli.config import parse_args
    from slimformer.compression.pruning.run import prune

    parsed = parse_args(ARGUMENTS, argv, description=__doc__)
    result = prune(*parsed)
    if result is None:  # not the main process
        return
    print((result["folder"] / "sparsity.md").read_text())
    print({k: round(v, 4) for k, v in result["metrics"].items()
           if "accuracy" in k or "recall" in k or k == "compaction_max_logit_diff"})

"""Prune a CLINC150 classifier while fine-tuning it (optionally distilling from a teacher), then
compact it into a smaller dense model, and optionally export it to int8 ONNX.

    python recipes/prune.py --config recipes/prune_minilm_hybrid_offline.yaml
    python recipes/prune.py --config recipes/prune_minilm_hybrid_offline.yaml \
        --model_name_or_path outputs/student-3l --output_dir outputs/student-3l-pruned

Writes to --output_dir: the compacted model (safetensors; load it with
`slimformer.prune_compact.load_pruned`, or as variant kind `pytorch-pruned`), the tokenizer,
sparsity.json/.md (heads, neurons and parameters kept per layer), schedule.png, metrics.json and
slimformer.json. With --onnx_dir it also writes the ONNX export there, and its O2-optimized
int8 version to ONNX_DIR-int8.
"""

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import DataCollatorWithPadding, TrainingArguments

from slimformer.args import DataArguments, ModelArguments
from slimformer.config import parse_args
from slimformer.data import load_clinc, tokenize
from slimformer.distill import (
    DistillationTrainingArguments,
    cached_teacher_logits,
    with_teacher_logits,
)
from slimformer.errors import fail, run_recipe
from slimformer.files import check_target
from slimformer.metrics import compute_metrics
from slimformer.provenance import write_provenance
from slimformer.prune import Pruner, PruningArguments, PruningTrainer, plot_schedule
from slimformer.prune_compact import (
    compact,
    export_pruned_onnx,
    layer_stats,
    save_pruned,
    sparsity_report,
    write_sparsity_report,
)
from slimformer.train import evaluate_splits, load_classifier, load_tokenizer, resolve_model


@dataclass
class PruneRecipeArguments:
    teacher_model_name_or_path: str | None = field(default=None, metadata={
        "help": "fine-tuned teacher to distil from while pruning (None: labels only)"})
    onnx_dir: str | None = field(default=None, metadata={
        "help": "also export the compacted model to ONNX here, and int8 to ONNX_DIR-int8"})
    skip_eval: bool = field(default=False, metadata={"help": "skip validation/test metrics"})
    cache_dir: str = field(default="outputs/cache", metadata={"help": "teacher-logit cache"})


ARGUMENTS = (ModelArguments, DataArguments, PruneRecipeArguments, PruningArguments,
             DistillationTrainingArguments)


def check_training_args(args: TrainingArguments) -> None:
    # A mid-run checkpoint would hold masked weights without their scores, so it could not
    # resume the schedule; pruning runs end to end.
    if args.save_strategy != "no":
        fail("pruning runs cannot resume from checkpoints: set save_strategy: no")


@torch.no_grad()
def logits_of(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    model.eval()
    return model(**batch).logits


def check_outputs(output_dir: Path, onnx_dir: Path | None, overwrite: bool) -> None:
    """Every folder this run will write, checked before any training."""
    flag = "--overwrite_output_dir true"
    check_target(output_dir, "prune", overwrite, flag)
    if onnx_dir is not None:
        check_target(onnx_dir, "onnx-export", overwrite, flag)
        check_target(int8_folder(onnx_dir), "onnx-quantize-dynamic", overwrite, flag)


def int8_folder(onnx_dir: Path) -> Path:
    return onnx_dir.with_name(onnx_dir.name + "-int8")


def main(argv: list[str] | None = None) -> None:
    model_args, data_args, recipe, pruning, training_args = parse_args(
        ARGUMENTS, argv, description=__doc__)
    check_training_args(training_args)
    output_dir = Path(training_args.output_dir)
    onnx_dir = Path(recipe.onnx_dir) if recipe.onnx_dir else None
    overwrite = training_args.overwrite_output_dir
    check_outputs(output_dir, onnx_dir, overwrite)
    main_process = training_args.process_index == 0
    work_dir = output_dir.with_name(f".{output_dir.name}.work")
    ours = not work_dir.exists()  # Trainer's scratch; removed at the end if this run made it
    training_args.output_dir = str(work_dir)
    try:
        model, tokenizer, metrics, report, pruning_log = prune_and_compact(
            model_args, data_args, recipe, pruning, training_args)
    finally:
        if main_process and ours:
            shutil.rmtree(work_dir, ignore_errors=True)
    if not main_process:  # one process writes; the others trained alongside it (DDP)
        return
    source = resolve_model(model_args.model_name_or_path)
    settings = {**asdict(pruning), "teacher": recipe.teacher_model_name_or_path,
                "alpha": training_args.alpha, "temperature": training_args.temperature,
                "epochs": training_args.num_train_epochs,
                "learning_rate": training_args.learning_rate,
                "steps": pruning_log["total_steps"],
                "heads_kept": f"{report['heads_kept']}/{report['heads']}",
                "neurons_kept": f"{report['neurons_kept']}/{report['neurons']}",
                "encoder_params_kept_ratio": report["encoder_params_kept_ratio"]}

    def write_extras(folder: Path) -> None:
        write_sparsity_report(report, folder)
        plot_schedule(pruning, pruning_log["total_steps"], folder / "schedule.png",
                      pruning_log["history"])
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
        write_provenance(folder, "prune", settings, source=source)

    save_pruned(model, tokenizer, output_dir, write_extras, overwrite)
    print((output_dir / "sparsity.md").read_text())
    print({k: round(v, 4) for k, v in metrics.items()
           if "accuracy" in k or "recall" in k or k == "compaction_max_logit_diff"})
    if onnx_dir is not None:
        export_int8(model, tokenizer, onnx_dir, output_dir, overwrite)


def prune_and_compact(model_args, data_args, recipe, pruning, training_args):
    """Train with the pruner, bake the masks, compact; returns the model and its figures."""
    tokenizer = load_tokenizer(model_args.model_name_or_path)
    dataset = load_clinc(data_args.data_file, data_args.dataset_config,
                         max_samples=data_args.max_samples)
    with training_args.main_process_first(desc="tokenize"):
        encoded = tokenize(dataset, tokenizer, data_args.max_length)
    model = load_classifier(model_args.model_name_or_path)
    params_before = sum(p.numel() for p in model.parameters())
    if recipe.teacher_model_name_or_path:
        # The teacher's logits are computed once (and cached), not at every step; the main
        # process computes them, the others read its cache.
        teacher = load_classifier(recipe.teacher_model_name_or_path)
        with training_args.main_process_first(desc="teacher logits"):
            logits = cached_teacher_logits(
                teacher, load_tokenizer(recipe.teacher_model_name_or_path), dataset["train"],
                recipe.cache_dir, data_args.max_length,
                is_main_process=training_args.process_index == 0)
        encoded = with_teacher_logits(encoded, logits)
        del teacher
    pruner = Pruner(model, pruning)
    collator = DataCollatorWithPadding(tokenizer)
    trainer = PruningTrainer(
        model=model, args=training_args, train_dataset=encoded["train"],
        eval_dataset=encoded["validation"], data_collator=collator, processing_class=tokenizer,
        compute_metrics=compute_metrics, pruner=pruner,
    )
    result = trainer.train()
    total_steps = trainer.state.max_steps
    model = trainer.accelerator.unwrap_model(trainer.model)
    pruner.step(total_steps, total_steps)  # the final masks
    pruner.bake()
    masked_stats = layer_stats(model)

    # Compaction must not change the outputs: compare logits on a validation batch.
    probe = collator([{k: encoded["validation"][i][k] for k in ("input_ids", "attention_mask")}
                      for i in range(min(64, len(encoded["validation"])))])
    before = logits_of(model, probe)
    compact(model)
    compaction_diff = float((logits_of(model, probe) - before).abs().max())
    report = sparsity_report(masked_stats, model, params_before)
    metrics = {**result.metrics, "compaction_max_logit_diff": compaction_diff}
    if not recipe.skip_eval:
        metrics.update(evaluate_splits(trainer, encoded))
    log = {"total_steps": total_steps, "history": trainer.state.log_history}
    return model, tokenizer, metrics, report, log


def export_int8(model: torch.nn.Module, tokenizer, onnx_dir: Path, source: Path,
                overwrite: bool) -> None:
    """Export, O2-optimize and int8-quantize the compacted model (slimformer.onnx); the
    optimized FP32 graph is a step in this run's own scratch folder."""
    import tempfile

    from slimformer.onnx import optimize_onnx, quantize_dynamic

    export_pruned_onnx(model, tokenizer, onnx_dir, source=source, overwrite=overwrite)
    int8 = int8_folder(onnx_dir)
    with tempfile.TemporaryDirectory(prefix=".slimformer-steps-", dir=onnx_dir.parent) as tmp:
        optimized = Path(tmp) / "opt"
        optimize_onnx(onnx_dir, optimized, level="O2")
        quantize_dynamic(optimized, int8, overwrite=overwrite)
    print(f"wrote {onnx_dir} and {int8}")


if __name__ == "__main__":
    run_recipe(main)

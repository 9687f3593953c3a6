"""A pruning run: train with the pruner (distilling from a teacher when one is given), bake
the masks, compact into a smaller dense model, save it, and optionally export it to int8 ONNX.

Writes to the output folder: the compacted model (safetensors; `load_pruned`, or variant kind
`pytorch-pruned`), the tokenizer, sparsity.json/.md (heads, neurons and parameters kept per
layer), schedule.png, metrics.json and slimformer.json. With `onnx_dir`, also the ONNX export
there and its O2-optimized int8 version in ONNX_DIR-int8. The teacher's logits come from the
distillation step's cache, computed with the teacher's own tokenizer by the main process.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import DataCollatorWithPadding, TrainingArguments

from slimformer.compression.pruning.args import PruningArguments
from slimformer.compression.pruning.compact import compact, save_pruned
from slimformer.compression.pruning.masks import Pruner
from slimformer.compression.pruning.report import (
    layer_stats,
    sparsity_report,
    write_sparsity_report,
)
from slimformer.compression.pruning.schedule import plot_schedule
from slimformer.compression.pruning.trainer import PruningTrainer, ranks_disagree
from slimformer.data.args import DataArguments
from slimformer.data.clinc import tokenize
from slimformer.data.dataset import label_names, load_data, oos_id_of
from slimformer.data.metrics import metrics_for
from slimformer.errors import fail
from slimformer.files import check_target
from slimformer.models.aliases import resolve_model
from slimformer.models.architectures import check_prunable
from slimformer.models.loading import (
    check_trained_classifier,
    load_classifier,
    load_model_config,
    load_tokenizer,
)
from slimformer.provenance import write_provenance
from slimformer.training.args import DistillationTrainingArguments, ModelArguments
from slimformer.training.distill import (
    cached_teacher_logits,
    check_label_maps,
    with_teacher_logits,
)
from slimformer.training.finetune import evaluate_splits
from slimformer.training.progress import ProgressLines

logger = logging.getLogger(__name__)


@dataclass
class PruneRunArguments:
    teacher_model_name_or_path: str | None = field(default=None, metadata={
        "help": "fine-tuned teacher to distil from while pruning (None: labels only)"})
    onnx_dir: str | None = field(default=None, metadata={
        "help": "also export the compacted model to ONNX here, and int8 to ONNX_DIR-int8"})
    skip_eval: bool = field(default=False, metadata={"help": "skip validation/test metrics"})
    cache_dir: str = field(default="outputs/cache", metadata={"help": "teacher-logit cache"})


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


def prune(model_args: ModelArguments, data_args: DataArguments, recipe: PruneRunArguments,
          pruning: PruningArguments, training_args: DistillationTrainingArguments,
          ) -> dict[str, Any] | None:
    """The whole run; returns the main process's result (folder, metrics, sparsity report),
    None in the other processes of a distributed launch."""
    check_training_args(training_args)
    output_dir = Path(training_args.output_dir)
    onnx_dir = Path(recipe.onnx_dir) if recipe.onnx_dir else None
    overwrite = training_args.overwrite_output_dir
    check_outputs(output_dir, onnx_dir, overwrite)
    if recipe.teacher_model_name_or_path:  # pruning distils from it: a random head teaches nothing
        check_trained_classifier(recipe.teacher_model_name_or_path)
    check_prunable(load_model_config(model_args.model_name_or_path), pruning.prune_attention,
                   pruning.prune_ffn)  # before any training
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
        return None
    source = resolve_model(model_args.model_name_or_path)
    settings = {**asdict(pruning), "teacher": recipe.teacher_model_name_or_path,
                "alpha": training_args.alpha, "temperature": training_args.temperature,
                "soft_loss": training_args.soft_loss, "epochs": training_args.num_train_epochs,
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
    int8 = export_int8(output_dir, onnx_dir, overwrite) if onnx_dir else None
    if int8 is not None and not recipe.skip_eval:
        # The exports carry the FP32 model's fallback rule; int8 moves the logits: refit each.
        from slimformer.compression.variants import fit_fallbacks

        fit_fallbacks({"onnx": onnx_dir, "onnx-int8": int8}, None, data_args,
                      torch.get_num_threads())
    return {"folder": output_dir, "metrics": metrics, "sparsity": report, "onnx_int8": int8}


def prune_and_compact(model_args: ModelArguments, data_args: DataArguments,
                      recipe: PruneRunArguments, pruning: PruningArguments,
                      training_args: DistillationTrainingArguments) -> tuple[Any, ...]:
    """Train with the pruner, bake the masks, compact; returns the model and its figures."""
    tokenizer = load_tokenizer(model_args.model_name_or_path)
    dataset = load_data(data_args)
    labels = label_names(dataset)
    with training_args.main_process_first(desc="tokenize"):
        encoded = tokenize(dataset, tokenizer, data_args.max_length)
    model = load_classifier(model_args.model_name_or_path, labels=labels)
    params_before = sum(p.numel() for p in model.parameters())
    if recipe.teacher_model_name_or_path:
        # The teacher's logits are computed once (and cached), not at every step; the main
        # process computes them, the others read its cache.
        teacher = load_classifier(recipe.teacher_model_name_or_path, labels=labels)
        check_label_maps(teacher, model)
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
        compute_metrics=metrics_for(oos_id_of(labels, data_args.oos_label)), pruner=pruner,
        callbacks=[ProgressLines()] if training_args.disable_tqdm else None,
    )
    result = trainer.train()
    total_steps = trainer.state.max_steps
    model = trainer.accelerator.unwrap_model(trainer.model)
    gap = ranks_disagree(pruner)
    if gap > 1e-5:
        fail(f"the ranks learned different mask scores (largest gap {gap:.2g}); their pruned "
             "models would differ")
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
    metrics = {**result.metrics, "compaction_max_logit_diff": compaction_diff,
               "world_size": training_args.world_size, "global_step": result.global_step}
    if not recipe.skip_eval:  # also fits the out-of-scope fallback of the pruned model
        metrics.update(evaluate_splits(trainer, encoded, data_args))
    else:  # a rule copied from the unpruned model would not fit the pruned one's logits
        model.config.oos_fallback = None
    log = {"total_steps": total_steps, "history": trainer.state.log_history}
    return model, tokenizer, metrics, report, log


def export_int8(pruned: Path, onnx_dir: Path, overwrite: bool) -> Path:
    """The saved pruned model through the same `onnx > opt > int8` chain as any other model
    (the export pass reads its per-layer widths): the export into `onnx_dir`, its fused int8
    beside it, the fused FP32 graph a step in this run's own scratch folder."""
    import tempfile

    from slimformer.compression.args import CompressArguments
    from slimformer.compression.chains import chain_of, run_chains
    from slimformer.compression.passes.base import PassContext

    export, int8 = (chain_of(key, CompressArguments()) for key in ("onnx", "onnx > opt > int8"))
    final = {export.key: onnx_dir, int8.key: int8_folder(onnx_dir)}
    with tempfile.TemporaryDirectory(prefix=".slimformer-steps-", dir=onnx_dir.parent) as tmp:
        run_chains(pruned, [export, int8], final, Path(tmp), PassContext(overwrite=overwrite))
    logger.info("wrote %s and %s", onnx_dir, final[int8.key])
    return final[int8.key]

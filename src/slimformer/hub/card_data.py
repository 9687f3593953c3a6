"""A card's metadata: tags, the model-index with the measured results, and the typed card
data (its YAML header holds the metadata only; the template also sees the body's values)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from huggingface_hub import EvalResult, ModelCardData
from huggingface_hub.utils import yaml_dump

from slimformer.data.clinc import HUB_DATASET
from slimformer.evaluation.report_data import BenchmarkReport
from slimformer.hub.card_body import CardBody
from slimformer.hub.report_rows import (
    dataset_ids,
    is_clinc,
    pass_steps,
    quantizing,
    step_names,
)
from slimformer.serving.kinds import kind_named


def variant_tags(kind: str, steps: list[str], clinc: bool = True) -> list[str]:
    tags = (["text-classification", "intent-classification", "clinc150", "slimformer"] if clinc
            else ["text-classification", "slimformer"])
    if "distill" in steps:
        tags.append("distillation")
    if kind == "pytorch-int8" or quantizing(steps):
        tags += ["quantization", "int8"]
    if kind.startswith("onnx") or any(s.startswith("onnx") for s in steps):
        tags += ["onnx", "onnxruntime"]
    if "prune" in steps:
        tags.append("pruning")
    for step in steps:  # what each pass declares beyond these
        found = pass_steps().get(step)
        tags += [t for t in (found.tags if found else ()) if t not in tags]
    return tags


def eval_results(row: dict[str, Any], report: BenchmarkReport,
                 dataset_config: str) -> list[EvalResult]:
    """The model-index: accuracy, OOS figures, latency and size on the clinc_oos test split."""
    data = report.data
    if is_clinc(report):
        dataset = {"dataset_type": HUB_DATASET, "dataset_name": f"CLINC150 ({dataset_config})",
                   "dataset_config": dataset_config}
    else:
        dataset = {"dataset_type": data.get("dataset") or "local",
                   "dataset_name": data.get("name", "local data"),
                   **({"dataset_config": dataset_config} if dataset_config else {})}
    task = "Intent classification" if is_clinc(report) else "Text classification"
    common = {"task_type": "text-classification", "task_name": task, **dataset,
              "dataset_split": "test"}
    env = report.environment
    where = (f"batch 1, {env.get('threads', '?')} thread(s), "
             f"{env.get('cpu', {}).get('model', 'unknown CPU')}")
    metrics = [
        ("accuracy", row["accuracy"], "Accuracy", None),
        ("accuracy", row.get("in_scope_accuracy"), "In-scope accuracy", "in-scope queries"),
        ("recall", row.get("oos_recall"), "Out-of-scope recall", "label oos"),
        ("latency", row["latency_ms"]["p50"], "Latency p50 (ms)", where),
        ("model_size", row["size_mb"], "Size (MB)", "weights / ONNX files, decimal MB"),
    ]
    return [EvalResult(**common, metric_type=kind, metric_value=round(float(value), 4),
                       metric_name=name, metric_config=config)
            for kind, value, name, config in metrics
            if value is not None and value == value]  # NaN: data without out-of-scope rows


class VariantCardData(ModelCardData):
    """A variant card's one data object: the Hub metadata (the YAML header, with the
    model-index) as ModelCardData holds it, and the typed body the template fills in."""

    def __init__(self, body: CardBody, **metadata: Any):
        super().__init__(**metadata)
        self.body = body

    def metadata(self) -> dict[str, Any]:
        data = super().to_dict()
        data.pop("body", None)
        return data

    def to_dict(self) -> dict[str, Any]:
        """What the template sees: the metadata and every body value."""
        return {**self.metadata(), **asdict(self.body)}

    def to_yaml(self, line_break: str | None = None,
                original_order: list[str] | None = None) -> str:
        """The card's YAML header: metadata only, never the body's values."""
        return yaml_dump(self.metadata(), sort_keys=False, line_break=line_break).strip()


def card_data(row: dict[str, Any], report: BenchmarkReport, repo_id: str,
              provenance: dict[str, Any], base_model: str | None, license: str,
              dataset_config: str, body: CardBody) -> VariantCardData:
    kind = row.get("kind", "pytorch")
    steps = step_names(provenance)
    extra = {}
    if base_model and (kind == "pytorch-int8" or quantizing(steps)):
        extra["base_model_relation"] = "quantized"
    return VariantCardData(
        body=body,
        base_model=base_model,
        datasets=dataset_ids(report),
        language=["en"] if is_clinc(report) else None,
        license=license,
        library_name=kind_named(body.usage_kind).library,
        pipeline_tag="text-classification",
        tags=variant_tags(kind, steps, is_clinc(report)),
        metrics=["accuracy", "recall"],
        model_name=repo_id.split("/")[-1],
        eval_results=eval_results(row, report, dataset_config),
        **extra,
    )

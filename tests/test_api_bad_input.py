"""The Python API is as strict as the CLI: every bad input to a public function raises
SlimformerError (a ValueError) on one line naming the argument or the file, and changes no
file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from slimformer.errors import SlimformerError

from .test_bad_input import tree_hash


@pytest.fixture(scope="module")
def place(tmp_path_factory, tokenizer, clinc_dir):
    """A good ONNX folder, damaged copies of it, and data files a careless user has."""
    from slimformer.compression.onnx.export import export_onnx

    from .conftest import tiny_bert

    root = tmp_path_factory.mktemp("api-bad-input")
    tiny_bert().save_pretrained(root / "torch")
    tokenizer.save_pretrained(root / "torch")
    export_onnx(root / "torch", root / "onnx")

    def damaged(name: str, change) -> None:
        shutil.copytree(root / "onnx", root / name)
        change(root / name)

    def config_edit(edit):
        def change(folder):
            path = folder / "config.json"
            path.write_text(json.dumps(edit(json.loads(path.read_text()))))
        return change

    def gaps(config):
        config["id2label"].pop("7")
        return config

    damaged("config-list", lambda f: (f / "config.json").write_text("[1, 2]"))
    damaged("config-bad-json", lambda f: (f / "config.json").write_text("{bad"))
    damaged("id2label-gaps", config_edit(gaps))
    damaged("fallback-text", config_edit(lambda c: {**c, "oos_fallback": {
        "threshold": "high", "oos_id": 42}}))
    damaged("fallback-list", config_edit(lambda c: {**c, "oos_fallback": [1, 2]}))
    damaged("fallback-temperature", config_edit(lambda c: {**c, "oos_fallback": {
        "threshold": 1.0, "oos_id": 42, "temperature": -1.0}}))
    damaged("max-length-text", lambda f: (f / "tokenizer_config.json").write_text(json.dumps(
        {**json.loads((f / "tokenizer_config.json").read_text()), "model_max_length": "big"})))
    damaged("tokenizer-garbage", lambda f: (f / "tokenizer.json").write_text("not a tokenizer"))
    damaged("no-tokenizer", lambda f: (f / "tokenizer.json").unlink())
    damaged("onnx-truncated", lambda f: (f / "model.onnx").write_bytes(
        (f / "model.onnx").read_bytes()[:2000]))
    raw = json.loads((clinc_dir / "data_oos_plus.json").read_text())
    (root / "empty-splits.json").write_text(json.dumps({k: [] for k in raw}))
    (root / "list.json").write_text("[1, 2, 3]")
    (root / "latin1.json").write_bytes('{"train": [["caf\xe9", "oos"]]}'.encode("latin-1"))
    (root / "bad-row.json").write_text(json.dumps({**raw, "train": [["only text"]]}))
    (root / "bad-intent.json").write_text(json.dumps({**raw, "val": [["hi", "no_such"]]}))
    (root / "a-file.txt").write_text("not a folder")
    (root / "empty-mpt").mkdir()  # transformers would guess model type 'mpt' from the name
    (root / "data.csv").write_text("text,label\n" + "".join(
        f"query {i},{'ab'[i % 2]}\n" for i in range(40)))
    return root


def variant(place, name="onnx"):
    from slimformer.serving.lean import LeanOnnxVariant

    return LeanOnnxVariant.load(place / name, "v", threads=1)


def load_variant(*args, **kwargs):
    from slimformer.serving.registry import load_variant as load

    return load(*args, **kwargs)


def load_lean(place, name, *args, **kwargs):
    from slimformer.serving.lean import LeanOnnxVariant

    return LeanOnnxVariant.load(place / name if isinstance(name, str) else name, "v", *args,
                                **kwargs)


def load_clinc(*args, **kwargs):
    from slimformer.data.clinc import load_clinc as load

    return load(*args, **kwargs)


def fit_rule(logits, labels, **kwargs):
    from slimformer.serving.fallback import fit_rule as fit

    return fit(np.asarray(logits, dtype=float), np.asarray(labels), 2, **kwargs)


def augment(**kwargs):
    from slimformer.data.augment import AugmentSettings

    return AugmentSettings(**{"per_query": 1, **kwargs})


def distill_args(**kwargs):
    from slimformer.training.args import DistillArguments

    return DistillArguments(**kwargs)


def training_args(tmp, **kwargs):
    from slimformer.training.args import DistillationTrainingArguments

    return DistillationTrainingArguments(output_dir=str(tmp / "never"), report_to="none",
                                         **kwargs)


def distill(p, c, teacher, **kwargs):
    from slimformer.data.args import DataArguments
    from slimformer.training.distill_run import distill as run

    return run(distill_args(teacher_model=str(teacher), student_layers=[0], **kwargs),
               DataArguments(data_file=str(c / CLINC), max_samples=8),
               training_args(p, use_cpu=True))


def finetune(p, c, model):
    from slimformer.data.args import DataArguments
    from slimformer.training.finetune import finetune as run

    return run(str(model), DataArguments(data_file=str(c / CLINC), max_samples=8),
               training_args(p, use_cpu=True))


def load_data(**kwargs):
    from slimformer.data.args import DataArguments
    from slimformer.data.dataset import load_data as load

    return load(DataArguments(**kwargs))


def serve_settings(**kwargs):
    from slimformer.serving.serve_settings import ServeSettings

    return ServeSettings(**kwargs)


def create_app(folder, **kwargs):
    from slimformer.serving.http import create_app as create

    return create(folder, **kwargs)


CLINC = "data_oos_plus.json"
LOGITS = [[3.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0]]
# (id, call(place, clinc_dir), what the one-line message must say)
CASES = [
    ("load_variant-None", lambda p, c: load_variant(None), r"load_variant\(\) needs a folder"),
    ("load_variant-int", lambda p, c: load_variant(123), r"load_variant\(\) needs a folder"),
    ("load_variant-empty", lambda p, c: load_variant(""), r"load_variant\(\) needs a folder"),
    ("load_variant-Path-absent", lambda p, c: load_variant(p / "absent"),
     r"model folder not found: .*absent"),
    ("load_variant-spec-absent", lambda p, c: load_variant(f"x={p}/absent"), "absent"),
    ("load_variant-file", lambda p, c: load_variant(f"x={p}/a-file.txt"), "a-file.txt"),
    ("load_variant-kind", lambda p, c: load_variant(f"x={p}/onnx@tflite"),
     "unknown variant kind 'tflite'"),
    ("load_variant-threads-0", lambda p, c: load_variant(p / "onnx", threads=0), "threads"),
    ("load_variant-threads--1", lambda p, c: load_variant(p / "onnx", threads=-1), "threads"),
    ("load_variant-threads-str", lambda p, c: load_variant(p / "onnx", threads="2"),
     "threads must be a whole number"),
    ("load_variant-threads-float", lambda p, c: load_variant(p / "onnx", threads=2.5),
     "threads must be a whole number"),
    ("load_variant-threads-bool", lambda p, c: load_variant(p / "onnx", threads=True),
     "threads must be a whole number"),
    ("load_variant-threads-huge", lambda p, c: load_variant(p / "onnx", threads=10**11),
     "threads must be at most"),
    ("lean-threads-0", lambda p, c: load_lean(p, "onnx", 0), "threads"),
    ("lean-max_length-0", lambda p, c: load_lean(p, "onnx", 1, max_length=0), "max_length"),
    ("lean-max_length-str", lambda p, c: load_lean(p, "onnx", 1, max_length="128"),
     "max_length must be a whole number"),
    ("lean-max_length-nan", lambda p, c: load_lean(p, "onnx", 1, max_length=float("nan")),
     "max_length must be a whole number"),
    ("lean-folder-None", lambda p, c: load_lean(p, None, 1), "needs a folder"),
    ("lean-folder-absent", lambda p, c: load_lean(p, "absent", 1), "absent"),
    ("lean-config-list", lambda p, c: load_lean(p, "config-list", 1),
     "config.json must hold a JSON object"),
    ("lean-config-bad-json", lambda p, c: load_lean(p, "config-bad-json", 1),
     "config.json is not valid JSON"),
    ("lean-id2label-gaps", lambda p, c: load_lean(p, "id2label-gaps", 1),
     "config.json: id2label has no label for id 7"),
    ("lean-max-length-text", lambda p, c: load_lean(p, "max-length-text", 1),
     "tokenizer_config.json: model_max_length must be a positive number"),
    ("lean-tokenizer-garbage", lambda p, c: load_lean(p, "tokenizer-garbage", 1),
     "tokenizer.json is not a readable tokenizer"),
    ("lean-no-tokenizer", lambda p, c: load_lean(p, "no-tokenizer", 1), "no tokenizer.json"),
    ("lean-onnx-truncated", lambda p, c: load_lean(p, "onnx-truncated", 1),
     "model.onnx is not a loadable ONNX model"),
    ("lean-fallback-text", lambda p, c: load_lean(p, "fallback-text", 1).fallback,
     "malformed oos_fallback in config.json"),
    ("lean-fallback-list", lambda p, c: load_lean(p, "fallback-list", 1).fallback,
     "malformed oos_fallback in config.json"),
    ("lean-fallback-temperature", lambda p, c: load_lean(p, "fallback-temperature", 1).fallback,
     "malformed oos_fallback in config.json"),
    ("variant-id2label-gaps", lambda p, c: load_variant(p / "id2label-gaps").labels,
     "id2label"),
    ("predict-None", lambda p, c: variant(p).predict(None), r"predict\(\) needs a list"),
    ("predict-int", lambda p, c: variant(p).predict(5), r"predict\(\) needs a list"),
    ("predict-empty", lambda p, c: variant(p).predict([]), "at least one text"),
    ("predict-non-text", lambda p, c: variant(p).predict(["ok", 1]), "text 1 is int"),
    ("predict-surrogate", lambda p, c: variant(p).predict(["ok", "bad \ud800"]),
     "text 1 is not valid Unicode"),
    ("predict-top_k-negative", lambda p, c: variant(p).predict(["a"], True, top_k=-1), "top_k"),
    ("predict-top_k-str", lambda p, c: variant(p).predict(["a"], True, top_k="3"), "top_k"),
    ("predict-top_k-bool", lambda p, c: variant(p).predict(["a"], True, top_k=True), "top_k"),
    ("logits-surrogate", lambda p, c: variant(p).predict_logits(["\udfff"]), "not valid Unicode"),
    ("load_clinc-max_samples--1", lambda p, c: load_clinc(c / CLINC, max_samples=-1),
     "max_samples"),
    ("load_clinc-max_samples-0", lambda p, c: load_clinc(c / CLINC, max_samples=0),
     "max_samples"),
    ("load_clinc-max_samples-str", lambda p, c: load_clinc(c / CLINC, max_samples="10"),
     "max_samples must be a whole number"),
    ("load_clinc-max_samples-float", lambda p, c: load_clinc(c / CLINC, max_samples=1.5),
     "max_samples must be a whole number"),
    ("load_clinc-config", lambda p, c: load_clinc(c / CLINC, "huge"), "config 'huge'"),
    ("load_clinc-absent", lambda p, c: load_clinc(p / "absent.json"), "absent.json"),
    ("load_clinc-empty-splits", lambda p, c: load_clinc(p / "empty-splits.json"),
     "split 'train' has no rows"),
    ("load_clinc-list", lambda p, c: load_clinc(p / "list.json"), "list.json must hold"),
    ("load_clinc-latin1", lambda p, c: load_clinc(p / "latin1.json"), "latin1.json is not"),
    ("load_clinc-int", lambda p, c: load_clinc(123), "data_file must be a path"),
    ("load_clinc-bad-row", lambda p, c: load_clinc(p / "bad-row.json"),
     "bad-row.json: row 0 of split 'train'"),
    ("load_clinc-bad-intent", lambda p, c: load_clinc(p / "bad-intent.json"), "no_such"),
    ("fit_rule-score", lambda p, c: fit_rule(LOGITS, [0, 1], score="entropy"),
     "fallback score 'entropy'"),
    ("fit_rule-drop", lambda p, c: fit_rule(LOGITS, [0, 1], max_in_scope_drop=200),
     "max_in_scope_drop"),
    ("fit_rule-all-oos", lambda p, c: fit_rule(LOGITS, [2, 2]), "no in-scope rows"),
    ("augment-negative", lambda p, c: augment(per_query=-1), "--augment"),
    ("augment-float", lambda p, c: augment(per_query=1.5), "--augment"),
    ("augment-method", lambda p, c: augment(methods=("synonyms",)), "synonyms"),
    ("augment-rate-0", lambda p, c: augment(rate=0.0), "augmentation rate"),
    ("augment-rate-nan", lambda p, c: augment(rate=float("nan")), "augmentation rate"),
    ("augment-no-methods", lambda p, c: augment(methods=()), "augment_methods"),
    ("distill-augment", lambda p, c: distill_args(augment=-3), "--augment"),
    ("distill-augment-methods", lambda p, c: distill_args(augment=1, augment_methods=["x"]),
     "augmentation method"),
    ("training-temperature-nan", lambda p, c: training_args(p, temperature=float("nan")),
     "temperature"),
    ("training-temperature-inf", lambda p, c: training_args(p, temperature=float("inf")),
     "temperature"),
    ("training-alpha-nan", lambda p, c: training_args(p, alpha=float("nan")), "alpha"),
    ("serve-workers", lambda p, c: serve_settings(workers=0), "--workers"),
    ("serve-wait-nan", lambda p, c: serve_settings(max_wait_ms=float("nan")), "--max_wait_ms"),
    ("serve-port", lambda p, c: serve_settings(port=70000), "--port"),
    ("serve-host", lambda p, c: serve_settings(host=" "), "--host"),
    ("serve-queue-str", lambda p, c: serve_settings(max_queue="many"), "--max_queue"),
    ("create_app-absent", lambda p, c: create_app(p / "absent"), "absent"),
    # issue 23, classes 5, 6 and 8
    ("distill-empty-teacher", lambda p, c: distill(p, c, p / "empty-mpt"),
     "empty-mpt is not a model folder: it is empty"),
    ("distill-onnx-teacher", lambda p, c: distill(p, c, p / "onnx"), "onnx"),
    ("finetune-empty-model", lambda p, c: finetune(p, c, p / "empty-mpt"),
     "empty-mpt is not a model folder"),
    ("load_data-oos-label", lambda p, c: load_data(dataset=str(p / "data.csv"),
                                                   oos_label="nope"),
     "--oos_label 'nope' is not a label of .*data.csv"),
    ("load_variant-empty-folder", lambda p, c: load_variant(p / "empty-mpt"), "empty-mpt"),
]


def test_the_table_is_large():
    assert len(CASES) >= 60
    assert len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("name", "call", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_to_the_python_api(place, clinc_dir, name, call, message):
    before = tree_hash(place)
    with pytest.raises(SlimformerError) as raised:
        call(place, clinc_dir)
    assert isinstance(raised.value, ValueError)
    text = str(raised.value)
    assert "\n" not in text and len(text) < 400, text
    assert __import__("re").search(message, text), text
    assert tree_hash(place) == before, "a file changed"


def test_a_path_object_works_wherever_a_path_does(place, clinc_dir):
    assert load_variant(Path(place / "onnx")).predict(["hi"])
    assert load_variant(str(place / "onnx")).predict(["hi"])
    assert len(load_clinc(Path(clinc_dir) / CLINC, max_samples=5)["test"]) == 5
    odd = place / "team@v2=final"  # an existing folder is a folder, not NAME=FOLDER@KIND
    if not odd.exists():
        shutil.copytree(place / "onnx", odd)
    # (optimum reads '@' in a path as a revision: the lean predictor runs such a folder)
    assert load_variant(str(odd), kind="onnx-lean").name == odd.name

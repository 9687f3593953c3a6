"""Bad input, the way a careless user gives it: every recipe answers with one `error:` line
(exit code 2, no traceback) before doing any work, and no existing folder changes."""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from pathlib import Path

import pytest

from slimformer.errors import run_recipe

from .conftest import REPO, tiny_bert

RECIPES = REPO / "recipes"


def recipe(name: str):
    """The step behind `recipes/NAME.py` (the recipe only hands its arguments to it)."""
    return importlib.import_module(f"slimformer.cli.commands.{name}")


def tree_hash(root: Path) -> dict[str, str]:
    """Every file under root (hidden ones too) with its content hash."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tokenizer, clinc_dir):
    """Folders a user has: a good model, broken ones, a file where a folder should be."""
    root = tmp_path_factory.mktemp("careless")
    good = root / "good-model"
    tiny_bert().save_pretrained(good)
    tokenizer.save_pretrained(good)
    truncated = root / "truncated"
    tiny_bert().save_pretrained(truncated)
    tokenizer.save_pretrained(truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    no_tokenizer = root / "no-tokenizer"
    tiny_bert().save_pretrained(no_tokenizer)
    no_labels = root / "no-id2label"  # a 151-way head whose config lost its labels
    tiny_bert().save_pretrained(no_labels)
    tokenizer.save_pretrained(no_labels)
    config = json.loads((no_labels / "config.json").read_text())
    for key in ("id2label", "label2id"):
        config.pop(key)
    (no_labels / "config.json").write_text(json.dumps(config))
    (root / "a-file").write_text("not a folder")
    (root / "empty-mpt").mkdir()  # an empty folder, named so transformers would guess 'mpt'
    base = root / "base-model"  # a checkpoint with no classification head
    tiny_bert().bert.save_pretrained(base)
    tokenizer.save_pretrained(base)
    (root / "list.yaml").write_text("teacher_model: [a, b]\nstudent_layers: [0]\n")
    (root / "data.csv").write_text("text,label\n" + "".join(
        f"query {i},{'ab'[i % 2]}\n" for i in range(40)))
    (root / "bad.yaml").write_text("threads: [unclosed\n")
    (root / "typo.yaml").write_text("thraeds: 2\n")
    (root / "words.yaml").write_text("threads: two\n")
    (root / "twice.yaml").write_text("threads: 1\nrounds: 3\nthreads: 2\n")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefg", "bcdefgh"))
    (root / "bomb.yaml").write_text(bomb)
    (root / "latin1.yaml").write_bytes("threads: 2 # caf\xe9\n".encode("latin-1"))
    mine = root / "my-results"  # a user's folder, with a report of their own
    mine.mkdir()
    (mine / "report.md").write_text("my notes")
    (mine / "best_params.yaml").write_text("alpha: 0.3\n")
    compressed = root / "compressed" / "good-model-onnx-int8"  # someone else's folder
    compressed.mkdir(parents=True)
    (compressed / "notes.txt").write_text("mine")
    report = root / "report.json"
    report.write_text(json.dumps({"variants": [{"name": "good", "path": str(good),
                                                "kind": "pytorch"}], "environment": {}}))
    return {"root": root, "good": good, "truncated": truncated, "no_tokenizer": no_tokenizer,
            "no_labels": no_labels, "file": root / "a-file", "data": str(clinc_dir),
            "report": report}


DATA = ["--data_file", "{data}", "--max_samples", "400"]  # enough distinct timing queries
BENCH = ["--variants", "x={good}", "--output_dir", "{root}/bench", *DATA]
TRAIN = ["--data_file", "{data}", "--max_samples", "8", "--report_to", "none",
         "--use_cpu", "true"]
DISTILL = ["--teacher_model", "{good}", "--student_layers", "0", "--output_dir",
           "{root}/student", "--cache_dir", "{root}/cache", *TRAIN]
PRUNE = ["--model_name_or_path", "{good}", "--output_dir", "{root}/pruned",
         "--save_strategy", "no", *TRAIN]
COMPRESS = ["--model", "{good}", "--output_dir", "{root}/compressed", "--data_file", "{data}"]
PUSH = ["--report", "{report}", "--namespace", "alice", "--name", "m", "--dry_run", "true"]
FINETUNE = ["--model_name_or_path", "{good}", "--output_dir", "{root}/ft", *TRAIN]
OPTIMIZE = ["--base_model", "{good}", "--output_dir", "{root}/opt", *DATA]
TRIM = ["--model", "{good}", "--output_dir", "{root}/trimmed", "--data_file", "{data}"]

# (recipe, arguments, a regular expression the error line must match)
CASES = [
    # numbers out of range or of the wrong type
    ("benchmark", [*BENCH, "--threads", "0"], "--threads must be at least 1"),
    ("benchmark", [*BENCH, "--latency_queries", "0"], "--latency_queries"),
    ("benchmark", [*BENCH, "--batch_size", "0"], "--batch_size"),
    ("benchmark", [*BENCH, "--throughput_batches", "0"], "--throughput_batches"),
    ("benchmark", [*BENCH, "--warmup_queries", "-1"], "--warmup_queries"),
    ("benchmark", [*BENCH, "--rounds", "1"], "--rounds must be at least 3"),
    ("benchmark", [*BENCH, "--max_samples", "-1"], "--max_samples"),
    ("benchmark", [*BENCH, "--max_samples", "0"], "--max_samples"),
    ("benchmark", [*BENCH, "--max_length", "0"], "--max_length"),
    ("benchmark", [*BENCH, "--threads", "two"], "invalid int value"),
    ("benchmark", [*BENCH, "--latency_queries", "100000"], "distinct queries"),
    ("compress", [*COMPRESS, "--calibration_rows", "0"], "--calibration_rows"),
    ("compress", [*COMPRESS, "--speedup_queries", "0"], "--speedup_queries"),
    ("compress", [*COMPRESS, "--min_speedup", "0"], "--min_speedup"),
    ("finetune", [*FINETUNE, "--per_device_eval_batch_size", "0"],
     "--per_device_eval_batch_size"),
    ("finetune", [*FINETUNE, "--num_train_epochs", "0"], "--num_train_epochs"),
    ("finetune", [*FINETUNE, "--learning_rate", "-1"], "--learning_rate"),
    ("distill", [*DISTILL, "--alpha", "2"], "alpha"),
    ("distill", [*DISTILL, "--temperature", "0"], "temperature"),
    ("search", [*DISTILL, "--n_trials", "0", "--search_dir", "{root}/s"], "--n_trials"),
    ("prune", [*PRUNE, "--final_sparsity", "1.5"], "final_sparsity"),
    ("prune", [*PRUNE, "--attention_block", "3y3"], "attention_block"),
    ("prune", [*PRUNE[:4], "--save_strategy", "steps", *TRAIN], "save_strategy"),
    ("distill_speed", [*DISTILL, "--steps", "0"], "--steps"),
    # paths: missing, a file where a folder goes, someone else's folder
    ("benchmark", ["--variants", "x={good}", "--output_dir", "{file}", *DATA], "is a file"),
    ("benchmark", ["--variants", "x={root}/absent", *DATA], "not found"),
    ("benchmark", ["--variants", "x={good}", "--data_file", "{root}/absent.json"],
     "no such file"),
    ("benchmark", [*DATA], "no variants"),
    ("benchmark", [*BENCH, "--baseline", "nope"], "baseline 'nope'"),
    ("benchmark", ["--variants", "x={good}", "x={good}", *DATA], "unique"),
    ("benchmark", ["--variants", "x={good}@tflite", *DATA], "unknown variant kind"),
    ("compress", ["--output_dir", "{root}/c2", "--data_file", "{data}"], "no model given"),
    ("compress", [*COMPRESS[2:], "--model", "{root}/absent"], "absent"),
    ("compress", [*COMPRESS, "--variants", "bogus"], "unknown variant"),
    ("compress", [*COMPRESS, "--variants", "onnx-int8"], "already holds files"),
    ("compress", [*COMPRESS[:2], "--output_dir", "{file}", *COMPRESS[4:]], "is a file"),
    ("compress", [*COMPRESS[:2], "--output_dir", "{root}/c3", *COMPRESS[4:], "--preset",
                  "avx9000"], "preset"),
    ("compress", [*COMPRESS[:2], "--output_dir", "{root}/c3", *COMPRESS[4:],
                  "--optimization_level", "O7"], "optimization level"),
    ("finetune", [*FINETUNE[:2], "--output_dir", "{file}", *TRAIN], "is a file"),
    ("finetune", [*FINETUNE[:2], "--output_dir", "{good}", *TRAIN], "already holds"),
    ("finetune", ["--model_name_or_path", "{root}/absent", "--output_dir", "{root}/ft2",
                  *TRAIN], "absent"),
    ("prune", [*PRUNE[:2], "--output_dir", "{good}", *PRUNE[4:]], "already holds"),
    ("distill", [*DISTILL[:4], "--output_dir", "{good}", *DISTILL[6:]], "already holds"),
    ("push", [*PUSH, "--dry_run_dir", "{good}"], "already holds"),
    ("push", ["--report", "{root}/absent.json", *PUSH[2:]], "no such file"),
    ("push", [*PUSH[:2], *PUSH[4:]], "no namespace"),
    ("push", [*PUSH[:2], "--namespace", "bad name!", *PUSH[4:]], "namespace"),
    # unreadable model files
    ("benchmark", ["--variants", "x={truncated}", *DATA], "model.safetensors"),
    ("benchmark", ["--variants", "x={no_tokenizer}", *DATA], "tokenizer"),
    ("benchmark", ["--variants", "x={no_labels}", *DATA], "id2label"),
    ("compress", [*COMPRESS[2:], "--model", "{truncated}"], "model.safetensors"),
    ("distill", ["--teacher_model", "{no_tokenizer}", *DISTILL[2:]], "tokenizer"),
    ("optimize", [*OPTIMIZE, "--profile", "huge"], "unknown profile 'huge'"),
    ("optimize", [*OPTIMIZE, "--students", "0 two"], "a student is a list of teacher layers"),
    ("optimize", [*OPTIMIZE, "--max_accuracy_drop", "-1"], "--max_accuracy_drop"),
    ("optimize", [*OPTIMIZE, "--budget_confidence", "1"], "--budget_confidence"),
    ("optimize", [*OPTIMIZE, "--budget_confidence", "0.3"], "--budget_confidence"),
    ("optimize", [*OPTIMIZE, "--variants", "onnx-int9"], "unknown variant"),
    ("optimize", [*OPTIMIZE[:2], "--output_dir", "{good}", *DATA], "already holds"),
    ("optimize", [*OPTIMIZE, "--rounds", "2"], "--rounds must be at least 3"),
    ("optimize", [*OPTIMIZE, "--prune_levels", "1.5"], "a pruning level"),
    ("optimize", [*OPTIMIZE, "--trim_characters", "greek"], "trim_characters"),
    # vocabulary trimming
    ("trim_vocab", TRIM[2:], "no model given"),
    ("trim_vocab", [*TRIM, "--keep_characters", "greek"], "keep_characters 'greek'"),
    ("trim_vocab", [*TRIM[:2], "--output_dir", "{good}", *TRIM[4:]], "already holds"),
    ("trim_vocab", ["--model", "{no_tokenizer}", *TRIM[2:]], "tokenizer.json"),
    # other data, the fallback, layer losses, shared studies
    ("benchmark", ["--variants", "x={good}", "--dataset", "{root}/absent.csv"],
     "data file not found"),
    ("benchmark", [*BENCH, "--dataset", "{root}/absent.csv"], "not both"),
    ("benchmark", [*BENCH, "--fallback_score", "entropy"], "--fallback_score"),
    ("benchmark", [*BENCH, "--max_in_scope_drop", "200"], "--max_in_scope_drop"),
    ("distill", [*DISTILL, "--hidden_weight", "-1"], "hidden_weight"),
    ("search", [*DISTILL, "--search_dir", "{root}/s", "--storage",
                "postgresql://alice:s3cret@127.0.0.1:1/optuna"],
     r"cannot open the search storage 'postgresql://alice:\*\*\*@127"),
    # passwords holding '@', ':' and '/', and an empty user name (issue 23, class 2)
    ("search", [*DISTILL, "--search_dir", "{root}/s", "--storage",
                "postgresql://alice:p@ss:w/rd@127.0.0.1:1/optuna"],
     r"storage 'postgresql://alice:\*\*\*@127\.0\.0\.1:1/optuna'(?!.*(ss:w|w/rd))"),
    ("search", [*DISTILL, "--search_dir", "{root}/s", "--storage",
                "postgresql://:s3cr@t@127.0.0.1:1/optuna"],
     r"storage 'postgresql://:\*\*\*@127\.0\.0\.1:1/optuna'(?!.*(s3cr|t@127))"),
    # NaN, infinity and out-of-range numbers (issue 23, class 3)
    ("optimize", [*OPTIMIZE, "--max_accuracy_drop", "nan"], "--max_accuracy_drop must be a finite"),
    ("optimize", [*OPTIMIZE, "--max_size_mb", "nan"], "--max_size_mb must be a finite"),
    ("optimize", [*OPTIMIZE, "--max_latency_ms", "inf"], "--max_latency_ms must be a finite"),
    ("optimize", [*OPTIMIZE, "--finetune_epochs", "nan"], "--finetune_epochs must be a finite"),
    ("optimize", [*OPTIMIZE, "--augment", "-2"], "--augment"),
    ("optimize", [*OPTIMIZE, "--augment_methods", "synonyms"], "unknown augmentation"),
    ("optimize", [*OPTIMIZE, "--threads", "99999999999"], "--threads must be at most"),
    ("distill", [*DISTILL, "--temperature", "nan"], "temperature must be .*finite"),
    ("distill", [*DISTILL, "--augment", "3", "--alpha", "1"], "need a teacher"),
    ("finetune", [*FINETUNE, "--head_learning_rate", "nan"], "--head_learning_rate must be"),
    # the service and its load test: refused before anything starts or is written
    ("serve", [], "give a variant folder or --run"),
    ("serve", ["{good}", "--workers", "0"], "--workers must be"),
    ("serve", ["{good}", "--max_wait_ms", "nan"], "--max_wait_ms must be a finite"),
    ("serve", ["{good}", "--port", "99999"], "--port must be"),
    ("serve", ["{good}", "--threads", "two"], "invalid int value"),
    ("serve", ["{root}/absent"], "model folder not found"),
    ("serve", ["--run", "{root}"], "no best.json"),
    ("serve", ["{good}", "--config", "{root}/typo.yaml"], "thraeds"),
    ("loadtest", ["ftp://127.0.0.1:9"], "must start with http"),
    ("loadtest", ["http://127.0.0.1:9", "--duration_s", "nan"], "--duration_s must be"),
    ("loadtest", ["http://127.0.0.1:9", "--concurrency", "0"], "--concurrency"),
    ("loadtest", ["http://127.0.0.1:9", "--queries", "{root}/absent.txt"], "no such file"),
    ("loadtest", ["http://127.0.0.1:9", "--data_file", "{data}"], "no service answers|needs wrk"),
    ("loadtest", ["http://127.0.0.1:9", "--data_file", "{data}", "--output_dir", "{file}"],
     "is a file"),
    # configs
    ("benchmark", ["--config", "{root}/bad.yaml"], "not valid YAML"),
    ("benchmark", ["--config", "{root}/typo.yaml"], "thraeds"),
    ("benchmark", ["--config", "{root}/words.yaml"], "invalid int value"),
    ("benchmark", ["--config", "{root}/absent.yaml"], "not found"),
    ("benchmark", [*BENCH, "--bogus", "1"], "--bogus"),
    ("benchmark", ["--config", "{root}/twice.yaml"], "twice.yaml.*'threads' is given twice"),
    ("benchmark", ["--config", "{root}/bomb.yaml"], "bomb.yaml.*aliases"),
    ("benchmark", ["--config", "{root}/latin1.yaml"], "latin1.yaml is not UTF-8"),
    ("serve", ["{good}", "--config", "{root}/twice.yaml"], "given twice"),
    # messages that name the input (class 5), a model that is not a classifier (class 6),
    # an out-of-scope label the data lacks (class 8)
    ("distill", ["--teacher_model", "{root}/empty-mpt", *DISTILL[2:]],
     "empty-mpt is not a model folder: it is empty"),
    ("optimize", ["--teacher", "{root}/empty-mpt", *OPTIMIZE[2:]], "empty-mpt is not a model"),
    ("distill", ["--config", "{root}/list.yaml", *DISTILL[4:]],
     "list.yaml: teacher_model takes one value, got a list"),
    ("distill", ["--teacher_model", "{root}/base-model", *DISTILL[2:]],
     "base-model is not a trained classifier.*BertModel"),
    ("optimize", ["--teacher", "{root}/base-model", *OPTIMIZE[2:]],
     "base-model is not a trained classifier.*--base_model"),
    ("prune", [*PRUNE, "--teacher_model_name_or_path", "{root}/base-model"],
     "not a trained classifier"),
    ("finetune", [*FINETUNE[:4], "--dataset", "{root}/data.csv", "--oos_label", "nope",
                  *TRAIN[4:]], "--oos_label 'nope' is not a label of .*data.csv.*'a', 'b'"),
    # a folder of the user's own is never written over (issue 23, class 1)
    ("benchmark", ["--variants", "x={good}", "--output_dir", "{root}/my-results", *DATA],
     "my-results already holds files slimformer did not write.*--overwrite true"),
    ("search", [*DISTILL, "--search_dir", "{root}/my-results"],
     "my-results already holds files slimformer did not write"),
]


def case_id(index: int, case) -> str:
    name, argv, _ = case
    return f"{index}-{name}-{'-'.join(a.strip('-') for a in argv if a.startswith('--'))[-50:]}"


@pytest.mark.parametrize("case", CASES, ids=[case_id(i, c) for i, c in enumerate(CASES)])
def test_bad_input_gives_one_error_line_and_changes_nothing(case, workspace, capsys,
                                                            monkeypatch):
    name, argv, expected = case
    monkeypatch.chdir(workspace["root"])
    argv = [a.format(**workspace) for a in argv]
    before = tree_hash(workspace["root"])
    with pytest.raises(SystemExit) as exit_info:
        run_recipe(recipe(name).main, argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert exit_info.value.code == 2, err
    assert len(errors) == 1, err
    assert "Traceback" not in err
    assert re.search(expected, errors[0]), errors[0]
    assert tree_hash(workspace["root"]) == before, "an existing file changed"
    left = [p.name for p in workspace["root"].iterdir()
            if p.name.startswith(".") or p.name.endswith((".tmp", ".work"))]
    assert not left, f"left behind: {left}"


def test_the_table_is_large_and_covers_every_recipe():
    assert len(CASES) >= 40
    assert {name for name, _, _ in CASES} == {p.stem for p in RECIPES.glob("*.py")}

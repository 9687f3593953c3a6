"""Nothing lost: outputs never replace what a run did not write, checkpoints are resumed only
by the run that made them, intermediate steps never touch the user's folders, and predict()
refuses what is not a list of texts."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from slimformer.errors import SlimformerError

from .conftest import REPO, tiny_bert


def tree_hash(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------
# Staged output folders


def test_staged_folder_replaces_only_its_own_step(tmp_path):
    from slimformer.files import staged_folder
    from slimformer.provenance import write_provenance

    target = tmp_path / "variant"
    with staged_folder(target, step="onnx-export") as stage:
        write_provenance(stage, "onnx-export", {})
        (stage / "model.onnx").write_text("first")
    mode = stat.S_IMODE(target.stat().st_mode)
    assert mode == 0o777 & ~current_umask(), oct(mode)  # not mkdtemp's private 0700
    with staged_folder(target, step="onnx-export") as stage:  # its own earlier output
        write_provenance(stage, "onnx-export", {})
        (stage / "model.onnx").write_text("second")
    assert (target / "model.onnx").read_text() == "second"
    with pytest.raises(SlimformerError, match="already holds the output of step 'onnx-export'"):
        with staged_folder(target, step="prune"):
            pass
    with pytest.raises(RuntimeError):  # a failing step leaves the old output and no stage
        with staged_folder(target, step="onnx-export") as stage:
            (stage / "model.onnx").write_text("third")
            raise RuntimeError("crash")
    assert (target / "model.onnx").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["variant"]


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_compress_keeps_intermediate_steps_out_of_the_users_folders(tmp_path, clinc_dir,
                                                                     tiny_bert_folder):
    from slimformer.compression.args import CompressArguments
    from slimformer.compression.variants import make_variants
    from slimformer.data.args import DataArguments

    out = tmp_path / "compressed"
    users = out / f"{tiny_bert_folder.name}-onnx"  # an export the user keeps (no record)
    users.mkdir(parents=True)
    (users / "model.onnx").write_text("the user's own graph")
    before = tree_hash(users)
    args = CompressArguments(model=str(tiny_bert_folder), output_dir=str(out),
                             variants=["onnx-int8"], calibration_rows=16, speedup_queries=10)
    made = make_variants(args, DataArguments(data_file=str(clinc_dir)), threads=1)
    assert list(made) == ["onnx-int8"] and (made["onnx-int8"] / "model.onnx").is_file()
    assert tree_hash(users) == before
    assert sorted(p.name for p in out.iterdir()) == sorted([users.name, made["onnx-int8"].name])


# ---------------------------------------------------------------------------------------------
# Training: whose output folder, which checkpoint


def finetune_args(out: Path, clinc_dir: Path, max_samples: int = 16):
    from transformers import TrainingArguments

    from slimformer.data.args import DataArguments

    data = DataArguments(data_file=str(clinc_dir), max_samples=max_samples, max_length=16)
    training = TrainingArguments(output_dir=str(out), max_steps=2, save_strategy="steps",
                                 save_steps=1, per_device_train_batch_size=8,
                                 report_to="none", use_cpu=True, disable_tqdm=True)
    return data, training


def test_resume_only_from_a_checkpoint_of_the_same_run(tmp_path, clinc_dir, tiny_bert_folder):
    from transformers.trainer_utils import get_last_checkpoint

    from slimformer.provenance import read_provenance
    from slimformer.training.finetune import finetune

    out = tmp_path / "teacher"
    data, training = finetune_args(out, clinc_dir)
    finetune(str(tiny_bert_folder), data, training)
    assert get_last_checkpoint(str(out))  # as a crashed run would leave them
    assert read_provenance(out)["steps"][-1]["settings"]["resumed_from"] is None
    # Other data: the checkpoints are not this run's, so it must not "resume" from them.
    other_data, training = finetune_args(out, clinc_dir, max_samples=24)
    before = tree_hash(out)
    with pytest.raises(SlimformerError, match="holds checkpoints of another run"):
        finetune(str(tiny_bert_folder), other_data, training)
    assert tree_hash(out) == before
    # The same run again resumes, and says so.
    data, training = finetune_args(out, clinc_dir)
    finetune(str(tiny_bert_folder), data, training)
    assert read_provenance(out)["steps"][-1]["settings"]["resumed_from"] == "checkpoint-2"


def test_training_never_writes_into_a_folder_it_did_not_make(tmp_path, clinc_dir,
                                                             tiny_bert_folder):
    from slimformer.training.finetune import finetune

    before = tree_hash(tiny_bert_folder)
    data, training = finetune_args(tiny_bert_folder, clinc_dir)
    with pytest.raises(SlimformerError, match="--overwrite_output_dir"):
        finetune(str(tiny_bert_folder), data, training)
    assert tree_hash(tiny_bert_folder) == before


def test_prune_under_two_process_ddp(tmp_path, clinc_dir, tiny_bert_folder):
    """Both ranks learn the same masks: the scores' gradients are averaged like the weights'
    (without that the run fails: it compares the ranks' scores before compaction)."""
    import json

    out = tmp_path / "pruned"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_port", "29533", str(REPO / "recipes" / "prune.py"),
         "--model_name_or_path", str(tiny_bert_folder),
         "--teacher_model_name_or_path", str(tiny_bert_folder),
         "--cache_dir", str(tmp_path / "cache"),
         "--data_file", str(clinc_dir), "--max_samples", "32", "--max_length", "16",
         "--pruning_method", "topk", "--attention_block", "head", "--final_sparsity", "0.5",
         "--max_steps", "4", "--per_device_train_batch_size", "4", "--save_strategy", "no",
         "--report_to", "none", "--use_cpu", "true", "--disable_tqdm", "true",
         "--output_dir", str(out)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "model.safetensors").is_file() and (out / "sparsity.json").is_file()
    assert json.loads((out / "metrics.json").read_text())["world_size"] == 2
    assert result.stdout.count("compaction_max_logit_diff") == 1  # one process reported
    assert len(list((tmp_path / "cache").glob("teacher-logits-*.npy"))) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "pruned", "tiny-bert"]


# ---------------------------------------------------------------------------------------------
# predict(): what it takes


@pytest.fixture(scope="module")
def predictors(tmp_path_factory, tokenizer):
    from slimformer.compression.onnx.export import export_model_onnx
    from slimformer.serving.lean import LeanOnnxVariant
    from slimformer.serving.ort import OrtVariant
    from slimformer.serving.torch import TransformersVariant

    folder = tmp_path_factory.mktemp("predict") / "onnx"
    export_model_onnx(tiny_bert(), tokenizer, folder)
    return [TransformersVariant(tiny_bert(), tokenizer, "torch"),
            OrtVariant.load(folder, "ort", 1), LeanOnnxVariant.load(folder, "lean", 1)]


@pytest.mark.parametrize("texts,message", [
    (None, "got None"), ([], "empty list"), ([None], "text 0 is NoneType"),
    (["fine", 3], "text 1 is int"), (42, "got int"), ({"a": 1}, "got dict")])
def test_predict_refuses_what_is_not_texts(predictors, texts, message):
    for variant in predictors:
        with pytest.raises(SlimformerError, match=message):
            variant.predict(texts)
        with pytest.raises(SlimformerError, match=message):
            variant.predict_logits(texts)


def test_predict_reads_any_ordered_sequence_of_texts(predictors):
    import datasets
    import numpy as np

    texts = ["what is my balance", "transfer money"]
    column = datasets.Dataset.from_dict({"text": texts})["text"]  # not a list in datasets 4
    for variant in predictors:
        expected = variant.predict(texts)
        assert variant.predict(column) == expected
        assert variant.predict(np.array(texts)) == expected
        for unordered, name in (({"hi"}, "set"), (b"hi", "bytes")):
            with pytest.raises(SlimformerError, match=f"got {name}"):
                variant.predict(unordered)


def test_predict_rules_for_strings_and_blank_texts(predictors):
    for variant in predictors:
        one = variant.predict("what is my balance")
        assert one == variant.predict(["what is my balance"]) and len(one) == 1
        answers = variant.predict(["", "   \t", "what is my balance"])
        assert answers[:2] == ["oos", "oos"]  # no words, no intent: the fallback answer
        assert answers[2] == one[0]


def test_blank_text_without_an_oos_label_is_refused(tokenizer):
    from slimformer.serving.torch import TransformersVariant

    model = tiny_bert(num_labels=3, id2label={0: "a", 1: "b", 2: "c"},
                      label2id={"a": 0, "b": 1, "c": 2})
    with pytest.raises(SlimformerError, match="no 'oos' label"):
        TransformersVariant(model, tokenizer, "abc").predict([" "])


def test_config_scalars_for_lists_and_typed_values(tmp_path):
    from slimformer.cli.config import parse_args
    from slimformer.evaluation.settings import BenchmarkSettings

    recipe_args = pytest.importorskip("slimformer.compression.args").CompressArguments
    config = tmp_path / "c.yaml"
    config.write_text("variants: onnx-int8\nthreads: 3\n")
    args, settings = parse_args((recipe_args, BenchmarkSettings), ["--config", str(config)])
    assert args.variants == ["onnx-int8"]  # one item, not the letters of a string
    assert settings.threads == 3
    assert json.dumps(args.variants)

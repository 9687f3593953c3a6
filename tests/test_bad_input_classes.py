"""Issue 23's classes 6-8 through the Python API (the CLI rows are in test_bad_input.py): a
model that is not a classifier, a full disk, an out-of-scope label the data lacks."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

from slimformer.errors import SlimformerError, run_recipe

from .conftest import tiny_bert
from .test_bad_input import tree_hash


def training(out: Path, **changes):
    from transformers import TrainingArguments

    return TrainingArguments(**{"output_dir": str(out), "max_steps": 2, "save_strategy": "no",
                                "per_device_train_batch_size": 8, "report_to": "none",
                                "use_cpu": True, "disable_tqdm": True, **changes})


def clinc_data(clinc_dir: Path, **changes):
    from slimformer.data.args import DataArguments

    return DataArguments(**{"data_file": str(clinc_dir), "max_samples": 16, "max_length": 16,
                            **changes})


@pytest.fixture(scope="module")
def base_model(tmp_path_factory, tokenizer) -> Path:
    """A checkpoint with no classification head (BertModel), as a user downloads one."""
    folder = tmp_path_factory.mktemp("base") / "base-model"
    tiny_bert().bert.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# ---------------------------------------------------------------------------------------------
# Class 6: a model that is not a classifier


def test_a_teacher_without_a_trained_head_is_refused(tmp_path, base_model, clinc_dir):
    from slimformer.evaluation.settings import BenchmarkSettings
    from slimformer.optimize.args import OptimizeArguments
    from slimformer.optimize.run import optimize
    from slimformer.training.args import DistillArguments, DistillationTrainingArguments
    from slimformer.training.distill_run import distill

    before = tree_hash(base_model.parent)
    args = DistillArguments(teacher_model=str(base_model), student_layers=[0])
    with pytest.raises(SlimformerError, match="base-model is not a trained classifier"):
        distill(args, clinc_data(clinc_dir), DistillationTrainingArguments(
            output_dir=str(tmp_path / "student"), report_to="none", use_cpu=True))
    with pytest.raises(SlimformerError, match="not a trained classifier.*--base_model"):
        optimize(OptimizeArguments(teacher=str(base_model), output_dir=str(tmp_path / "run")),
                 clinc_data(clinc_dir), BenchmarkSettings())
    assert not any(tmp_path.iterdir()) and tree_hash(base_model.parent) == before


def test_a_classifier_whose_head_weights_are_missing_is_refused_as_teacher(tmp_path,
                                                                          tokenizer):
    from safetensors.torch import load_file, save_file

    from slimformer.models.loading import load_classifier_folder

    folder = tmp_path / "headless"
    tiny_bert().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    weights = load_file(folder / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith("classifier.")},
              folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(SlimformerError, match="lacks trained weights for classifier.bias"):
        load_classifier_folder(folder, trained_head=True)
    with pytest.warns(UserWarning, match="newly initialised"):
        load_classifier_folder(folder)


def test_load_variant_of_a_base_model_warns_and_answers(base_model):
    from slimformer.serving.registry import load_variant

    with pytest.warns(UserWarning, match="not a trained classifier.*chance level"):
        variant = load_variant(str(base_model))
    assert len(variant.predict(["what is my balance"])) == 1


# ---------------------------------------------------------------------------------------------
# Class 8: the out-of-scope label


def three_labels(folder: Path) -> Path:
    folder.mkdir()
    rows = "".join(f"query number {i} about {'abc'[i % 3]},{'abc'[i % 3]}\n" for i in range(60))
    (folder / "train.csv").write_text("text,label\n" + rows)
    return folder


def test_an_oos_label_the_data_lacks_is_refused(tmp_path):
    from slimformer.data.args import DataArguments
    from slimformer.data.dataset import load_data

    data = three_labels(tmp_path / "data")
    with pytest.raises(SlimformerError, match=r"--oos_label 'nope' is not a label of .*'a', 'b'"):
        load_data(DataArguments(dataset=str(data), oos_label="nope"))


def test_data_without_an_oos_label_trains_without_a_fallback_and_says_so(tmp_path,
                                                                         tiny_bert_folder):
    from slimformer.data.args import DataArguments
    from slimformer.training.finetune import finetune

    data = DataArguments(dataset=str(three_labels(tmp_path / "data")), max_length=16)
    out = tmp_path / "model"
    finetune(str(tiny_bert_folder), data, training(out))

    def no_nan(value: str):
        raise AssertionError(f"metrics.json holds {value}")

    metrics = json.loads((out / "metrics.json").read_text(), parse_constant=no_nan)
    assert metrics["out_of_scope"].startswith("none: the data has no label 'oos'")
    assert not [k for k in metrics if "oos" in k]
    assert all(math.isfinite(v) for v in metrics.values() if isinstance(v, float))
    assert json.loads((out / "config.json").read_text()).get("oos_fallback") is None


# ---------------------------------------------------------------------------------------------
# Class 7: a full disk


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs: room for the run's record and a tokenizer, not for the weights."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command here: a small tmpfs cannot be made")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"a small tmpfs needs root (or CAP_SYS_ADMIN): {made.stderr.strip()[:80]}")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


@pytest.mark.parametrize("through", ["api", "cli"])
def test_a_full_disk_leaves_no_output_folder(small_disk, tiny_bert_folder, clinc_dir,
                                             through, capsys):
    from slimformer.training.finetune import finetune

    out = small_disk / "teacher"
    if through == "api":
        with pytest.raises(SlimformerError, match="no space left on the disk of .*teacher"):
            finetune(str(tiny_bert_folder), clinc_data(clinc_dir), training(out))
    else:
        from slimformer.cli.commands import finetune as command

        with pytest.raises(SystemExit) as exit_info, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run_recipe(command.main, [
                "--model_name_or_path", str(tiny_bert_folder), "--output_dir", str(out),
                "--data_file", str(clinc_dir), "--max_samples", "16", "--max_length", "16",
                "--max_steps", "2", "--save_strategy", "no", "--report_to", "none",
                "--use_cpu", "true", "--disable_tqdm", "true"])
        errors = [line for line in capsys.readouterr().err.splitlines()
                  if line.startswith("error:")]
        assert exit_info.value.code == 2 and len(errors) == 1
        assert "no space left" in errors[0]
    assert list(small_disk.iterdir()) == [], "a half-written or staging folder was left"

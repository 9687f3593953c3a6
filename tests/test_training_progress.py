"""Fine-tuning's own learning rate for a new head, and progress lines for runs without a bar."""

import logging
from pathlib import Path

import pytest

from slimformer.data.args import DataArguments
from slimformer.training.args import FinetuneTrainingArguments


def finetune_args(tmp_path, **changes):
    return FinetuneTrainingArguments(
        output_dir=str(tmp_path / "out"), learning_rate=1e-4, num_train_epochs=1,
        per_device_train_batch_size=16, report_to="none", save_strategy="no",
        use_cpu=True, **changes)


def test_the_head_learns_at_its_own_rate_and_the_encoder_at_the_base_rate(tmp_path, clinc_dir,
                                                                         tiny_bert_folder):
    from slimformer.training.finetune import HeadRateTrainer

    from .conftest import tiny_bert

    args = finetune_args(tmp_path, head_learning_rate=3e-3, weight_decay=0.01)
    model = tiny_bert()
    trainer = HeadRateTrainer(model=model, args=args)
    optimizer = trainer.create_optimizer()
    rate = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    decay = {id(p): group["weight_decay"] for group in optimizer.param_groups
             for p in group["params"]}
    for name, parameter in model.named_parameters():
        expected = 3e-3 if name.startswith("classifier.") else 1e-4
        assert rate[id(parameter)] == expected, name
    assert decay[id(model.classifier.weight)] == 0.01 and decay[id(model.classifier.bias)] == 0
    assert len(rate) == len(list(model.parameters()))
    plain = HeadRateTrainer(model=tiny_bert(), args=finetune_args(tmp_path / "b"))
    assert {g["lr"] for g in plain.create_optimizer().param_groups} == {1e-4}


def test_finetune_records_the_head_rate_and_shows_progress(tmp_path, clinc_dir,
                                                           tiny_bert_folder, caplog):
    from slimformer.provenance import read_provenance
    from slimformer.training.finetune import finetune

    args = finetune_args(tmp_path, head_learning_rate=3e-3, disable_tqdm=True,
                         eval_strategy="epoch")
    data = DataArguments(data_file=str(clinc_dir), max_samples=64, max_length=16)
    with caplog.at_level(logging.INFO, logger="slimformer"):
        finetune(str(tiny_bert_folder), data, args)
    settings = read_provenance(tmp_path / "out")["steps"][-1]["settings"]
    assert settings["head_learning_rate"] == 3e-3
    lines = [r.getMessage() for r in caplog.records if "s/step" in r.getMessage()]
    assert any("step 4/4, epoch 1.00/1" in line for line in lines), lines
    assert any("validation accuracy" in line for line in lines), lines


@pytest.mark.parametrize("value", [0.0, -1e-3, float("nan")])
def test_a_bad_head_rate_is_refused_before_training(value):
    from slimformer.checks import check_range
    from slimformer.errors import SlimformerError

    with pytest.raises(SlimformerError, match="--head_learning_rate must be (greater|a finite)"):
        check_range("head_learning_rate", value)


def test_a_diverged_run_is_never_saved(tmp_path):
    import torch
    from transformers import Trainer

    from slimformer.errors import SlimformerError
    from slimformer.training.finetune import save_outputs

    from .conftest import tiny_bert

    model = tiny_bert()
    trainer = Trainer(model=model, args=finetune_args(tmp_path))
    with pytest.raises(SlimformerError, match=r"diverged \(train loss nan\)"):
        save_outputs(trainer, {"train_loss": float("nan")}, None)
    with torch.no_grad():
        model.classifier.weight[0, 0] = float("inf")
    with pytest.raises(SlimformerError, match="non-finite weights \\(classifier.weight\\)"):
        save_outputs(trainer, {"train_loss": 1.0}, None)
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_a_failed_final_rename_leaves_the_checkpoints_where_they_were(tmp_path, tokenizer):
    """The parent folder made immutable (chattr +i) once the stage exists: the rename that
    would put the saved model in place fails for real, and the checkpoints the stage had
    taken along go back into the output folder."""
    import shutil
    import subprocess

    from transformers import Trainer

    from slimformer.training.finetune import save_outputs

    from .conftest import tiny_bert

    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed: no way to make a rename fail for real")
    parent = tmp_path / "runs"
    args = finetune_args(parent)
    out = Path(args.output_dir)
    (out / "checkpoint-7").mkdir(parents=True)
    (out / "checkpoint-7" / "trainer_state.json").write_text("{}")
    trainer = Trainer(model=tiny_bert(), args=args)

    def lock(stage):  # after the stage is made, before the final rename
        if subprocess.run(["chattr", "+i", str(out.parent)], capture_output=True).returncode:
            pytest.skip("this file system or user cannot make a folder immutable")

    try:
        with pytest.raises(OSError):
            save_outputs(trainer, {"train_loss": 1.0}, tokenizer, record=lock)
    finally:
        subprocess.run(["chattr", "-i", str(out.parent)], capture_output=True)
    assert (out / "checkpoint-7" / "trainer_state.json").read_text() == "{}"
    assert not (out / "model.safetensors").exists()


def test_optimize_trains_on_batches_of_like_length(tmp_path, clinc):
    """optimize's training steps batch queries of similar length: less padding per step."""
    import numpy as np
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from slimformer.optimize.args import OptimizeArguments
    from slimformer.optimize.training_steps import training_arguments
    from slimformer.training.finetune import HeadRateTrainer

    from .conftest import tiny_bert

    lengths = [len(text.split()) for text in clinc["train"]["text"][:2048]]
    rows = clinc["train"].select(range(2048)).add_column("input_ids", [[1] * n for n in lengths])
    args = training_arguments(tmp_path / "t", OptimizeArguments(), 1.0, finetune=True,
                              use_cpu=True)
    trainer = HeadRateTrainer(model=tiny_bert(), args=args, train_dataset=rows, eval_dataset=rows)
    sampler = trainer._get_train_sampler(rows)
    assert isinstance(sampler, LengthGroupedSampler)
    batch = args.per_device_train_batch_size

    def padded(order) -> int:  # tokens run when each batch is padded to its longest
        return sum(order[i:i + batch].max() * len(order[i:i + batch])
                   for i in range(0, len(order), batch))

    grouped = np.asarray(lengths)[list(sampler)]
    shuffled = np.random.default_rng(0).permutation(lengths)
    assert padded(grouped) < 0.8 * padded(shuffled)

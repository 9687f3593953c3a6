import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from slimformer.data.args import DataArguments
from slimformer.errors import SlimformerError
from slimformer.training.args import DistillArguments, DistillationTrainingArguments
from slimformer.training.distill import (
    TEACHER_LOGITS,
    cached_teacher_logits,
    distillation_loss,
    student_from_teacher,
)
from slimformer.training.distill_run import build_distillation, distill

from .conftest import tiny_bert

NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


def test_loss_equals_the_formula():
    student = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 0.3]])
    teacher = torch.tensor([[1.0, 1.5, -0.5], [2.0, -1.0, 0.0]])
    labels = torch.tensor([0, 2])
    alpha, t = 0.3, 4.0
    ce = -np.mean([math.log(np.exp(s[y]) / np.exp(s).sum())
                   for s, y in zip(student.numpy(), labels.numpy())])
    p = np.exp(teacher.numpy() / t) / np.exp(teacher.numpy() / t).sum(-1, keepdims=True)
    q = np.exp(student.numpy() / t) / np.exp(student.numpy() / t).sum(-1, keepdims=True)
    kl = np.sum(p * np.log(p / q)) / len(labels)
    expected = alpha * ce + (1 - alpha) * t**2 * kl
    got = distillation_loss(student, teacher, labels, alpha, t).item()
    assert got == pytest.approx(expected, rel=1e-5)


def test_mse_loss_equals_the_formula_and_sees_a_shift_kl_ignores():
    student = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 0.3]])
    teacher = torch.tensor([[1.0, 1.5, -0.5], [2.0, -1.0, 0.0]])
    labels = torch.tensor([0, 2])
    alpha = 0.3
    ce = F.cross_entropy(student, labels).item()
    mse = 0.5 * np.mean((student.numpy() - teacher.numpy()) ** 2)
    got = distillation_loss(student, teacher, labels, alpha, 4.0, soft_loss="mse").item()
    assert got == pytest.approx(alpha * ce + (1 - alpha) * mse, rel=1e-5)
    # a student whose logits are the teacher's plus 5: KL sees nothing, MSE sees the level
    shifted = teacher + 5.0
    kl = distillation_loss(shifted, teacher, labels, 0.0, 4.0).item()
    assert kl == pytest.approx(0.0, abs=1e-6)
    assert distillation_loss(shifted, teacher, labels, 0.0, 4.0,
                             soft_loss="mse").item() == pytest.approx(12.5)


def test_mse_is_the_large_temperature_limit_of_kl_for_centred_logits():
    torch.manual_seed(0)
    student, teacher = torch.randn(8, 151), torch.randn(8, 151)
    student = student - student.mean(-1, keepdim=True)
    teacher = teacher - teacher.mean(-1, keepdim=True)
    labels = torch.zeros(8, dtype=torch.long)
    kl = distillation_loss(student, teacher, labels, 0.0, 200.0).item()
    mse = distillation_loss(student, teacher, labels, 0.0, 200.0, soft_loss="mse").item()
    # (so the profile's alpha weighs either term alike)
    assert kl == pytest.approx(mse, rel=0.02)


def test_unknown_soft_loss_is_refused(tmp_path):
    with pytest.raises(SlimformerError, match="soft_loss must be one of kl, mse"):
        DistillationTrainingArguments(output_dir=str(tmp_path), soft_loss="l1")


def test_alpha_one_is_cross_entropy():
    student, teacher = torch.randn(4, 151), torch.randn(4, 151)
    labels = torch.tensor([1, 42, 7, 150])
    assert distillation_loss(student, teacher, labels, 1.0, 3.0).item() == pytest.approx(
        F.cross_entropy(student, labels).item())


@pytest.mark.parametrize("alpha,temperature,message", [
    (1.5, 2.0, "alpha must be in"), (-0.1, 2.0, "alpha must be in"),
    (0.5, 0.0, "temperature must be > 0")])
def test_bad_alpha_temperature(tmp_path, alpha, temperature, message):
    with pytest.raises(SlimformerError, match=message):
        DistillationTrainingArguments(output_dir=str(tmp_path), alpha=alpha,
                                      temperature=temperature)


def test_layer_subset_student_holds_teacher_weights():
    teacher = tiny_bert(num_hidden_layers=4)
    student = student_from_teacher(teacher, [0, 2])
    assert student.config.num_hidden_layers == 2 and len(student.bert.encoder.layer) == 2
    t, s = teacher.state_dict(), student.state_dict()
    for j, i in enumerate([0, 2]):
        for name, value in teacher.bert.encoder.layer[i].state_dict().items():
            assert torch.equal(s[f"bert.encoder.layer.{j}.{name}"], value)
    for name in ("bert.embeddings.word_embeddings.weight", "classifier.weight",
                 "bert.pooler.dense.weight"):
        assert torch.equal(s[name], t[name])
    assert s["bert.encoder.layer.1.output.dense.weight"].data_ptr() != \
        t["bert.encoder.layer.2.output.dense.weight"].data_ptr()


def test_student_layer_out_of_range():
    with pytest.raises(SlimformerError, match=r"out of range: the teacher has 2 layers"):
        student_from_teacher(tiny_bert(), [0, 5])


@pytest.fixture
def teacher_folder(tmp_path, tokenizer):
    folder = tmp_path / "teacher"
    tiny_bert(num_hidden_layers=2, **NO_DROPOUT).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def setup(tmp_path, teacher_folder, clinc_dir, cache=True, **training):
    args = DistillArguments(teacher_model=str(teacher_folder), student_layers=[1],
                            cache_teacher_logits=cache, cache_dir=str(tmp_path / "cache"))
    data_args = DataArguments(data_file=str(clinc_dir), max_samples=48, max_length=24)
    training_args = DistillationTrainingArguments(
        output_dir=str(tmp_path / "out"), alpha=0.4, temperature=3.0, learning_rate=5e-3,
        per_device_train_batch_size=16, num_train_epochs=1, report_to="none",
        save_strategy="no", eval_strategy="no", use_cpu=True, **training)
    return args, data_args, training_args


def test_cached_and_on_the_fly_losses_are_equal(tmp_path, teacher_folder, clinc_dir):
    cached = build_distillation(*setup(tmp_path, teacher_folder, clinc_dir, cache=True))
    live = build_distillation(*setup(tmp_path, teacher_folder, clinc_dir, cache=False))
    assert TEACHER_LOGITS in cached.encoded["train"].column_names
    assert live.trainer.teacher is not None and cached.trainer.teacher is None
    for run in (cached, live):
        run.trainer.model.train()
    batch_c = next(iter(cached.trainer.get_train_dataloader()))
    batch_l = next(iter(live.trainer.get_train_dataloader()))
    assert torch.equal(batch_c["input_ids"], batch_l["input_ids"])
    loss_c = cached.trainer.compute_loss(cached.trainer.model, dict(batch_c))
    loss_l = live.trainer.compute_loss(live.trainer.model, dict(batch_l))
    assert loss_c.item() == pytest.approx(loss_l.item(), rel=1e-5)
    # and the distillation term is really there
    assert loss_c.item() != pytest.approx(
        cached.trainer.model(**{k: v for k, v in batch_c.items() if k != TEACHER_LOGITS}
                             ).loss.item(), rel=1e-3)


def test_teacher_logit_cache_is_reused(tmp_path, teacher_folder, clinc, tokenizer):
    from slimformer.models.loading import load_classifier_folder

    teacher = load_classifier_folder(teacher_folder)
    train = clinc["train"].select(range(20))
    first = cached_teacher_logits(teacher, tokenizer, train, tmp_path)
    files = list(tmp_path.glob("teacher-logits-*.npy"))
    assert len(files) == 1 and first.shape == (20, 151)
    np.save(files[0], first + 1.0)  # a reused cache returns what is on disk
    np.testing.assert_array_equal(cached_teacher_logits(teacher, tokenizer, train, tmp_path),
                                  first + 1.0)
    other = cached_teacher_logits(teacher, tokenizer, clinc["train"].select(range(21)), tmp_path)
    assert other.shape == (21, 151) and len(list(tmp_path.glob("teacher-logits-*.npy"))) == 2


def test_distill_trains_and_writes_a_model_folder(tmp_path, teacher_folder, clinc_dir):
    args, data_args, training_args = setup(tmp_path, teacher_folder, clinc_dir)
    run = build_distillation(args, data_args, training_args)
    before = {k: v.clone() for k, v in run.trainer.model.state_dict().items()}
    metrics = distill(args, data_args, training_args)
    out = tmp_path / "out"
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert not list(out.glob("*.bin")), "a pickle in the model folder"
    saved = json.loads((out / "training_args.json").read_text())
    assert Path(saved["output_dir"]) == out and saved["alpha"] == training_args.alpha
    assert {"test_accuracy", "validation_accuracy", "test_oos_recall"} <= set(metrics)
    from slimformer.models.loading import load_classifier_folder
    from slimformer.provenance import read_provenance

    student = load_classifier_folder(out)
    assert student.config.id2label[42] == "oos" and student.config.num_hidden_layers == 1
    changed = [k for k, v in student.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "training changed no student parameter"
    record = read_provenance(out)
    assert record["steps"][-1]["step"] == "distill"
    assert record["steps"][-1]["settings"]["alpha"] == 0.4


def test_label_maps_must_agree(tmp_path, tiny_bert_folder, clinc_dir, tokenizer):
    teacher = tmp_path / "generic-teacher"
    tiny_bert(id2label={i: f"intent_{i}" for i in range(151)}).save_pretrained(teacher)
    tokenizer.save_pretrained(teacher)
    args, data_args, training_args = setup(tmp_path, teacher, clinc_dir)
    args.student_layers, args.student_model = None, str(tiny_bert_folder)
    with pytest.raises(SlimformerError, match="label id 0 is 'intent_0', the data's is"):
        build_distillation(args, data_args, training_args)


def test_student_needs_a_source(tmp_path, teacher_folder, clinc_dir):
    args, data_args, training_args = setup(tmp_path, teacher_folder, clinc_dir)
    args.student_layers = None
    with pytest.raises(SlimformerError, match="no student"):
        build_distillation(args, data_args, training_args)


def test_cache_speed_comparison_runs_both_paths(tmp_path, teacher_folder, clinc_dir):
    from slimformer.training.distill_run import compare_cache_speed

    result = compare_cache_speed(*setup(tmp_path, teacher_folder, clinc_dir), steps=2)
    assert result["cached_step_s"] > 0 and result["on_the_fly_step_s"] > 0
    assert result["speedup"] == pytest.approx(
        result["on_the_fly_step_s"] / result["cached_step_s"])


# ---------------------------------------------------------------------------------------------
# Layer-wise losses (hidden states, attention distributions)


def layer_outputs(model, batch):
    with torch.no_grad():
        return model(**batch, output_hidden_states=True, output_attentions=True)


@pytest.mark.parametrize("layers", [[0, 1, 2], [0, 2], [1], [2, 0]])
def test_layer_losses_are_zero_for_the_teacher_itself_and_positive_otherwise(tokenizer, layers):
    from slimformer.training.layer_losses import attention_loss, hidden_loss

    teacher = tiny_bert(num_hidden_layers=3, initializer_range=0.5, **NO_DROPOUT).eval()
    student = student_from_teacher(teacher, layers).eval()
    batch = dict(tokenizer(["book a flight to paris", "what is my balance please"],
                           padding=True, return_tensors="pt"))
    t, s = layer_outputs(teacher, batch), layer_outputs(student, batch)
    mask = batch["attention_mask"]
    hidden = hidden_loss(s.hidden_states, t.hidden_states, layers, mask).item()
    attention = attention_loss(s.attentions, t.attentions, layers, mask).item()
    if layers == [0, 1, 2]:  # the student is its teacher
        assert hidden == pytest.approx(0.0, abs=1e-10) and attention == pytest.approx(0.0,
                                                                                      abs=1e-7)
    else:
        assert hidden > 1e-3 and attention > 1e-3


def test_hidden_loss_ignores_padding():
    from slimformer.training.layer_losses import hidden_loss

    a = (torch.zeros(1, 3, 4), torch.zeros(1, 3, 4))
    b = (torch.zeros(1, 3, 4), torch.zeros(1, 3, 4))
    b[1][0, 2] = 5.0  # differs only at a padding position
    assert hidden_loss(a, b, [0], torch.tensor([[1, 1, 0]])).item() == 0.0
    assert hidden_loss(a, b, [0], torch.tensor([[1, 1, 1]])).item() > 0


def test_layer_wise_distillation_trains_with_the_teacher_on_the_fly(tmp_path, teacher_folder,
                                                                   clinc_dir):
    args, data_args, training_args = setup(tmp_path, teacher_folder, clinc_dir,
                                           hidden_weight=2.0, attention_weight=1.0)
    run = build_distillation(args, data_args, training_args)
    assert run.trainer.teacher is not None and run.trainer.layer_map == [1]
    run.trainer.model.train()
    batch = next(iter(run.trainer.get_train_dataloader()))
    with_layers = run.trainer.compute_loss(run.trainer.model, dict(batch)).item()
    run.trainer.args.hidden_weight = run.trainer.args.attention_weight = 0.0
    logits_only = run.trainer.compute_loss(run.trainer.model, dict(batch)).item()
    assert with_layers > logits_only > 0
    metrics = distill(*setup(tmp_path, teacher_folder, clinc_dir, hidden_weight=2.0,
                             attention_weight=1.0))
    assert math.isfinite(metrics["train_loss"])
    from slimformer.provenance import read_provenance

    settings = read_provenance(tmp_path / "out")["steps"][-1]["settings"]
    assert settings["hidden_weight"] == 2.0 and settings["attention_weight"] == 1.0


def test_layer_losses_need_a_student_cut_from_the_teacher(tmp_path, teacher_folder, clinc_dir,
                                                          tiny_bert_folder):
    args, data_args, training_args = setup(tmp_path, teacher_folder, clinc_dir,
                                           hidden_weight=1.0)
    args.student_layers, args.student_model = None, str(tiny_bert_folder)
    with pytest.raises(SlimformerError, match="give student_layers"):
        build_distillation(args, data_args, training_args)
    with pytest.raises(SlimformerError, match="must be >= 0"):
        DistillationTrainingArguments(output_dir=str(tmp_path), hidden_weight=-1.0)


def test_provenance_records_what_ran_not_what_was_asked(tmp_path, teacher_folder, clinc_dir):
    from slimformer.provenance import read_provenance

    args, data_args, training_args = setup(tmp_path, teacher_folder, clinc_dir, max_steps=2,
                                           soft_loss="mse")
    training_args.num_train_epochs = 3
    distill(args, data_args, training_args)
    settings = read_provenance(tmp_path / "out")["steps"][-1]["settings"]
    assert settings["steps"] == 2 and settings["epochs_asked"] == 3
    assert settings["soft_loss"] == "mse"
    assert settings["epochs"] == pytest.approx(2 / 3, abs=0.01)  # 48 rows: 3 batches an epoch


def test_the_fallback_is_fitted_on_rows_in_the_order_predicted(tmp_path, teacher_folder,
                                                               clinc_dir):
    """group_by_length reorders the rows Trainer.predict returns: the rule must pair each
    row's logits with its own label (its figures then match the Trainer's own metrics)."""
    from slimformer.serving.fallback import read_rule

    args, data_args, training_args = setup(tmp_path, teacher_folder, clinc_dir,
                                           group_by_length=True)
    metrics = distill(args, data_args, training_args)
    rule = read_rule(tmp_path / "out")
    assert rule is not None and rule.fitted_on == "validation"
    assert rule.figures["without"]["accuracy"] == pytest.approx(metrics["validation_accuracy"])

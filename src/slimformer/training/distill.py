"""Knowledge distillation: a student learns from CLINC150 labels and a teacher's soft targets.

loss = alpha * CE(student, labels) + (1 - alpha) * T^2 * KL(softmax(z_t / T) || softmax(z_s / T))
       (or, with soft_loss "mse", (1 - alpha) * 0.5 * mean((z_s - z_t)^2): the logits themselves)
       [+ hidden_weight * hidden-state MSE + attention_weight * attention KL, layer by layer,
        for a student cut from its teacher: slimformer.training.layer_losses]

The teacher's logits are computed once over the training set and cached on disk (keyed by the
teacher's weights and the data's fingerprint), so an epoch costs a student pass only, and a
teacher with another tokenizer can teach the student."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from datasets import Dataset, DatasetDict
from torch import nn
from tqdm.auto import tqdm
from transformers import PreTrainedModel, Trainer

from slimformer.data.augment import LABELLED
from slimformer.data.clinc import TEXT_COLUMN
from slimformer.errors import fail
from slimformer.models.architectures import (
    check_student_layers,
    encoder_layers,
    set_encoder_layers,
)
from slimformer.training.args import check_soft_loss

TEACHER_LOGITS = "teacher_logits"


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor | None,
                      labels: torch.Tensor, alpha: float, temperature: float,
                      labelled: torch.Tensor | None = None,
                      soft_loss: str = "kl") -> torch.Tensor:
    """alpha * CE + (1 - alpha) * the soft term, which is T^2 * KL(teacher || student),
    averaged over the batch, or with `soft_loss="mse"` 0.5 * the mean squared logit difference.

    With `labelled` (1 for a query of the data, 0 for an augmented one, which has no label)
    the CE term averages over the labelled rows alone, and the soft term over all rows."""
    ce = label_loss(student_logits, labels, labelled)
    if alpha >= 1.0 or teacher_logits is None:
        return ce
    return alpha * ce + (1.0 - alpha) * soft_term(student_logits, teacher_logits,
                                                  temperature, soft_loss)


def soft_term(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float,
              soft_loss: str = "kl") -> torch.Tensor:
    """How far the student's logits are from the teacher's.

    "kl" matches the softmax at temperature T, which ignores a shift of all logits, so the
    student's logit level is free; the max-logit out-of-scope score reads that level. "mse"
    (Ba & Caruana 2014; Tang et al. 2019) matches the logits themselves, level included; its
    0.5 makes it the large-T limit of T^2 * KL (Hinton et al. 2015) up to that shift, so alpha
    weighs the two terms alike."""
    check_soft_loss(soft_loss)
    teacher_logits = teacher_logits.to(student_logits.dtype)
    if soft_loss == "mse":
        return 0.5 * F.mse_loss(student_logits, teacher_logits)
    kl = F.kl_div(F.log_softmax(student_logits / temperature, dim=-1),
                  F.softmax(teacher_logits / temperature, dim=-1), reduction="batchmean")
    return temperature**2 * kl


def label_loss(logits: torch.Tensor, labels: torch.Tensor,
               labelled: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy over the rows that have a label (all of them without `labelled`); 0 for a
    batch of augmented rows only."""
    if labelled is None:
        return F.cross_entropy(logits, labels)
    keep = labelled.bool()
    if not keep.any():
        return logits.sum() * 0.0  # keeps the graph: every rank runs the same backward
    return F.cross_entropy(logits[keep], labels[keep])


class DistillationTrainer(Trainer):
    """A Trainer whose training loss is the distillation loss.

    Teacher logits come from the batch (`teacher_logits`, cached) or, without them, from
    `teacher_model` run on the fly: on the student's device, in eval mode, under no_grad, and
    never handed to the Trainer, so DDP wraps the student only. Evaluation reports the
    student's plain cross-entropy, the same whichever path trains it.
    """

    def __init__(self, *args: Any, teacher_model: PreTrainedModel | None = None,
                 layer_map: list[int] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.teacher = teacher_model
        self.layer_map = list(layer_map) if layer_map else None
        if self.teacher is not None:
            self.teacher.to(self.args.device).eval().requires_grad_(False)

    def layer_loss(self, outputs: Any, inputs: dict[str, torch.Tensor]) -> tuple[
            torch.Tensor, torch.Tensor]:
        """The weighted layer-wise losses, and the teacher's logits from the same pass."""
        from slimformer.training.layer_losses import attention_loss, hidden_loss

        names = self.teacher.forward.__code__.co_varnames
        with torch.no_grad():
            teacher = self.teacher(**{k: v for k, v in inputs.items() if k in names},
                                   output_hidden_states=self.args.hidden_weight > 0,
                                   output_attentions=self.args.attention_weight > 0)
        mask = inputs["attention_mask"]
        loss = outputs.logits.new_zeros(())
        if self.args.hidden_weight > 0:
            loss = loss + self.args.hidden_weight * hidden_loss(
                outputs.hidden_states, teacher.hidden_states, self.layer_map, mask)
        if self.args.attention_weight > 0:
            if not outputs.attentions or not teacher.attentions or outputs.attentions[0] is None:
                fail("attention_weight needs attention maps, which this model's attention "
                     "kernel does not return: load it with attn_implementation='eager'")
            loss = loss + self.args.attention_weight * attention_loss(
                outputs.attentions, teacher.attentions, self.layer_map, mask)
        return loss, teacher.logits

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        for column in (TEACHER_LOGITS, LABELLED):
            if column not in self._signature_columns:
                self._signature_columns.append(column)

    def teacher_logits(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor | None:
        if self.teacher is None:
            return None
        names = self.teacher.forward.__code__.co_varnames
        with torch.no_grad():
            return self.teacher(**{k: v for k, v in inputs.items() if k in names
                                   and k != "labels"}).logits

    def compute_loss(self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: torch.Tensor | None = None):
        cached = inputs.pop(TEACHER_LOGITS, None)
        labelled = inputs.pop(LABELLED, None)
        labels = inputs.pop("labels")
        layers = model.training and self.args.layer_losses
        if layers and (self.teacher is None or not self.layer_map):
            fail("layer-wise losses need the teacher and a student cut from it "
                 "(teacher_model and student_layers)")
        outputs = model(**inputs, **({"output_hidden_states": self.args.hidden_weight > 0,
                                      "output_attentions": self.args.attention_weight > 0}
                                     if layers else {}))
        logits = outputs.logits
        extra, teacher_logits = self.layer_loss(outputs, inputs) if layers else (None, None)
        if model.training and self.args.alpha < 1.0:
            teacher = cached if cached is not None else teacher_logits
            if teacher is None:
                teacher = self.teacher_logits(inputs)
            loss = distillation_loss(logits, teacher, labels, self.args.alpha,
                                     self.args.temperature, labelled, self.args.soft_loss)
        else:  # evaluation, or alpha = 1: the labels alone
            loss = label_loss(logits, labels, labelled)
        if extra is not None:
            loss = loss + extra
        outputs.loss = loss
        return (loss, outputs) if return_outputs else loss


def student_from_teacher(teacher: PreTrainedModel, layers: list[int]) -> PreTrainedModel:
    """DistilBERT's initialisation: the teacher's embeddings, kept layers and classifier."""
    blocks = encoder_layers(teacher, "a layer-subset student")
    if not layers:
        fail("student_layers is empty: name at least one teacher layer to keep")
    bad = [i for i in layers if not 0 <= i < len(blocks)]
    if bad:
        fail(f"student layer(s) {bad} out of range: the teacher has {len(blocks)} layers "
             f"(0..{len(blocks) - 1})")
    if len(set(layers)) != len(layers):
        fail(f"student_layers repeats a layer: {layers}")
    check_student_layers(teacher.config, layers)
    # A frozen teacher (requires_grad off, as the trainer keeps it) must not freeze its copy.
    student = copy.deepcopy(teacher).train().requires_grad_(True)
    set_encoder_layers(student, nn.ModuleList([copy.deepcopy(blocks[i]) for i in layers]))
    return student


def check_label_maps(teacher: PreTrainedModel, student: PreTrainedModel) -> None:
    t = {int(k): v for k, v in teacher.config.id2label.items()}
    s = {int(k): v for k, v in student.config.id2label.items()}
    if t != s:
        diff = next((i for i in sorted(set(t) | set(s)) if t.get(i) != s.get(i)), None)
        fail(f"teacher and student label maps disagree (id {diff}: teacher "
             f"{t.get(diff)!r}, student {s.get(diff)!r}); fine-tune the teacher on the same "
             "labels")


def model_fingerprint(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def cache_key(teacher: nn.Module, dataset: Dataset, max_length: int) -> str:
    raw = f"{model_fingerprint(teacher)}-{dataset._fingerprint}-{max_length}"
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def compute_teacher_logits(teacher: PreTrainedModel, tokenizer: Any, texts: list[str],
                           max_length: int = 128, batch_size: int = 128) -> np.ndarray:
    device = next(teacher.parameters()).device
    teacher.eval()
    chunks = []
    with torch.inference_mode():
        for start in tqdm(range(0, len(texts), batch_size), desc="teacher logits"):
            batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt").to(device)
            chunks.append(teacher(**batch).logits.float().cpu().numpy())
    return np.concatenate(chunks).astype(np.float32)


def cached_teacher_logits(teacher: PreTrainedModel, tokenizer: Any, dataset: Dataset,
                          cache_dir: str | Path, max_length: int = 128,
                          is_main_process: bool = True) -> np.ndarray:
    """Teacher logits for every row of `dataset`, computed once and kept in `cache_dir`.

    Under several processes only the main one computes; call it inside
    `TrainingArguments.main_process_first` so the others then read the file.
    """
    path = Path(cache_dir) / f"teacher-logits-{cache_key(teacher, dataset, max_length)}.npy"
    if path.is_file():
        logits = np.load(path, allow_pickle=False)
        if logits.shape[0] == len(dataset):
            return logits
    logits = compute_teacher_logits(teacher, tokenizer, dataset[TEXT_COLUMN], max_length)
    if is_main_process:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.npy")
        np.save(partial, logits, allow_pickle=False)
        partial.replace(path)  # readers never see a half-written cache
    return logits


def with_teacher_logits(dataset: DatasetDict, logits: np.ndarray) -> DatasetDict:
    train = dataset["train"].add_column(TEACHER_LOGITS, [row for row in logits])
    return DatasetDict({**dataset, "train": train})

"""Arguments of the training steps: the model, distillation, and TrainingArguments with alpha
and T."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from slimformer.data.augment import DEFAULT_METHODS, METHODS, check_augment
from slimformer.errors import fail


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        default="bert-base-uncased",
        metadata={"help": "sequence-classification checkpoint to fine-tune: Hub id or folder"},
    )


@dataclass
class DistillArguments:
    teacher_model: str | None = field(
        default=None,
        metadata={"help": "fine-tuned CLINC150 teacher (Hub id or folder); None trains the "
                  "student on labels only"},
    )
    student_model: str | None = field(
        default=None, metadata={"help": "checkpoint the student starts from (Hub id or folder)"}
    )
    student_layers: list[int] | None = field(
        default=None,
        metadata={"help": "build the student from the teacher, keeping these layers (e.g. 0 2 4)"},
    )
    cache_teacher_logits: bool = field(
        default=True, metadata={"help": "compute teacher logits once and cache them on disk"}
    )
    cache_dir: str = field(default="outputs/cache", metadata={"help": "teacher-logit cache"})
    augment: int = field(default=0, metadata={
        "help": "transfer set: N new queries per training query, made by --augment_methods "
                "and labelled by the teacher alone (no hard label); 0: none"})
    augment_methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS), metadata={
        "help": f"how new queries are made, one drawn per query: {', '.join(METHODS)}"})

    def __post_init__(self) -> None:
        check_augment(self.augment, self.augment_methods)


@dataclass
class FinetuneTrainingArguments(TrainingArguments):
    """TrainingArguments plus a learning rate of its own for the classification head."""

    head_learning_rate: float | None = field(default=None, metadata={
        "help": "learning rate of the parameters outside the base model (the newly "
                "initialised classification head); None: --learning_rate for all"})


@dataclass
class DistillationTrainingArguments(TrainingArguments):
    """TrainingArguments plus `alpha` and `temperature`, so hyperparameter_search can set them."""

    alpha: float = field(default=0.5, metadata={"help": "weight of the label loss (1 = no "
                                                "teacher)"})
    temperature: float = field(default=2.0, metadata={"help": "softmax temperature T > 0"})
    soft_loss: str = field(default="kl", metadata={
        "help": "the teacher term: kl (softmax at T, Hinton) or mse (the logits themselves, "
                "so the student also learns the teacher's logit level, which the max-logit "
                "out-of-scope fallback reads)"})
    hidden_weight: float = field(default=0.0, metadata={
        "help": "layer-wise loss: weight of the MSE between each student layer's hidden states "
                "and those of the teacher layer it was cut from (TinyBERT); needs "
                "student_layers and runs the teacher on the fly"})
    attention_weight: float = field(default=0.0, metadata={
        "help": "layer-wise loss: weight of the KL between the attention distributions of "
                "each student layer and its teacher layer (TinyBERT / MiniLM)"})

    def __post_init__(self):
        super().__post_init__()
        check_alpha_temperature(self.alpha, self.temperature)
        check_soft_loss(self.soft_loss)
        if self.hidden_weight < 0 or self.attention_weight < 0:
            fail("hidden_weight and attention_weight must be >= 0")

    @property
    def layer_losses(self) -> bool:
        return self.hidden_weight > 0 or self.attention_weight > 0


def check_alpha_temperature(alpha: float, temperature: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        fail(f"alpha must be in [0, 1], got {alpha}")
    if not temperature > 0 or temperature == float("inf"):  # (NaN fails every comparison)
        fail(f"temperature must be > 0 and finite, got {temperature}")


SOFT_LOSSES = ("kl", "mse")


def check_soft_loss(soft_loss: str) -> None:
    if soft_loss not in SOFT_LOSSES:
        fail(f"soft_loss must be one of {', '.join(SOFT_LOSSES)}, got {soft_loss!r}")

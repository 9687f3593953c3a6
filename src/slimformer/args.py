"""Argument dataclasses shared by the recipes (parsed with `slimformer.config.parse_args`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DataArguments:
    data_file: str | None = field(
        default=None,
        metadata={"help": "CLINC150 raw JSON file or folder; None loads clinc_oos from the Hub"},
    )
    dataset_config: str = field(
        default="plus", metadata={"help": "clinc_oos config: plus, full, small or imbalanced"}
    )
    max_samples: int | None = field(
        default=None, metadata={"help": "keep N rows per split (quick runs and tests)"}
    )
    max_length: int = field(default=128, metadata={"help": "tokenizer truncation length"})


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

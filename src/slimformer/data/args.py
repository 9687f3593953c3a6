"""Arguments shared by every step that reads CLINC150."""

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

"""Arguments shared by every step that reads the data."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DataArguments:
    dataset: str | None = field(default=None, metadata={
        "help": "any text-classification data: a Hub dataset id, a CSV/JSON/JSONL/Parquet "
                "file, or a folder of train/validation/test files; None is CLINC150"})
    data_file: str | None = field(
        default=None,
        metadata={"help": "CLINC150 raw JSON file or folder; None loads clinc_oos from the Hub"},
    )
    dataset_config: str | None = field(default=None, metadata={
        "help": "clinc_oos config (plus, full, small or imbalanced; default plus), or the "
                "config of --dataset on the Hub"})
    text_column: str = field(default="text", metadata={"help": "--dataset's text column"})
    label_column: str = field(default="label", metadata={"help": "--dataset's label column"})
    oos_label: str = field(default="oos", metadata={
        "help": "the out-of-scope label (fallback answer); data without it has no OOS metrics"})
    fallback_score: str = field(default="max_logit", metadata={
        "help": "out-of-scope fallback's confidence: max_logit, max_softmax, "
                "temperature_softmax, energy, mahalanobis (distance to the intents' mean "
                "logits), or auto (each fitted, the best on validation kept)"})
    max_in_scope_drop: float = field(default=0.5, metadata={
        "help": "fallback threshold: the highest that costs at most this many points of "
                "validation in-scope accuracy"})
    max_samples: int | None = field(
        default=None, metadata={"help": "keep N rows per split (quick runs and tests)"}
    )
    max_length: int = field(default=128, metadata={"help": "tokenizer truncation length"})

    def __post_init__(self) -> None:
        scores = ("max_logit", "max_softmax", "temperature_softmax", "energy", "mahalanobis",
                  "auto")
        if self.fallback_score not in scores:
            from slimformer.errors import fail

            fail(f"--fallback_score must be one of {', '.join(scores)}, got "
                 f"{self.fallback_score!r}")

"""The `optimize` step's settings, with the quick and full profiles."""

from __future__ import annotations

from dataclasses import dataclass, field

# What each profile sets where the config leaves a setting out (None).
PROFILES: dict[str, dict[str, object]] = {
    # a newcomer's first run: about 10-15 minutes on 2 CPU cores
    "quick": {"finetune_epochs": 1.0, "distill_epochs": 1.0, "students": ["0 2 4"],
              "variants": ["onnx-int8"]},
    # the docs' numbers: the book-length chain
    "full": {"finetune_epochs": 5.0, "distill_epochs": 5.0, "students": ["0 2 4", "0 5"],
             "variants": ["onnx-int8", "onnx-opt-int8"]},
}


@dataclass
class OptimizeArguments:
    teacher: str | None = field(default=None, metadata={
        "help": "fine-tuned classifier (folder or Hub id); None fine-tunes base_model first"})
    base_model: str = field(default="minilm", metadata={
        "help": "checkpoint to fine-tune into the teacher when no teacher is given"})
    profile: str = field(default="quick", metadata={"help": "quick or full"})
    finetune_epochs: float | None = field(default=None, metadata={"help": "(profile's)"})
    distill_epochs: float | None = field(default=None, metadata={"help": "(profile's)"})
    students: list[str] | None = field(default=None, metadata={
        "help": "teacher layers each student keeps, one quoted list per student: '0 2 4'"})
    variants: list[str] | None = field(default=None, metadata={
        "help": "compressed variants of every model (see `slimformer compress`)"})
    alpha: float = field(default=0.5, metadata={"help": "distillation: weight of the labels"})
    temperature: float = field(default=3.0, metadata={"help": "distillation temperature"})
    learning_rate: float = field(default=1e-4, metadata={"help": "fine-tuning and distillation"})
    train_batch_size: int = field(default=32, metadata={"help": "training batch size"})
    max_accuracy_drop: float = field(default=0.5, metadata={
        "help": "budget: validation accuracy points below the teacher's"})
    max_latency_ms: float | None = field(default=None, metadata={"help": "budget: p50 (ms)"})
    max_size_mb: float | None = field(default=None, metadata={"help": "budget: size (MB)"})
    output_dir: str = field(default="outputs/optimize", metadata={"help": "the run folder"})
    namespace: str = field(default="your-name", metadata={
        "help": "Hub user or organization of the published variants (cards, --push)"})
    name: str = field(default="clinc-intent", metadata={"help": "repositories: NAME-VARIANT"})
    push: bool = field(default=False, metadata={"help": "publish every variant to the Hub"})
    training_seed: int = field(default=42, metadata={"help": "seed of every training step"})

    def setting(self, key: str) -> object:
        """The value set in the config, else the profile's."""
        value = getattr(self, key)
        return PROFILES[self.profile][key] if value is None else value

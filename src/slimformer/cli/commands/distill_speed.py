"""Time distillation training steps with cached teacher logits against the teacher on the fly.

    slimformer distill-speed --config recipes/distill_minilm_offline.yaml --steps 30

Both paths train side by side in one process, step by step, and the median seconds per step
(forward, backward, optimizer) of each go to OUTPUT_DIR/cache_speed.json.
"""

from __future__ import annotations

from dataclasses import dataclass

from slimformer.data.args import DataArguments
from slimformer.training.args import DistillArguments, DistillationTrainingArguments


@dataclass
class SpeedArguments:
    steps: int = 30


ARGUMENTS = (SpeedArguments, DistillArguments, DataArguments, DistillationTrainingArguments)


def main(argv: list[str] | None = None) -> None:
    import json
    from pathlib import Path

    from slimformer.cli.config import parse_args
    from slimformer.training.distill_run import compare_cache_speed

    speed, args, data_args, training_args = parse_args(ARGUMENTS, argv, description=__doc__)
    result = compare_cache_speed(args, data_args, training_args, speed.steps)
    out = Path(training_args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cache_speed.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))

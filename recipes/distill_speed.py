"""Time distillation training steps with cached teacher logits against the teacher on the fly.

    python recipes/distill_speed.py --config recipes/distill_minilm_offline.yaml --steps 30

Both paths train side by side in one process, step by step, and the median seconds per step
(forward, backward, optimizer) of each go to OUTPUT_DIR/cache_speed.json.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from slimformer.args import DataArguments, DistillArguments
from slimformer.config import parse_args
from slimformer.distill import DistillationTrainingArguments
from slimformer.distill_run import compare_cache_speed
from slimformer.errors import run_recipe


@dataclass
class SpeedArguments:
    steps: int = 30


ARGUMENTS = (SpeedArguments, DistillArguments, DataArguments, DistillationTrainingArguments)


def main(argv: list[str] | None = None) -> None:
    speed, args, data_args, training_args = parse_args(ARGUMENTS, argv, description=__doc__)
    result = compare_cache_speed(args, data_args, training_args, speed.steps)
    out = Path(training_args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cache_speed.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    run_recipe(main)

"""Time distillation training steps with cached teacher logits against the teacher on the fly.

    python recipes/distill_speed.py --config recipes/distill_minilm_offline.yaml --steps 30

Both paths train side by side in one process, step by step, and the median seconds per step
(forward, backward, optimizer) of each go to OUTPUT_DIR/cache_speed.json.

The same as `slimformer distill-speed`: this script only hands its arguments to the command.
"""

import sys

from slimformer.cli.main import main

if __name__ == "__main__":
    main(["distill-speed", *sys.argv[1:]])

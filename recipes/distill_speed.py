"""Time distillation training steps with cached teacher logits against the teacher on the fly.

    python recipes/distill_speed.py --config recipes/CONFIG.yaml [--ARGUMENT VALUE ...]

The same as `slimformer distill-speed ...`: this script hands its arguments to that command;
`python recipes/distill_speed.py --help` lists them.
"""

import sys

from slimformer.cli.main import main

if __name__ == "__main__":
    main(["distill-speed", *sys.argv[1:]])

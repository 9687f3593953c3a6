"""`slimformer STEP [--config FILE.yaml] [--flag value ...]`: one subcommand per step.

`slimformer --help` lists the steps without importing any of them (it answers at once); a
step's module, and with it torch or optimum where that step needs them, is imported only when
that step runs or prints its own `--help`.
"""

from __future__ import annotations

import importlib
import logging
import sys

from slimformer import __version__

# step -> one line of help; the step runs slimformer.cli.commands.STEP (with - as _)
COMMANDS: dict[str, str] = {
    "optimize": "the whole chain: the fastest variant within an accuracy budget",
    "finetune": "fine-tune a classifier on CLINC150 (how a teacher is made)",
    "distill": "distil a teacher into a smaller student (or train it on labels)",
    "search": "search distillation settings with Optuna, then train the best",
    "compress": "make every compressed variant: PyTorch int8, ONNX, fused, int8",
    "prune": "prune while training, compact, and optionally export to int8 ONNX",
    "trim-vocab": "keep only the word pieces the training data uses (smaller embeddings)",
    "benchmark": "measure variants side by side: accuracy, size, speed, memory",
    "push": "publish every benchmarked variant to the Hub with its model card",
    "serve": "serve a variant over HTTP (dynamic batching, cache, metrics)",
    "loadtest": "closed-loop load on a running service at several concurrency levels",
    "distill-speed": "time training steps with cached vs live teacher",
}


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [f"slimformer {__version__}: make transformer text classifiers fast and small.", "",
             "usage: slimformer STEP [--config FILE.yaml] [--ARGUMENT VALUE ...]", "",
             "steps:"]
    lines += [f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()]
    lines += ["", "`slimformer STEP --help` lists a step's arguments; each recipe YAML under "
              "recipes/ is a --config for one step."]
    return "\n".join(lines)


def show_progress_logs() -> None:
    """The library logs; the command prints its progress lines (slimformer's own logger only)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("slimformer")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False  # printed once, here, whatever the root logger does


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return
    if argv[0] == "--version":
        print(__version__)
        return
    step = argv[0]
    if step not in COMMANDS:
        print(f"error: unknown step {step!r}; choose one of {', '.join(COMMANDS)} "
              "(slimformer --help)", file=sys.stderr)
        sys.exit(2)
    from slimformer.errors import run_recipe

    module = importlib.import_module(f"slimformer.cli.commands.{step.replace('-', '_')}")
    sys.argv[0] = f"slimformer {step}"  # what the step's --help and errors call it
    show_progress_logs()
    run_recipe(module.main, argv[1:])


if __name__ == "__main__":
    main()

"""Progress lines for training runs whose tqdm bar is off (optimize, logs sent to a file).

A bar redrawn with carriage returns is unreadable in a log and silent with `disable_tqdm`; a
line every `every_s` seconds (and at each evaluation) says where the run is: step and epoch,
the time per step, an ETA, and the latest validation accuracy.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from transformers import TrainerCallback

logger = logging.getLogger(__name__)


def clock(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class ProgressLines(TrainerCallback):
    def __init__(self, every_s: float = 30.0):
        self.every_s = every_s
        self.started = self.last = 0.0
        self.accuracy: float | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.started = self.last = time.monotonic()
        self.first_step = state.global_step  # a resumed run counts its own steps' speed

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float]
                    | None = None, **kwargs: Any) -> None:
        value = (metrics or {}).get("eval_accuracy")
        if value is not None:
            self.accuracy = float(value)
            self.report(state)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        now = time.monotonic()
        if now - self.last >= self.every_s or state.global_step == state.max_steps:
            self.report(state)

    def report(self, state: Any) -> None:
        self.last = now = time.monotonic()
        done = state.global_step - self.first_step
        per_step = (now - self.started) / done if done else 0.0
        left = max(state.max_steps - state.global_step, 0) * per_step
        epochs = state.num_train_epochs or 0
        line = (f"  step {state.global_step}/{state.max_steps}, epoch {state.epoch or 0:.2f}/"
                f"{epochs:g}, {per_step:.2f} s/step, ETA {clock(left)}")
        if self.accuracy is not None:
            line += f", validation accuracy {100 * self.accuracy:.2f}%"
        logger.info(line)

"""Dynamic batching for the HTTP service, and a cache of exact queries.

Requests that arrive while the model is busy, or within `max_wait_ms` of each other, are run
as one batch of at most `max_batch_size` texts (Triton's dynamic batcher with a maximum queue
delay). The model runs on one worker thread of its own, so the event loop keeps accepting and
answering while a batch runs. A bounded queue turns overload into an immediate "busy" answer
instead of an unbounded wait.

No torch here: the service of an ONNX folder runs on the lean predictor alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

Answer = dict[str, Any]


class Overloaded(Exception):
    """The queue is full: answer 429 now rather than queue without bound."""


class AnswerCache:
    """An LRU of exact query texts and their answers (size 0: off)."""

    def __init__(self, size: int):
        self.size = size
        self.items: OrderedDict[str, Answer] = OrderedDict()

    def get(self, text: str) -> Answer | None:
        if not self.size or text not in self.items:
            return None
        self.items.move_to_end(text)
        return self.items[text]

    def put(self, text: str, answer: Answer) -> None:
        if not self.size:
            return
        self.items[text] = answer
        self.items.move_to_end(text)
        while len(self.items) > self.size:
            self.items.popitem(last=False)


@dataclass
class Pending:
    texts: list[str]
    future: asyncio.Future


class Batcher:
    """Merges concurrent requests into model batches; `predict(texts)` answers one request."""

    def __init__(self, run: Callable[[list[str]], list[Answer]], max_batch_size: int,
                 max_wait_ms: float, max_queue: int,
                 on_batch: Callable[[int], None] | None = None):
        self.run = run
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.on_batch = on_batch or (lambda size: None)
        self.queue: asyncio.Queue[Pending] = asyncio.Queue()
        self.queued_texts = 0
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self.task: asyncio.Task | None = None
        self.carried: Pending | None = None  # did not fit the last batch: first in the next

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.loop())

    async def stop(self) -> None:
        """Finish what is queued, then stop the loop and the model thread."""
        while self.queued_texts and self.task and not self.task.done():
            await asyncio.sleep(0.005)
        if self.task:
            self.task.cancel()
        self.executor.shutdown(wait=True)

    @property
    def depth(self) -> int:
        return self.queued_texts

    async def predict(self, texts: Sequence[str]) -> list[Answer]:
        if self.queued_texts + len(texts) > self.max_queue:
            raise Overloaded(f"{self.queued_texts} texts are queued (max_queue "
                             f"{self.max_queue})")
        pending = Pending(list(texts), asyncio.get_running_loop().create_future())
        self.queued_texts += len(texts)
        self.queue.put_nowait(pending)
        return await pending.future

    async def next_batch(self) -> list[Pending]:
        """The first waiting request, then whatever arrives within the window and fits."""
        first, self.carried = self.carried, None
        batch = [first or await self.queue.get()]
        size = len(batch[0].texts)
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while size < self.max_batch_size:
            if self.queue.empty():
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), left)
                except asyncio.TimeoutError:
                    break
            else:
                item = self.queue.get_nowait()
            if size + len(item.texts) > self.max_batch_size:
                self.carried = item
                break
            batch.append(item)
            size += len(item.texts)
        return batch

    async def loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self.next_batch()
            texts = [text for pending in batch for text in pending.texts]
            try:
                answers = await loop.run_in_executor(self.executor, self.run, texts)
            except Exception as err:  # one bad batch fails its requests, not the service
                logger.exception("batch of %d texts failed", len(texts))
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(err)
            else:
                self.on_batch(len(texts))
                start = 0
                for pending in batch:
                    end = start + len(pending.texts)
                    if not pending.future.done():  # (a client gone: nobody waits)
                        pending.future.set_result(answers[start:end])
                    start = end
            finally:
                self.queued_texts -= len(texts)

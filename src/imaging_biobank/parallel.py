"""Work on files in worker processes, results in the order the files came.

Items that need a worker (files, archive members) go to the workers in chunks and come
back in the order they were sent, so a run is repeatable. Items that need none (records
from a PACS, the sources' own reports) pass through in their place. If a worker process
dies (a crash in native code), the pool is rebuilt and the chunks it held are given to a
``retry`` function (e.g. the reference parser, which cannot crash the process).

Nothing here touches a database, so work can start first: ``prime`` submits many chunks at
once, and the workers run while the caller imports and opens what it needs.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Generic, TypeVar

W = TypeVar("W")  # what a worker takes
R = TypeVar("R")  # what comes back, one per item

# chunks submitted before the first result is asked for, when the caller primes
PRIMED_CHUNKS = 64


def chunks(
    items: Iterable[Any], size: int, needs_worker: Callable[[Any], bool]
) -> Iterator[list[Any] | Any]:
    """Items that need a worker in lists of ``size``; each other item on its own, in the
    order the items come."""
    chunk: list[Any] = []
    for item in items:
        if needs_worker(item):
            chunk.append(item)
            if len(chunk) >= size:
                yield chunk
                chunk = []
        else:
            if chunk:
                yield chunk
                chunk = []
            yield item
    if chunk:
        yield chunk


def _start_worker(parent: int, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
    """A worker that ends when its parent does. If the parent is killed (``kill -9``, the
    out-of-memory killer) while a worker sends a result into a full pipe, the worker would
    wait forever: it holds the pipe's reading end too (fork), so the write never fails."""
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    initializer(*initargs)


def _watch_parent(parent: int, every: float = 0.5) -> None:
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


class OrderedPool(Generic[W, R]):
    """``work`` applied to chunks in ``workers`` processes (or in this one, ``workers=0``);
    other items through ``direct``; results in order."""

    def __init__(
        self,
        batches: Iterator[list[W] | R],
        *,
        work: Callable[[list[W]], list[R]],
        retry: Callable[[list[W]], list[R]],
        direct: Callable[[R], R],
        workers: int,
        initializer: Callable[..., None],
        initargs: tuple[Any, ...],
    ):
        self._batches = batches
        self._work, self._retry, self._direct = work, retry, direct
        self._workers = workers
        self._initializer, self._initargs = initializer, initargs
        self._window = max(2, workers * 4)
        self._pending: deque[tuple[list[W] | None, Future[list[R]]]] = deque()
        self._executor: ProcessPoolExecutor | None = None
        if workers > 0:
            self._executor = self._new_executor()
        else:
            initializer(*initargs)

    def prime(self, chunks: int = PRIMED_CHUNKS) -> None:
        """Submit up to ``chunks`` chunks now, before anyone waits for a result."""
        if self._executor is not None:
            self._fill(chunks)

    def results(self) -> Iterator[list[R]]:
        """Lists of results, in the order of the items."""
        if self._executor is None:  # in this process, one chunk at a time
            for batch in self._batches:
                yield self._work(batch) if isinstance(batch, list) else [self._direct(batch)]
            return
        while True:
            self._fill(self._window)
            if not self._pending:
                return
            yield self._next()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_start_worker,
            initargs=(os.getpid(), self._initializer, self._initargs),
        )

    def _fill(self, window: int) -> None:
        assert self._executor is not None
        while len(self._pending) < window:
            batch = next(self._batches, None)
            if batch is None:
                return
            if isinstance(batch, list):
                self._pending.append((batch, self._executor.submit(self._work, batch)))
            else:
                done: Future[list[R]] = Future()
                done.set_result([self._direct(batch)])
                self._pending.append((None, done))

    def _next(self) -> list[R]:
        chunk, future = self._pending.popleft()
        try:
            return future.result()
        except BrokenProcessPool:
            # a worker died: start again, giving this chunk and every chunk that was in
            # flight with it to the retry function
            assert self._executor is not None and chunk is not None
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = executor = self._new_executor()
            for i, (other, _) in enumerate(self._pending):
                if other is not None:
                    self._pending[i] = (other, executor.submit(self._retry, other))
            return executor.submit(self._retry, chunk).result()

"""One offline engine kept open per `Project`, so a warm project does not reconnect per call.

Opening DuckDB and closing it again cost ~20 ms per training set; a Postgres connection a
round trip or three. The kept engine is used under a lock (one call at a time: a DuckDB or
psycopg connection is not for concurrent use), and reopened, with the call retried once,
when the database dropped the connection (a Postgres restart, an idle timeout, a
terminated backend). Errors of the query itself are not retried. A build borrows the kept
engine for all its views (`borrow`) rather than opening and closing one of its own.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from fsql.engines import OfflineEngine, open_engine
from fsql.project import Target

T = TypeVar("T")


class KeptEngine:
    """An offline engine opened on first use and kept until `close()`; thread-safe."""

    def __init__(self, target: Target, root: Path) -> None:
        self.target = target
        self.root = root
        self._lock = threading.Lock()
        self._engine: OfflineEngine | None = None
        self._lent = False  # a build has the kept engine (`borrow`)
        self._close_on_return = False
        self.reopened = 0  # how often a dropped connection was replaced

    def run(self, call: Callable[[OfflineEngine], T]) -> T:
        """Run `call` with the engine, alone; once more on a fresh engine if the connection dropped.

        While a build has borrowed the kept engine, `call` gets one of its own instead of waiting."""
        with self._lock:
            if not self._lent:
                try:
                    return self._run(call)
                finally:
                    if self._engine is not None and not self._engine.keepable:
                        self._discard()
        with self._own() as engine:
            return call(engine)

    def _run(self, call: Callable[[OfflineEngine], T]) -> T:
        engine = self._open()
        try:
            return call(engine)
        except Exception:
            if not engine.broken():
                raise
        self._discard()
        self.reopened += 1
        return call(self._open())

    @contextmanager
    def borrow(self) -> Iterator[OfflineEngine]:
        """The engine for a longer piece of work (a build): the kept one unless another build has
        it (then one of its own, closed after). Calls of `run` meanwhile use engines of their own,
        so neither waits for the other; `close()` meanwhile closes it when it is given back."""
        with self._lock:
            engine = None if self._lent else self._open()
            self._lent = engine is not None
        if engine is None:
            with self._own() as own:
                yield own
            return
        try:
            yield engine
        finally:
            with self._lock:
                self._lent = False
                if self._close_on_return or not engine.keepable or engine.broken():
                    self._close_on_return = False
                    self._discard()

    @contextmanager
    def _own(self) -> Iterator[OfflineEngine]:
        engine = open_engine(self.target, self.root)
        try:
            yield engine
        finally:
            engine.close()

    def _open(self) -> OfflineEngine:
        if self._engine is None or self._engine.broken():
            self._discard()
            self._engine = open_engine(self.target, self.root)
        return self._engine

    def _discard(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            with contextlib.suppress(Exception):  # a dead connection may fail to close; it is gone either way
                engine.close()

    def close(self) -> None:
        with self._lock:
            if self._lent:
                self._close_on_return = True
            else:
                self._discard()

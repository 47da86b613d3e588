"""What a warm `Project` keeps between calls, and when it must forget it.

A service that keeps one `Project` should pay for YAML, Jinja, sqlglot and schema probes
once, not per call. Everything kept here is derived from the project's files, so it is
keyed by their stat: the (path, mtime_ns, ctime_ns, size, inode) of every file under the
definitions and templates directories, of fsql_project.yml and of profiles.yml. Each public
call of `Project` takes a fresh stamp first; when it differs from the last one, every entry
is dropped (definitions, compiled queries, source checks, spine column types) and rebuilt
on first use. Environment variables read by templates are not in the stamp: a process that
changes them should call `Project.forget()`.

Entries derived from one object as well (`get_for`: a query compiled from one Definitions)
are kept under that object's identity.

Entries that depend on data files as well (a spine file's columns, a file source's schema)
put that file's stat into their own key, so a rewritten parquet file is probed again.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
Stat = tuple[int, int, int, int]
# Entries per kind (compiled queries, spines, ...) before the oldest are dropped: a service
# asking for many different spines or feature lists must not grow without bound.
MAX_ENTRIES = 256


def file_stat(path: str | Path) -> Stat | None:
    """(mtime_ns, ctime_ns, size, inode) of a file, or None when it does not exist."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (found.st_mtime_ns, found.st_ctime_ns, found.st_size, found.st_ino)


def tree_stamp(folders: Iterable[Path], files: Iterable[Path | None]) -> tuple[Any, ...]:
    """The stat of every file under `folders` (recursively, sorted) and of each of `files`."""
    stamp: list[Any] = []
    for folder in folders:
        stamp.append((str(folder), file_stat(folder)))
        stamp.extend(_walk(str(folder)))
    stamp.extend((str(path), file_stat(path)) for path in files if path is not None)
    return tuple(stamp)


def _walk(folder: str) -> list[tuple[str, Stat]]:
    found: list[tuple[str, Stat]] = []
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return found
    for entry in entries:
        if entry.is_dir():
            found.extend(_walk(entry.path))
        elif entry.is_file():
            stat = entry.stat()
            found.append((entry.path, (stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size, stat.st_ino)))
    return found


class WarmCache:
    """Values derived from a project's files, dropped together when a file changes; thread-safe."""

    def __init__(self, stamp: Callable[[], tuple[Any, ...]]) -> None:
        self._stamp = stamp
        self._lock = threading.RLock()
        self._seen: tuple[Any, ...] | None = None
        self._entries: dict[str, dict[Hashable, Any]] = {}
        self.generation = 0  # counts invalidations, so holders of derived objects can tell

    def refresh(self) -> bool:
        """Take a fresh stamp; drop every entry when it changed. Returns whether it changed."""
        stamp = self._stamp()
        with self._lock:
            if stamp == self._seen:
                return False
            self._seen = stamp
            self._entries.clear()
            self.generation += 1
            return True

    def forget(self) -> None:
        """Drop everything (e.g. after changing environment variables that templates read)."""
        with self._lock:
            self._seen = None
            self._entries.clear()
            self.generation += 1

    def get(self, kind: str, key: Hashable, make: Callable[[], T]) -> T:
        """The entry of `kind` at `key`, made (outside the lock) when missing."""
        with self._lock:
            entries = self._entries.setdefault(kind, {})
            if key in entries:
                value: T = entries[key]
                return value
            generation = self.generation
        value = make()
        with self._lock:
            # An invalidation while it was being made: hand it back, but do not keep it.
            if generation == self.generation:
                entries = self._entries.setdefault(kind, {})
                if len(entries) >= MAX_ENTRIES:
                    entries.pop(next(iter(entries)))
                entries[key] = value
        return value

    def get_for(self, owner: object, kind: str, key: Hashable, make: Callable[[], T]) -> T:
        """`get` for a value derived from `owner` (e.g. one Definitions object) as well: kept
        under its identity, and made again for any other owner (a build still holding the
        definitions it started with after the files changed must not leave its value for the
        new ones). The owner is held with the value, so its id cannot be reused meanwhile."""
        held, value = self.get(kind, (id(owner), key), lambda: (owner, make()))
        return value if held is owner else make()

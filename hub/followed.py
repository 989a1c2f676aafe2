"""Caches of what was read from files that follow the files, and keep the last good version of a broken one.

A value is kept with the identity of the files it was read from (modification time, size and inode: one `stat`
per file per call, never a read). When a file changes, is added or is removed, the next call reads it again. When
the new content is broken (a ConfigError), the call answers with the last good value this process read, and the
problem is on record (`problems()`) until the file is fixed or no longer used. With no good value ever read, the
call raises the problem as a `BrokenFile`. So a running `hub serve` and a long-lived Airflow process see a
steward's change on their next request or task, and a mistake in one file takes away nothing that worked.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Hashable, Iterable, TypeVar

from hub.errors import ConfigError

__all__ = ["BrokenFile", "Followed", "Problem", "problems", "stamp", "yaml_document"]

log = logging.getLogger(__name__)
T = TypeVar("T")
SHOWN_PROBLEMS = 5  # in one error's message; `problems` lists them all


@dataclass(frozen=True)
class Problem:
    """What is wrong in a file and where: `line` and `column` count from 1; None where there is no one place."""

    path: str  # the file as it was read: for the steward's tools, never shown on a public page
    line: int | None
    column: int | None
    message: str  # names no folder, only files by name

    @property
    def file(self) -> str:
        return Path(self.path).name

    def located(self, full: bool = False) -> str:
        """`file:line:column: message`, as compilers write it (the whole path with `full`)."""
        place = [self.path if full else self.file, *(str(n) for n in (self.line, self.column) if n is not None)]
        return f"{':'.join(place)}: {self.message}"

    def __str__(self) -> str:
        return self.located()

    def public(self) -> dict:
        """What a public page or API answer may show: the file's name, the place and the message."""
        return {"file": self.file, "line": self.line, "column": self.column, "message": self.message}

    def sort_key(self) -> tuple:
        """By file, then place; a problem of no one place after those of the file's lines."""
        return self.path, self.line is None, self.line or 0, self.column or 0, self.message


class BrokenFile(ConfigError):
    """A file the hub reads (a standard, a code list) cannot be used: its problems, each with file, line, column."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(set(problems), key=Problem.sort_key)
        shown = "; ".join(map(str, self.problems[:SHOWN_PROBLEMS]))
        more = len(self.problems) - SHOWN_PROBLEMS
        super().__init__(shown + (f"; and {more} more problems" if more > 0 else ""))


def stamp(files: Iterable[Path]) -> tuple:
    """The identity of the files as they are now: (mtime_ns, size, inode) of each, None for a missing one."""
    out = []
    for path in files:
        try:
            st = os.stat(path)
        except OSError:
            out.append(None)
        else:
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(out)


def _broken(error: ConfigError, files: tuple[Path, ...]) -> BrokenFile:
    """The error as a BrokenFile; a plain ConfigError is put on the first file, its `name: ` prefix taken off."""
    if isinstance(error, BrokenFile):
        return error
    message = str(error)
    if files:
        message = message.removeprefix(f"{files[0].name}: ")
    return BrokenFile([Problem(str(files[0]) if files else "", None, None, message)])


class _Entry:
    __slots__ = ("files", "load", "value", "good", "bad", "error")

    def __init__(self, files: tuple[Path, ...], load: Callable) -> None:
        self.files, self.load = files, load
        self.value = None
        self.good: tuple | None = None  # the stamp the value was read at; None: never read well
        self.bad: tuple | None = None  # the stamp the files were broken at, while they still are
        self.error: BrokenFile | None = None


# Loads nest (a code list's rows need its index): one reentrant lock for every cache. Loads are rare (a file
# changed); a call that finds its value current takes no lock.
_LOCK = threading.RLock()
_CACHES: list[Followed] = []


class Followed:
    """Values read from files, each under a key, each read again when one of its files changes.

    `get(key, files, load)` answers `load()`'s value for `key` while `files` stay as they were when it was read.
    `files` are the files `load` reads (a folder, for its list of files); they are part of the key.
    """

    def __init__(self, what: str) -> None:
        self.what = what  # what the values are, for the log
        self._entries: dict[tuple, _Entry] = {}
        _CACHES.append(self)

    def get(self, key: Hashable, files: Iterable[Path], load: Callable[[], T], *, strict: bool = False) -> T:
        """The value, read again when `files` changed. A broken file keeps the last good value, unless `strict`
        (a steward's check wants the file as it is now); with none, its BrokenFile is raised."""
        files = tuple(Path(f) for f in files)
        now = stamp(files)
        entry = self._entries.get((key, files))
        if entry is not None and (entry.good == now or entry.bad == now):
            return self._answer(entry, strict)
        with _LOCK:
            entry = self._entries.get((key, files))
            if entry is None:
                entry = self._entries[(key, files)] = _Entry(files, load)
            entry.load = load
            if entry.good == now or entry.bad == now:  # read by another thread meanwhile
                return self._answer(entry, strict)
            try:
                value = load()
            except ConfigError as e:
                entry.error = _broken(e, files)  # before `bad`: a call that finds `bad` current reads it unlocked
                entry.bad = now
                if entry.good is not None:
                    log.warning("%s: %s; the last good version stays in use", self.what, entry.error)
                return self._answer(entry, strict)
            entry.value, entry.good, entry.bad = value, now, None  # in this order, for the same reason
            entry.error = None
            return value

    @staticmethod
    def _answer(entry: _Entry, strict: bool):
        if entry.bad is None or (entry.good is not None and not strict):
            return entry.value
        raise BrokenFile(entry.error.problems)  # a new exception each time: a raised one collects tracebacks

    def _refresh(self, scope: set[Path] | None) -> list[Problem]:
        found = []
        for (key, files), entry in list(self._entries.items()):
            if entry.bad is None or (scope is not None and not scope.intersection(files)):
                continue
            if stamp(files) != entry.bad:  # changed since: fixed, or broken another way
                try:
                    self.get(key, files, entry.load)
                except ConfigError:
                    pass
            if entry.bad is not None and entry.error is not None:
                found.extend(entry.error.problems)
        return found


def problems(scope: Iterable[Path] | None = None) -> list[Problem]:
    """The problems of the files this process cannot use as they are now (it keeps the last good version of
    each), each once, by file and line. With `scope`, only those of the files in it (files that were removed or
    are no longer used fall out of scope); a file changed since its problem was seen is read again first."""
    wanted = None if scope is None else {Path(p) for p in scope}
    found = {p for cache in _CACHES for p in cache._refresh(wanted)}
    if wanted is not None:
        found = {p for p in found if Path(p.path) in wanted}
    return sorted(found, key=Problem.sort_key)


def yaml_document(path: Path, max_bytes: int = 1 << 20):
    """A YAML file's composed document (its nodes carry their line and column), or a BrokenFile saying why not."""
    import yaml

    try:
        data = path.read_bytes()
        if len(data) > max_bytes:
            raise BrokenFile([Problem(str(path), None, None, f"{len(data)} bytes, more than {max_bytes}")])
        return yaml.compose(data.decode("utf-8-sig"), Loader=yaml.SafeLoader)
    except OSError as e:
        raise BrokenFile([Problem(str(path), None, None, f"cannot be read ({e.strerror or type(e).__name__})")])
    except UnicodeDecodeError as e:
        raise BrokenFile([Problem(str(path), None, None, f"not UTF-8 text (byte {e.start})")]) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise BrokenFile([Problem(str(path), mark.line + 1 if mark else None, mark.column + 1 if mark else None,
                                  f"not valid YAML: {e.problem or e.context}")]) from None
    except yaml.YAMLError as e:
        raise BrokenFile([Problem(str(path), None, None, f"not valid YAML: {type(e).__name__}")]) from None

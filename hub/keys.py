"""Keys the hub keeps outside the catalog database: from the environment, else made once in a 0600 file in the home."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

__all__ = ["home_key"]


def home_key(home: Path, env: str, relative: str, *, create: bool = True) -> bytes | None:
    """The key named by environment variable `env` if set, else the one kept in `home / relative` (hex text).

    A missing file is made with a new random key (mode 0600, in a 0700 folder) unless `create` is false, in
    which case None says there is no key. Every hub process of one home thus uses the same key. The file is
    made with O_EXCL: of two processes making it at once, one writes it and both read that one.
    """
    given = os.environ.get(env)
    if given:
        return given.encode()
    path = home / relative
    if not path.exists():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
    stamp = _stamp(path)
    known = _READ.get(path)
    if known is not None and known[0] == stamp:
        return known[1]
    value = path.read_text().strip()
    while not value:  # the other process has created the file and not yet written it
        time.sleep(0.01)
        value = path.read_text().strip()
        stamp = _stamp(path)
    _READ[path] = (stamp, value.encode())
    return value.encode()


# Keys as read, by file, with the file's identity then: a key is asked for on every call of the service bus, and a
# replaced file (a new key) is read again at once.
_READ: dict[Path, tuple[tuple, bytes]] = {}


def _stamp(path: Path) -> tuple:
    st = path.stat()
    return st.st_mtime_ns, st.st_size, st.st_ino

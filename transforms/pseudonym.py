"""Pseudonyms for identifiers (NIK): a keyed hash that joins across datasets and cannot be reversed without the key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

import pyarrow as pa

__all__ = ["KEY_ENV", "PREFIX", "key", "pseudonym", "pseudonyms"]

KEY_ENV = "HUB_PSEUDONYM_KEY"
PREFIX = "psn_"
_KEY_FILE = "secrets/pseudonym.key"


def key(home: Path) -> bytes:
    """The hub's pseudonym key: HUB_PSEUDONYM_KEY if set, else a random key kept in HUB_HOME (made once, 0600).

    Every hub process of one home uses the same key, so a person has one pseudonym in every dataset and every
    run; a new key gives everyone new pseudonyms.
    """
    given = os.environ.get(KEY_ENV)
    if given:
        return given.encode()
    path = home / _KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            # O_EXCL: of two processes making the key at once, one writes it and both read that one.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
    value = path.read_text().strip()
    while not value:  # the other process has created the file and not yet written it
        time.sleep(0.01)
        value = path.read_text().strip()
    return value.encode()


def pseudonym(value: str, secret: bytes) -> str:
    """`psn_` and the first 64 bits of HMAC-SHA256(secret, value) in base32 (13 letters and digits): no collision
    in a city's population, and never a run of 16 digits that could be read as a NIK."""
    digest = hmac.new(secret, value.encode(), hashlib.sha256).digest()[:8]
    return PREFIX + base64.b32encode(digest).decode().rstrip("=").lower()


def pseudonyms(values: pa.Array, secret: bytes) -> pa.Array:
    """`pseudonym` of each value of a text array; nulls stay null."""
    return pa.array([None if v is None else pseudonym(v, secret) for v in values.to_pylist()], pa.string())

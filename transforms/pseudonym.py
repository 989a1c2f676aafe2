"""Pseudonyms for identifiers (NIK): a keyed hash that joins across datasets and cannot be reversed without the key."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pyarrow as pa

from hub.keys import home_key

__all__ = ["KEY_ENV", "PREFIX", "key", "pseudonym", "pseudonyms"]

KEY_ENV = "HUB_PSEUDONYM_KEY"
PREFIX = "psn_"
_KEY_FILE = "secrets/pseudonym.key"


def key(home: Path) -> bytes:
    """The hub's pseudonym key: HUB_PSEUDONYM_KEY if set, else a random key kept in HUB_HOME (made once, 0600).

    Every hub process of one home uses the same key, so a person has one pseudonym in every dataset and every
    run; a new key gives everyone new pseudonyms.
    """
    return home_key(home, KEY_ENV, _KEY_FILE)


def pseudonym(value: str, secret: bytes) -> str:
    """`psn_` and the first 64 bits of HMAC-SHA256(secret, value) in base32 (13 letters and digits): no collision
    in a city's population, and never a run of 16 digits that could be read as a NIK."""
    digest = hmac.new(secret, value.encode(), hashlib.sha256).digest()[:8]
    return PREFIX + base64.b32encode(digest).decode().rstrip("=").lower()


def pseudonyms(values: pa.Array, secret: bytes) -> pa.Array:
    """`pseudonym` of each value of a text array; nulls stay null."""
    return pa.array([None if v is None else pseudonym(v, secret) for v in values.to_pylist()], pa.string())

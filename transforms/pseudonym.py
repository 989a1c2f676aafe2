"""Pseudonyms for identifiers (NIK): a keyed hash that joins across datasets and cannot be reversed without the key."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

from hub.keys import home_key

__all__ = ["KEY_ENV", "PREFIX", "key", "pseudonym", "sql_pseudonym"]

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


_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


def sql_pseudonym(text_sql: str, secret: bytes) -> str:
    """A DuckDB expression giving `pseudonym` of the VARCHAR expression `text_sql` (null stays null), the same
    to the letter, computed by DuckDB in parallel rather than value by value in Python.

    HMAC-SHA256 is written out (RFC 2104): SHA-256 of the key's outer pad and of the SHA-256 of its inner pad
    and the value. The expression holds the padded key: it is for the hub's own connections only, and never
    shown or logged.
    """
    if len(secret) > 64:  # a key longer than SHA-256's block is hashed first
        secret = hashlib.sha256(secret).digest()
    secret = secret.ljust(64, b"\0")
    inner, outer = (bytes(b ^ pad for b in secret).hex() for pad in (0x36, 0x5C))
    digest = f"sha256(unhex('{outer}') || unhex(sha256(unhex('{inner}') || encode({text_sql}))))"
    bits = f"('0x' || left({digest}, 16))::UBIGINT"  # the first 64 bits
    # Base32 takes 5 bits a letter: 12 letters, then the last 4 bits followed by a 0 bit.
    letters = [f"({bits} >> {59 - 5 * i}) & 31" for i in range(12)] + [f"({bits} & 15) << 1"]
    # DuckDB computes the repeated digest once per row (common subexpressions).
    return f"'{PREFIX}' || " + " || ".join(f"substr('{_BASE32}', ({n})::INTEGER + 1, 1)" for n in letters)

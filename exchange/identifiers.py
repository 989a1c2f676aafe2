"""X-Road identifiers of client subsystems and services, as PR-REST writes them in URL paths and headers."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from urllib.parse import quote, unquote

from hub.errors import HubError

__all__ = [
    "METADATA_SERVICES", "MAX_PART_CHARS", "ClientId", "IdentifierError", "ServiceId", "split_service_path",
]

# PR-REST 4.8, Identifier Character Restrictions: the only characters an identifier value may hold.
_ALLOWED = re.compile(r"[A-Za-z0-9'()+,\-.=?]+")
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Written as-is in a path segment (RFC 3986 sub-delims); of the allowed characters only `?` is encoded.
_SAFE = "'()+,="
# The spec leaves lengths to the server ("lengths of the strings need to be checked"): X-Road's own
# configuration stores each part in a column of 255 characters.
MAX_PART_CHARS = 255
# Service codes of PR-MREST's metadata services, answered by the hub itself for every provider subsystem.
METADATA_SERVICES = ("listMethods", "allowedMethods", "getOpenAPI")

_LABELS = {"instance": "X-Road instance", "member_class": "member class", "member_code": "member code",
           "subsystem": "subsystem code", "service_code": "service code"}


class IdentifierError(HubError):
    """An X-Road client or service identifier that is malformed; the message names the part and the fault."""


def _shown(text: str, limit: int = 64) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _check_value(what: str, label: str, value) -> None:
    if not isinstance(value, str) or not value:
        raise IdentifierError(f"{what}: the {label} is empty")
    if len(value) > MAX_PART_CHARS:
        raise IdentifierError(f"{what}: the {label} has {len(value)} characters, more than {MAX_PART_CHARS}")
    if not _ALLOWED.fullmatch(value):
        bad = next(c for c in value if not _ALLOWED.fullmatch(c))
        raise IdentifierError(f"{what}: the {label} {_shown(value)} holds {bad!r}; an X-Road identifier holds only "
                              "letters A-Z and a-z, digits and the symbols ' ( ) + , - . = ?")


def _decoded(what: str, label: str, part: str) -> str:
    """One part of an identifier as written on the wire (percent-encoded UTF-8), decoded."""
    if _PERCENT.search(part):
        raise IdentifierError(f"{what}: the {label} {_shown(part)} has a % not followed by two hexadecimal digits")
    try:
        return unquote(part, errors="strict")
    except UnicodeDecodeError:
        raise IdentifierError(f"{what}: the {label} {_shown(part)} is not percent-encoded UTF-8") from None


def _parse(cls, text, what: str, form: str):
    if not isinstance(text, str) or not text.strip():
        raise IdentifierError(f"{what}: empty; expected {form}")
    parts = text.strip().split("/")
    names = [f.name for f in fields(cls)]
    if len(parts) != len(names):
        hint = (" (the hub needs the subsystem code: each credential and grant belongs to one subsystem)"
                if len(parts) == len(names) - 1 else "")
        raise IdentifierError(f"{what}: {len(parts)} parts separated by /, expected {len(names)}: {form}{hint}")
    return cls(*(_decoded(what, _LABELS[n], p) for n, p in zip(names, parts)))


@dataclass(frozen=True, order=True)
class ClientId:
    """A client subsystem, `INSTANCE/CLASS/MEMBER/SUBSYSTEM` (the X-Road-Client header). Values are decoded;
    str() gives the encoded form. The subsystem code, optional in PR-REST, is required here."""

    instance: str
    member_class: str
    member_code: str
    subsystem: str

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_value("client identifier", _LABELS[f.name], getattr(self, f.name))

    @classmethod
    def parse(cls, text: str) -> ClientId:
        """`INSTANCE/CLASS/MEMBER/SUBSYSTEM`, each part percent-encoded UTF-8."""
        return _parse(cls, text, "client identifier", "INSTANCE/CLASS/MEMBER/SUBSYSTEM")

    def __str__(self) -> str:
        return "/".join(quote(getattr(self, f.name), safe=_SAFE) for f in fields(self))


@dataclass(frozen=True, order=True)
class ServiceId:
    """A service, `INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE` (the path after /r1/, the X-Road-Service header).

    PR-REST names a REST service without a version (versions belong to SOAP services), so there is none here.
    """

    instance: str
    member_class: str
    member_code: str
    subsystem: str
    service_code: str

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_value("service identifier", _LABELS[f.name], getattr(self, f.name))

    @classmethod
    def parse(cls, text: str) -> ServiceId:
        """`INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE`, each part percent-encoded UTF-8."""
        return _parse(cls, text, "service identifier", "INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE")

    @property
    def provider(self) -> ClientId:
        """The subsystem that provides the service."""
        return ClientId(self.instance, self.member_class, self.member_code, self.subsystem)

    def __str__(self) -> str:
        return "/".join(quote(getattr(self, f.name), safe=_SAFE) for f in fields(self))


def split_service_path(path: str) -> tuple[ServiceId, str]:
    """The service and the rest of a request path after `/r1/`: `INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE[/rest]`.

    The rest (`/v1/bar`, `/3271...`, or "") is returned as written, still percent-encoded, and is never quoted in
    an error: it may hold a NIK.
    """
    parts = path.removeprefix("/").split("/", 5)
    if len(parts) < 5:
        raise IdentifierError(f"service identifier: {len(parts)} parts separated by /, expected 5: "
                              "INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE")
    service = ServiceId.parse("/".join(parts[:5]))
    return service, "/" + parts[5] if len(parts) == 6 else ""

"""Compare two versions of a standard: which changes are compatible, which break existing data or users."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.codelists import codes
from schemas.standards import Field, Standard

__all__ = ["Change", "diff", "version_problem"]

# Bounds where a larger value accepts fewer records, and where a smaller one does.
_LOWER_BOUNDS = ("minLength", "minimum", "exclusiveMinimum")
_UPPER_BOUNDS = ("maxLength", "maximum", "exclusiveMaximum")
_DOCUMENTATION = ("title", "description", "title_en", "description_en", "concept", "unit")


@dataclass(frozen=True)
class Change:
    field: str | None  # None: the standard as a whole
    what: str
    breaking: bool

    def __str__(self) -> str:
        where = f"field {self.field}" if self.field else "standard"
        return f"{'BREAKING  ' if self.breaking else 'compatible'} {where}: {self.what}"


def diff(old: Standard, new: Standard) -> list[Change]:
    """Every difference between two versions, each classified.

    Breaking: a record valid under `old` may be invalid under `new`, or a user of `old`'s data loses
    something (a field, a key). Compatible: everything valid before stays valid and keeps its meaning.
    """
    changes: list[Change] = []
    before = {f.name: f for f in old.fields}
    after = {f.name: f for f in new.fields}
    for name in before.keys() - after.keys():
        changes.append(Change(name, "removed (or renamed)", True))
    for name in after.keys() - before.keys():
        required = after[name].required and not after[name].nullable
        changes.append(Change(name, "added as required" if required else "added as optional", required))
    for name in before.keys() & after.keys():
        changes.extend(_field_changes(before[name], after[name]))
    if old.primary_key != new.primary_key:
        changes.append(Change(None, f"primary key {list(old.primary_key)} -> {list(new.primary_key)}", True))
    for key, value in new.metadata.items():
        if old.metadata.get(key) != value:
            changes.append(Change(None, f"metadata {key}: {old.metadata.get(key)!r} -> {value!r}", False))
    if (old.title, old.description) != (new.title, new.description):
        changes.append(Change(None, "title or description", False))
    return sorted(changes, key=lambda c: (not c.breaking, c.field or "", c.what))


def _field_changes(a: Field, b: Field) -> list[Change]:
    changes = []
    name = a.name
    if a.type != b.type:
        widening = (a.type, b.type) == ("integer", "number")
        changes.append(Change(name, f"type {a.type} -> {b.type}", not widening))
    if a.nullable != b.nullable:
        changes.append(Change(name, "now allows null" if b.nullable else "no longer allows null", a.nullable))
    if a.required != b.required:
        changes.append(Change(name, "now required" if b.required else "now optional", b.required))
    if a.format != b.format:
        changes.append(Change(name, f"format {a.format} -> {b.format}", b.format is not None))
    ca, cb = a.constraints, b.constraints
    for key in _LOWER_BOUNDS + _UPPER_BOUNDS:
        if ca.get(key) == cb.get(key):
            continue
        if key not in cb:
            tighter = False
        elif key not in ca:
            tighter = True
        else:
            tighter = cb[key] > ca[key] if key in _LOWER_BOUNDS else cb[key] < ca[key]
        changes.append(Change(name, f"{key} {ca.get(key)} -> {cb.get(key)}", tighter))
    if ca.get("multipleOf") != cb.get("multipleOf"):
        # Still compatible when every multiple of the old divisor is a multiple of the new one.
        old_d, new_d = ca.get("multipleOf"), cb.get("multipleOf")
        looser = new_d is None or (old_d is not None and (old_d / new_d).is_integer())
        changes.append(Change(name, f"multipleOf {old_d} -> {new_d}", not looser))
    if ca.get("pattern") != cb.get("pattern"):
        # Whether one regular expression accepts all another does is not decidable here: assume not.
        changes.append(Change(name, f"pattern {ca.get('pattern')!r} -> {cb.get('pattern')!r}", "pattern" in cb))
    for key in ("enum", "const"):
        if ca.get(key) != cb.get(key):
            old_values = _values(ca, key)
            new_values = _values(cb, key)
            narrowed = new_values is not None and (old_values is None or not old_values <= new_values)
            changes.append(Change(name, f"{key} {ca.get(key)!r} -> {cb.get(key)!r}", narrowed))
    if a.code_list != b.code_list:
        old_codes = set(codes(a.code_list)) if a.code_list else None
        new_codes = set(codes(b.code_list)) if b.code_list else None
        narrowed = new_codes is not None and (old_codes is None or not old_codes <= new_codes)
        lost = f", {len(old_codes - new_codes)} codes no longer valid" if old_codes and new_codes and narrowed else ""
        changes.append(Change(name, f"code list {a.code_list} -> {b.code_list}{lost}", narrowed))
    if a.personal_data != b.personal_data or a.classification != b.classification:
        changes.append(Change(name, f"personal data {a.personal_data} -> {b.personal_data}, "
                                    f"classification {a.classification} -> {b.classification}", False))
    for attribute in _DOCUMENTATION:
        if getattr(a, attribute) != getattr(b, attribute):
            changes.append(Change(name, attribute.replace("_", " "), False))
    return changes


def _values(constraints: dict, key: str) -> set | None:
    if key not in constraints:
        return None
    value = constraints[key]
    return {repr(v) for v in value} if key == "enum" else {repr(value)}


def _version(standard: Standard) -> tuple[int, ...]:
    return tuple(int(p) for p in standard.version.split("."))


def version_problem(old: Standard, new: Standard, changes: list[Change]) -> str | None:
    """Why `new`'s version number does not fit its changes, or None when it does."""
    if _version(new) <= _version(old):
        return f"{new.ref} must have a higher version than {old.ref}"
    if any(c.breaking for c in changes) and _version(new)[0] == _version(old)[0]:
        return f"{new.ref} makes breaking changes to {old.ref} but keeps major version {_version(old)[0]}"
    return None

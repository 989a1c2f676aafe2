"""Compile a data standard into a Great Expectations suite; every expectation carries its reason code."""

from __future__ import annotations

from schemas.codelists import codes
from schemas.standards import Standard

__all__ = ["compile_suite", "expectation_specs", "has_json_type", "type_specs"]

# Which JSON values each keyword applies to (JSON Schema ignores a value of another type). A field has one
# type, and a value not of that type already fails `field:type`; so a keyword is compiled only where it can
# apply to a value of the field's type, and sees only such values (schemas.validation arranges that).
_STRING_RULES = {"pattern", "format", "minLength", "maxLength"}
_NUMBER_RULES = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}


def _applies(keyword: str, field_type: str) -> bool:
    if keyword in _STRING_RULES:
        return field_type == "string"
    if keyword in _NUMBER_RULES:
        return field_type in ("integer", "number")
    return True


def _of_type(values: list, field_type: str) -> list:
    """The enum/const values a value of the field's type can equal under JSON equality (1 == 1.0, true != 1)."""
    kind = "number" if field_type == "integer" else field_type  # 1.5 can never equal an integer: harmless
    return [v for v in values if has_json_type(v, kind)]


def has_json_type(value, json_type: str) -> bool:
    """Whether a Python value read from JSON, Arrow or pandas is of a JSON Schema type (draft 2020-12).

    bool is tested first: Python's True is an int, JSON's true is not a number. A float with no fraction
    (1.0) is an integer, as draft 2020-12 says.
    """
    import numpy as np

    if isinstance(value, (bool, np.bool_)):
        return json_type == "boolean"
    if isinstance(value, (int, np.integer)):
        return json_type in ("integer", "number")
    if isinstance(value, (float, np.floating)):
        return json_type == "number" or (json_type == "integer" and float(value).is_integer())
    if isinstance(value, str):
        return json_type == "string"
    return False


def _bound(c: dict, inclusive: str, exclusive: str, tighter) -> tuple:
    """The effective bound and whether it is strict, when a field may give both the inclusive and exclusive one."""
    if inclusive in c and exclusive in c:
        return (c[exclusive], True) if tighter(c[exclusive], c[inclusive]) else (c[inclusive], False)
    if exclusive in c:
        return c[exclusive], True
    return c.get(inclusive), False


def type_specs(standard: Standard) -> list[dict]:
    """Each field's JSON type check (reason `field:type`), run by schemas.validation before the field's rules.

    Kept apart from the rules: the data dictionary shows a field's type in its own column, not as a rule.
    """
    return [{"expectation": "ExpectColumnValuesToHaveJsonType", "kwargs": {"column": f.name, "json_type": f.type},
             "reason": f"{f.name}:type"} for f in standard.fields]


def expectation_specs(standard: Standard) -> list[dict]:
    """The suite as plain data: expectation class name, its arguments and the reason code it reports.

    Kept separate from Great Expectations objects so it can be read, diffed and tested as a golden file.
    """
    specs: list[dict] = []

    def add(kind: str, field: str, rule: str, **kwargs) -> None:
        specs.append({"expectation": kind, "kwargs": kwargs, "reason": f"{field}:{rule}"})

    for f in standard.fields:
        c = {k: v for k, v in f.constraints.items() if _applies(k, f.type)}
        if f.required and not f.nullable:
            add("ExpectColumnValuesToNotBeNull", f.name, "required", column=f.name)
        if "const" in c:
            add("ExpectColumnValuesToBeInSet", f.name, "const", column=f.name, value_set=_of_type([c["const"]], f.type))
        if "enum" in c:
            add("ExpectColumnValuesToBeInSet", f.name, "enum", column=f.name, value_set=_of_type(c["enum"], f.type))
        if f.code_list:
            add("ExpectColumnValuesToBeInSet", f.name, "code_list", column=f.name, value_set=codes(f.code_list))
        if "pattern" in c:
            add("ExpectColumnValuesToMatchPattern", f.name, "pattern", column=f.name, pattern=c["pattern"])
        if f.format and _applies("format", f.type):
            add("ExpectColumnValuesToMatchFormat", f.name, "format", column=f.name, format=f.format)
        if "minLength" in c or "maxLength" in c:
            add("ExpectColumnValueLengthsToBeBetween", f.name, "length", column=f.name,
                min_value=c.get("minLength"), max_value=c.get("maxLength"))
        if {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} & set(c):
            low, strict_low = _bound(c, "minimum", "exclusiveMinimum", lambda e, i: e >= i)
            high, strict_high = _bound(c, "maximum", "exclusiveMaximum", lambda e, i: e <= i)
            add("ExpectColumnValuesToBeBetween", f.name, "range", column=f.name,
                min_value=low, max_value=high, strict_min=strict_low, strict_max=strict_high)
        if "multipleOf" in c:
            add("ExpectColumnValuesToBeMultipleOf", f.name, "multiple_of", column=f.name, value=c["multipleOf"])
    key = list(standard.primary_key)
    if len(key) == 1:
        add("ExpectColumnValuesToBeUnique", key[0], "duplicate_key", column=key[0])
    elif key:
        add("ExpectCompoundColumnsToBeUnique", "+".join(key), "duplicate_key", column_list=key)
    return specs


def compile_suite(standard: Standard, types: bool = False):
    """The Great Expectations suite for a standard (imports GE lazily: it is slow to import).

    With `types`, each field's type check (type_specs) comes first: schemas.validation runs that suite.
    """
    import great_expectations as gx

    from schemas import expectations as ours

    specs = (type_specs(standard) if types else []) + expectation_specs(standard)
    expectations = [
        (getattr(ours, s["expectation"], None) or getattr(gx.expectations, s["expectation"]))(
            **s["kwargs"], meta={"reason": s["reason"]})
        for s in specs
    ]
    return gx.ExpectationSuite(name=standard.ref, expectations=expectations, meta={"standard": standard.ref})

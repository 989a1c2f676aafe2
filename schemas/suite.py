"""Compile a data standard into a Great Expectations suite; every expectation carries its reason code."""

from __future__ import annotations

from schemas.codelists import codes
from schemas.standards import Standard

__all__ = ["compile_suite", "expectation_specs"]

# A JSON Schema date (RFC 3339 full-date); calendar validity is checked where dates are parsed.
ISO_DATE = r"^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])$"


def expectation_specs(standard: Standard) -> list[dict]:
    """The suite as plain data: expectation class name, its arguments and the reason code it reports.

    Kept separate from Great Expectations objects so it can be read, diffed and tested as a golden file.
    """
    specs: list[dict] = []

    def add(kind: str, field: str, rule: str, **kwargs) -> None:
        specs.append({"expectation": kind, "kwargs": kwargs, "reason": f"{field}:{rule}"})

    for f in standard.fields:
        c = f.constraints
        if f.required and not f.nullable:
            add("ExpectColumnValuesToNotBeNull", f.name, "required", column=f.name)
        if "const" in c:
            add("ExpectColumnValuesToBeInSet", f.name, "const", column=f.name, value_set=[c["const"]])
        if "enum" in c:
            add("ExpectColumnValuesToBeInSet", f.name, "enum", column=f.name, value_set=list(c["enum"]))
        if f.code_list:
            add("ExpectColumnValuesToBeInSet", f.name, "code_list", column=f.name, value_set=codes(f.code_list))
        if "pattern" in c:
            add("ExpectColumnValuesToMatchRegex", f.name, "pattern", column=f.name, regex=c["pattern"])
        if f.format == "date":
            add("ExpectColumnValuesToMatchRegex", f.name, "format", column=f.name, regex=ISO_DATE)
        if "minLength" in c or "maxLength" in c:
            add("ExpectColumnValueLengthsToBeBetween", f.name, "length", column=f.name,
                min_value=c.get("minLength"), max_value=c.get("maxLength"))
        bounds = {k: c[k] for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") if k in c}
        if bounds:
            add("ExpectColumnValuesToBeBetween", f.name, "range", column=f.name,
                min_value=bounds.get("minimum", bounds.get("exclusiveMinimum")),
                max_value=bounds.get("maximum", bounds.get("exclusiveMaximum")),
                strict_min="exclusiveMinimum" in bounds, strict_max="exclusiveMaximum" in bounds)
    key = list(standard.primary_key)
    if len(key) == 1:
        add("ExpectColumnValuesToBeUnique", key[0], "duplicate_key", column=key[0])
    elif key:
        add("ExpectCompoundColumnsToBeUnique", "+".join(key), "duplicate_key", column_list=key)
    return specs


def compile_suite(standard: Standard):
    """The Great Expectations suite for a standard (imports GE lazily: it is slow to import)."""
    import great_expectations as gx

    expectations = [
        getattr(gx.expectations, s["expectation"])(**s["kwargs"], meta={"reason": s["reason"]})
        for s in expectation_specs(standard)
    ]
    return gx.ExpectationSuite(name=standard.ref, expectations=expectations, meta={"standard": standard.ref})

"""Data standards (JSON Schema 2020-12), code lists, and their compilation to Great Expectations suites."""

from schemas.standards import Field, Standard, list_standards, load_problems, load_standard

__all__ = ["Field", "Standard", "list_standards", "load_problems", "load_standard"]

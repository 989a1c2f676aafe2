"""Harmonization: declarative mappings from an agency's columns to a standard's fields."""

from transforms.mapping import Harmonized, harmonize

__all__ = ["Harmonized", "harmonize"]

"""Harmonization: declarative mappings from an agency's columns to a standard's fields."""

from transforms.mapping import Harmonized, Harmonizer, harmonize

__all__ = ["Harmonized", "Harmonizer", "harmonize"]

"""Synthetic demo data: agency systems to run the hub against."""

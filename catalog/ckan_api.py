"""The CKAN-compatible Action API under /api/3/action/, so CKAN clients and harvesters can read the hub."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]


def router(settings) -> APIRouter:
    return APIRouter()

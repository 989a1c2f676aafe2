"""The web portal: server-rendered pages in Indonesian and English that work without JavaScript."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]


def router(settings) -> APIRouter:
    return APIRouter()

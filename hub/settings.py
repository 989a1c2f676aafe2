"""Where the hub keeps its state and finds its registry, from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ROOT", "Settings", "load_settings", "configure_airflow"]

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    home: Path
    catalog_url: str
    registry: Path

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse"

    @property
    def staging(self) -> Path:
        return self.home / "staging"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def demo(self) -> Path:
        return self.home / "demo"


def load_settings() -> Settings:
    """Read HUB_HOME, HUB_CATALOG_URL and HUB_REGISTRY; defaults keep everything under var/."""
    home = Path(os.environ.get("HUB_HOME") or ROOT / "var").resolve()
    catalog_url = os.environ.get("HUB_CATALOG_URL") or f"sqlite:///{home / 'catalog.db'}"
    registry = Path(os.environ.get("HUB_REGISTRY") or ROOT / "connectors" / "registry").resolve()
    return Settings(home=home, catalog_url=catalog_url, registry=registry)


def configure_airflow(settings: Settings) -> None:
    """Point Airflow at this checkout's airflow.cfg and this hub's home.

    Must run before `airflow` is imported: Airflow reads its configuration once, at import.
    """
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    os.environ["HUB_ROOT"] = str(ROOT)
    os.environ["HUB_HOME"] = str(settings.home)
    os.environ["HUB_REGISTRY"] = str(settings.registry)
    os.environ["HUB_CATALOG_URL"] = settings.catalog_url
    os.environ["AIRFLOW_HOME"] = str(settings.airflow_home)
    os.environ["AIRFLOW_CONFIG"] = str(ROOT / "airflow.cfg")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

"""Where the hub keeps its state and finds its registry, from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ROOT", "Settings", "data_dirs", "load_settings", "configure_airflow", "positive_setting", "public_url",
           "services_dir"]

ROOT = Path(__file__).resolve().parent.parent


def positive_setting(name: str, default, kind=float):
    """A positive number from the environment variable `name` (`default` without it); a wrong one is a
    ConfigError naming the variable."""
    import math

    from hub.errors import ConfigError

    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not value > 0 or not math.isfinite(value):
        raise ConfigError(f"{name} must be a positive {'whole ' if kind is int else ''}number, not {raw!r}")
    return value


def public_url() -> str:
    """HUB_PUBLIC_URL: where people and systems reach this hub's API, for the links in mails and payloads."""
    return (os.environ.get("HUB_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/")


def data_dirs() -> tuple[Path, ...]:
    """HUB_DATA_DIRS: folders besides the home that file sources may read (os.pathsep-separated)."""
    parts = (os.environ.get("HUB_DATA_DIRS") or "").split(os.pathsep)
    return tuple(Path(p).resolve() for p in parts if p.strip())


def services_dir() -> Path:
    """HUB_SERVICES: the folder of exchange service registrations (default: the checkout's exchange/services)."""
    return Path(os.environ.get("HUB_SERVICES") or ROOT / "exchange" / "services").resolve()


@dataclass(frozen=True)
class Settings:
    home: Path
    catalog_url: str
    registry: Path
    # Where registrations may point besides `home` (HUB_DATA_DIRS): an agency's drop folder, a mounted share.
    data_dirs: tuple[Path, ...] = field(default_factory=data_dirs)
    # The exchange's service registrations (HUB_SERVICES), one YAML file per service.
    services: Path = field(default_factory=services_dir)

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
    """Read HUB_HOME, HUB_CATALOG_URL, HUB_REGISTRY, HUB_DATA_DIRS and HUB_SERVICES; defaults keep everything under
    var/."""
    home = Path(os.environ.get("HUB_HOME") or ROOT / "var").resolve()
    catalog_url = os.environ.get("HUB_CATALOG_URL") or f"sqlite:///{home / 'catalog.db'}"
    registry = Path(os.environ.get("HUB_REGISTRY") or ROOT / "connectors" / "registry").resolve()
    return Settings(home=home, catalog_url=catalog_url, registry=registry, data_dirs=data_dirs(),
                    services=services_dir())


def configure_airflow(settings: Settings) -> None:
    """Point Airflow at this checkout's airflow.cfg and this hub's home.

    Must run before `airflow` is imported: Airflow reads its configuration once, at import.
    """
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    os.environ["HUB_ROOT"] = str(ROOT)
    os.environ["HUB_HOME"] = str(settings.home)
    os.environ["HUB_REGISTRY"] = str(settings.registry)
    os.environ["HUB_CATALOG_URL"] = settings.catalog_url
    os.environ["HUB_DATA_DIRS"] = os.pathsep.join(str(p) for p in settings.data_dirs)
    os.environ["HUB_SERVICES"] = str(settings.services)
    os.environ["AIRFLOW_HOME"] = str(settings.airflow_home)
    os.environ["AIRFLOW_CONFIG"] = str(ROOT / "airflow.cfg")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # Every Airflow process of one home signs and checks task tokens and UI sessions with the same keys.
    from hub.keys import home_key

    os.environ["AIRFLOW__API_AUTH__JWT_SECRET"] = home_key(
        settings.home, "AIRFLOW__API_AUTH__JWT_SECRET", "secrets/airflow-jwt.key").decode()
    os.environ["AIRFLOW__API__SECRET_KEY"] = home_key(
        settings.home, "AIRFLOW__API__SECRET_KEY", "secrets/airflow-api.key").decode()

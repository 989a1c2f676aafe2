"""A demo hub for service-bus tests: SIAK's residents published and a services folder of its own, and client
subsystems' tokens as `hub exchange clients add` prints them."""

from __future__ import annotations

import shutil
from pathlib import Path

from _served import hub
from hub.settings import ROOT

SHIPPED = ROOT / "exchange" / "services"


def siak_published(home: Path, *shipped: str, people: int = 480, dinsos: int = 120) -> dict:
    """Build the demo in `home`, copy the shipped service registrations named into `home/services`, publish
    Disdukcapil's `disdukcapil_siak`: the environment that points the hub at that folder (HUB_SERVICES)."""
    from demo.agencies import build

    build(home, people_count=people, dinsos_count=dinsos)
    services = home / "services"
    services.mkdir()
    for name in shipped:
        shutil.copy(SHIPPED / name, services)
    env = {"HUB_SERVICES": str(services)}
    hub(home, "run", "disdukcapil_siak", env=env)
    return env


def client_token(home: Path, env: dict, client: str, *options: str) -> str:
    """Register a client subsystem: its token, the last line `hub exchange clients add` prints."""
    return hub(home, "exchange", "clients", "add", client, *options, env=env).stdout.strip().splitlines()[-1]

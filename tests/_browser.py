"""Debian's headless Chromium for the portal tests, installed with apt-get where missing, driven by Playwright."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

__all__ = ["CHROMIUM", "chromium_path", "launch"]

CHROMIUM = Path("/usr/bin/chromium")


def _install_chromium() -> None:
    if os.geteuid() != 0:
        raise RuntimeError(
            f"{CHROMIUM} not found; install Debian's Chromium with `sudo apt-get update && sudo apt-get install -y chromium`"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        result = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"`{shlex.join(cmd)}` failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    if not CHROMIUM.is_file():
        raise RuntimeError(f"installed the chromium package but found no {CHROMIUM}")


def chromium_path() -> Path:
    """Debian's Chromium, installed first if this machine has none."""
    if not CHROMIUM.is_file():
        _install_chromium()
    return CHROMIUM


def launch(playwright):
    """A headless Chromium browser (Debian's, not one Playwright downloads) from a started Playwright."""
    return playwright.chromium.launch(executable_path=str(chromium_path()), headless=True)


if __name__ == "__main__":
    print(chromium_path())

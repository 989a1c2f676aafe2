"""Debian packages the tests need (a PostgreSQL or Redis server), installed with apt-get when missing."""

from __future__ import annotations

import os
import shlex
import subprocess

__all__ = ["apt_install"]


def apt_install(package: str, hint: str) -> None:
    """Install `package` with apt-get, as root; otherwise a RuntimeError saying how (`hint`: what is missing)."""
    if os.geteuid() != 0:
        raise RuntimeError(f"{hint}; install it with `sudo apt-get update && sudo apt-get install -y {package}`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", package]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"`{shlex.join(cmd)}` failed ({done.returncode}):\n{done.stdout}{done.stderr}")

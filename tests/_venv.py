"""Outside tools whose pins conflict with the hub's, each in its own virtualenv under test-output/cache."""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

from hub.settings import ROOT

CACHE = ROOT / "test-output" / "cache"  # git-ignored with the rest of test-output/


def tool_venv(*requirements: str) -> Path:
    """The virtualenv holding exactly `requirements` (pinned, from the package registry), made once and reused."""
    home = CACHE / ("venv-" + "-".join(r.replace("==", "-") for r in requirements))
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{home.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel sessions: one builds it, the others wait for it
        if not (home / "installed").is_file():  # written last: a venv half made by a killed session is made again
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(home)], check=True)
            subprocess.run([str(home / "bin" / "python"), "-m", "pip", "install", "--quiet",
                            "--disable-pip-version-check", *requirements], check=True, timeout=600)
            (home / "installed").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    return home

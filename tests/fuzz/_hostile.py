"""What the fuzz tests share: planted personal data and secrets, hostile text, the budget, and the checks."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from hub.errors import HubError

# Values planted in the generated data and environment: none may appear in an error or a log line.
NIK = "3271014101900042"
NAME = "Kartini Wulandari"
SECRET = "hub-fuzz-s3cr3t-7f3a9c"
SECRET_ENV = "HUB_FUZZ_TOKEN"
PLANTED = (NIK, NAME, NAME.upper(), SECRET)


def budget(examples: int) -> settings:
    """A bounded run: `examples` inputs (times HUB_FUZZ_SCALE, for a longer hunt by hand), no deadline (two
    shared cores), and no health check failing a test because its inputs are big or slow to make."""
    scale = float(os.environ.get("HUB_FUZZ_SCALE", "1"))
    return settings(max_examples=max(1, int(examples * scale)), deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much, HealthCheck.large_base_example,
                                           HealthCheck.function_scoped_fixture])


# Text agencies' files hold, and text that breaks naive readers.
AWKWARD = ["", " ", "\t", '"', '""', "'", ";", ",", "|", "\n", "\r\n", "\r", "\x00", "\ufeff", "\u2028",
           "Désirée", "D’Angelo", "€", "ß", "😀", "e\u0301", "3,27101E+15", "'3271014101900042",
           "16 Desember 2014", "31/02/2020", "32.71.01.1001", "3271011001", "LK", "PR", "Islam", "1", "007",
           "-1e999", "NaN", "null", "true", "=1+1", "<script>", "${HUB_HOME}", "../../etc/passwd"]
cells = st.one_of(st.sampled_from([NIK, NAME, *AWKWARD]), st.text(max_size=12),
                  st.text(alphabet=st.characters(codec="utf-8"), max_size=30))


def messages_of(error: BaseException | None, caplog=None, *texts: str) -> list[str]:
    """Every text a person or a log would see: the error, the captured log records, and other output."""
    found = [str(error)] if error is not None else []
    for record in (caplog.records if caplog is not None else []):
        found.append(record.getMessage())
        if record.exc_text:
            found.append(record.exc_text)
    found.extend(texts)
    return found


def assert_no_leak(texts: list[str]) -> None:
    for text in texts:
        for planted in PLANTED:
            assert planted not in text, f"planted value {planted!r} leaked into: {text[:500]!r}"


def assert_hub_error(error: BaseException, *names: str) -> None:
    """Only the hub's own errors, naming what they are about (one of `names`: the source, the file)."""
    assert isinstance(error, HubError), f"{type(error).__name__} is not a HubError: {error!r}"[:2000]
    assert any(name in str(error) for name in names), f"the error names none of {names}: {error}"[:2000]
    assert "Traceback" not in str(error)


def capture_all_logs(caplog) -> None:
    caplog.set_level(logging.DEBUG)


def home_with_registry(root: Path) -> tuple[Path, Path]:
    home = root / "home"
    registry = home / "registry"
    registry.mkdir(parents=True, exist_ok=True)
    (home / "incoming").mkdir(exist_ok=True)
    return home, registry

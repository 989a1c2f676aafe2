"""A run killed at any step is retried from the last committed state: no record lost, none duplicated.

The kills are real: a child process runs the pipeline and is killed with SIGKILL at the step under test.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import func, select

from catalog import storage
from catalog.db import Run, SourceState, session
from catalog.query import query
from hub.pipeline import publish, run_source

SOURCES = ["disdukcapil_siak", "dinsos_dtks"]  # incremental (upsert by key) and a full extract (replace)


def killed(settings, source_id: str, after: str) -> None:
    """Run the source in a child process that is killed right after `after` ("stage" or "iceberg_commit")."""
    program = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from catalog import storage
        from hub import pipeline
        from hub.settings import Settings

        def then_die(step):
            def run(*args, **kwargs):
                step(*args, **kwargs)
                os.kill(os.getpid(), signal.SIGKILL)
            return run

        if {after!r} == "stage":
            pipeline.stage = then_die(pipeline.stage)
        else:
            storage.commit_source = then_die(storage.commit_source)
        settings = Settings(home=Path({str(settings.home)!r}), catalog_url={settings.catalog_url!r},
                            registry=Path({str(settings.registry)!r}))
        run_id = "killed__" + {after!r}
        pipeline.stage(settings, {source_id!r}, run_id)
        pipeline.publish(settings, {source_id!r}, run_id)
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=600)
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]


def published(settings, source_id: str) -> tuple[int, int]:
    table = query(settings, f"SELECT count(*) AS n, count(DISTINCT nik) AS keys FROM {source_id}")
    return table["n"][0].as_py(), table["keys"][0].as_py()


def runs(settings, source_id: str) -> list[str]:
    with session(settings.catalog_url) as s:
        return list(s.scalars(select(Run.status).where(Run.dataset_id == source_id).order_by(Run.id)))


@pytest.mark.parametrize("source_id", SOURCES)
def test_killed_between_validation_and_publish(demo_settings, source_id):
    killed(demo_settings, source_id, after="stage")
    assert runs(demo_settings, source_id) == []  # nothing published, nothing recorded

    # Airflow retries the failed publish task of the same run: the staged files are still there.
    retried = publish(demo_settings, source_id, "killed__stage")
    assert retried.status == "published"
    assert published(demo_settings, source_id) == (retried.rows_published, retried.rows_published)

    again = run_source(demo_settings, source_id)
    assert published(demo_settings, source_id) == (retried.rows_published, retried.rows_published)
    assert again.status == "unchanged" and again.snapshot_id == retried.snapshot_id


@pytest.mark.parametrize("source_id", SOURCES)
def test_killed_between_the_iceberg_commit_and_the_state_commit(demo_settings, source_id):
    killed(demo_settings, source_id, after="iceberg_commit")
    # The table has the records, but the catalog has no run and no cursor: the run did not happen for it.
    assert storage.snapshot_rows(demo_settings, f"{storage.HARMONIZED}.{source_id}") > 0
    assert runs(demo_settings, source_id) == []
    with session(demo_settings.catalog_url) as s:
        assert s.get(SourceState, source_id) is None

    rerun = run_source(demo_settings, source_id)  # a new run starts from the last committed cursor
    assert rerun.rows_in == rerun.rows_published + rerun.rows_quarantined + rerun.rows_repeated
    assert published(demo_settings, source_id) == (rerun.rows_published, rerun.rows_published)
    assert runs(demo_settings, source_id) == ["published"]
    with session(demo_settings.catalog_url) as s:
        state = s.get(SourceState, source_id)
        assert (state is not None and state.cursor is not None) == (source_id == "disdukcapil_siak")

    after = run_source(demo_settings, source_id)
    assert published(demo_settings, source_id) == (rerun.rows_published, rerun.rows_published)
    assert after.status == "unchanged"
    if source_id == "disdukcapil_siak":
        assert after.rows_in == 0  # the cursor moved past everything published
        with session(demo_settings.catalog_url) as s:
            assert s.scalar(select(func.count()).select_from(Run).where(Run.dataset_id == source_id)) == 2

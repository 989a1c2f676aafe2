"""The demo's SITB and OSS exports through the real pipeline: what each publishes and quarantines, and why."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from catalog.db import Dataset, QuarantinedRow, Run, session
from catalog.query import query
from hub.pipeline import integrate, run_source


def _quarantined(settings, source_id: str) -> dict[int, list[str]]:
    with session(settings.catalog_url) as s:
        rows = s.scalars(select(QuarantinedRow).where(QuarantinedRow.dataset_id == source_id)
                         .order_by(QuarantinedRow.row_number)).all()
        return {r.row_number: r.reasons for r in rows}


def test_sitb_publishes_its_cases_and_quarantines_the_wrong_lines(demo_settings):
    # 480 people: 28 cases (6%), then the five wrong lines; the last repeats the first case's number.
    result = run_source(demo_settings, "dinkes_sitb")
    assert (result.rows_in, result.rows_published, result.rows_quarantined) == (33, 27, 6)
    assert _quarantined(demo_settings, "dinkes_sitb") == {
        1: ["nomor_registrasi:duplicate_key"],
        29: ["nik:pattern"],
        30: ["tanggal_diagnosis:unparseable_date"],
        31: ["lokasi_anatomi:unmapped_code"],
        32: ["kode_wilayah:code_list"],
        33: ["nomor_registrasi:duplicate_key"],
    }
    with session(demo_settings.catalog_url) as s:
        run = s.scalars(select(Run).where(Run.dataset_id == "dinkes_sitb")).one()
        dataset = s.get(Dataset, "dinkes_sitb")
        assert (dataset.classification, dataset.standard) == ("rahasia", "kasus_tbc")
    assert run.quality_score == pytest.approx(27 / 33)
    assert run.validation["checks"]["hasil_pengobatan:enum"]["unexpected_count"] == 0
    # Every patient is a resident SIAK knows; SITB's labels became the standard's codes.
    run_source(demo_settings, "disdukcapil_siak")
    unknown = query(demo_settings, "SELECT count(*) AS n FROM dinkes_sitb t "
                                   "LEFT JOIN disdukcapil_siak p USING (nik) WHERE p.nik IS NULL")
    assert unknown.to_pylist() == [{"n": 0}]
    codes = query(demo_settings, "SELECT list(DISTINCT jenis_kelamin ORDER BY jenis_kelamin) AS sex, "
                                 "list(DISTINCT tipe_diagnosis ORDER BY tipe_diagnosis) AS tipe, "
                                 "count(*) FILTER (WHERE hasil_pengobatan IS NULL) AS on_treatment, "
                                 "count(*) FILTER (WHERE kode_faskes LIKE 'P3271%') AS by_puskesmas "
                                 "FROM dinkes_sitb").to_pylist()[0]
    assert codes["sex"] == ["1", "2"] and codes["tipe"] == ["bakteriologis", "klinis"]
    assert 0 < codes["on_treatment"] < 27 and codes["by_puskesmas"] > 27 // 2
    assert integrate(demo_settings, "kasus_tbc")["rows"] == 27


def test_oss_publishes_its_businesses_and_quarantines_the_wrong_rows(demo_settings):
    # 480 people: 33 businesses (7%), then the five wrong rows; the last repeats the first business's NIB.
    result = run_source(demo_settings, "dpmptsp_oss")
    assert (result.rows_in, result.rows_published, result.rows_quarantined) == (38, 32, 6)
    assert _quarantined(demo_settings, "dpmptsp_oss") == {
        1: ["nib:duplicate_key"],
        34: ["nib:pattern"],
        35: ["kbli:pattern"],
        36: ["skala_usaha:unmapped_code"],
        37: ["jumlah_tenaga_kerja:type"],
        38: ["nib:duplicate_key"],
    }
    with session(demo_settings.catalog_url) as s:
        dataset = s.get(Dataset, "dpmptsp_oss")
        assert (dataset.classification, dataset.standard) == ("publik", "umkm")
    # Numbers Excel kept as numbers arrive as the codes they were: NIB and kelurahan code as text.
    rows = query(demo_settings, "SELECT * FROM dpmptsp_oss").to_pylist()
    assert all(len(r["nib"]) == 13 and r["kode_wilayah"].startswith("32.71.") for r in rows)
    assert {r["skala_usaha"] for r in rows} <= {"mikro", "kecil", "menengah"}
    assert all(r["jumlah_tenaga_kerja"] >= 1 and len(r["kbli"]) == 5 for r in rows)
    assert all(r["nama_pemilik"] is None or r["nama_pemilik"] == r["nama_pemilik"].upper() for r in rows)
    assert integrate(demo_settings, "umkm")["rows"] == 32

"""docs/mapping.md's three worked registrations, run on their files: what comes out is what the page says."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from connectors.registry import load_source
from hub.pipeline import stage_into

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def staged(tmp_path: Path, source_id: str) -> tuple[dict, list[dict], dict[int, dict]]:
    """The run's summary, the records it would publish (by row) and the rows it quarantines."""
    source = load_source(EXAMPLES / "registry" / f"{source_id}.yaml", tmp_path, (EXAMPLES,))
    summary = stage_into(tmp_path, source, "example")
    data = pq.read_table(tmp_path / "data.parquet")
    rows = pq.read_table(tmp_path / "rows.parquet")["_row"].to_pylist()
    published = dict(zip(rows, data.to_pylist()))
    quarantined = {q["row"]: {"reasons": q["reasons"], "details": json.loads(q["details"] or "{}")}
                   for q in pq.read_table(tmp_path / "quarantine.parquet").to_pylist()}
    return summary, published, quarantined


def test_the_social_assistance_export(tmp_path):
    summary, published, quarantined = staged(tmp_path, "dinsos_penyaluran")
    assert published == {
        1: {"nik": "3271014101900001", "nama": "siti aminah", "program": "PKH", "periode": "2024-01",
            "nominal": 600000, "kode_wilayah": "32.71.06.1001"},
        2: {"nik": "3271010202850002", "nama": "JOSÉ RAMOS", "program": "BPNT", "periode": "2024-01",
            "nominal": 200000, "kode_wilayah": "32.71.02.1002"},
        3: {"nik": "3271014303920003", "nama": "Dewi Lestari", "program": "PKH", "periode": "2024-02",
            "nominal": 600000, "kode_wilayah": "32.71.01.1001"},
    }
    key = "nik+program+periode:duplicate_key"
    assert {row: q["reasons"] for row, q in quarantined.items()} == {
        4: ["nik:scientific_notation"], 5: ["kode_wilayah:region_unknown"],
        7: ["kode_wilayah:region_not_in_kecamatan"], 8: [key], 9: [key], 10: ["nominal:money"]}
    assert quarantined[8]["details"][key]["rows"] == [9] and quarantined[9]["details"][key]["rows"] == [8]
    assert summary["rows_in"] == 10 and summary["rows_repeated"] == 1
    assert summary["validation"]["duplicates"]["rows"] == [6]


def test_the_business_list_kept_in_excel(tmp_path):
    summary, published, quarantined = staged(tmp_path, "diskopukm_umkm")
    assert {row: q["reasons"] for row, q in quarantined.items()} == {
        4: ["kbli:identifier_length"], 5: ["nib:identifier_length"]}
    assert [published[r]["nib"] for r in (1, 2, 3)] == ["9120001234567", "9120001234568", "9120001234569"]
    assert [published[r]["nama_pemilik"] for r in (1, 2)] == ["Nining Suryani", "Hendra Wijaya"]
    assert {published[r]["skala_usaha"] for r in published} == {"mikro", "kecil", "menengah"}
    assert {r: published[r]["kode_wilayah"] for r in (1, 2, 6, 9)} == {
        1: "32.71.05.1003", 2: "32.71.03.1007", 6: "32.71.04.1011", 9: "32.71.05.1001"}
    assert published[7]["jumlah_tenaga_kerja"] == 1200
    assert summary["rows_in"] == 9


def test_the_register_with_dates_in_four_forms(tmp_path):
    summary, published, quarantined = staged(tmp_path, "kec_bogor_barat_penduduk")
    assert {row: q["reasons"] for row, q in quarantined.items()} == {7: ["kode_wilayah:region_unknown"]}
    assert {r: str(p["tanggal_lahir"]) for r, p in published.items()} == {
        1: "1985-12-16", 2: "1985-12-16", 3: "2001-03-03", 4: "1970-04-04", 5: "2008-05-05", 6: "1999-06-06",
        8: "1988-08-08"}
    assert {r: p["kode_wilayah"] for r, p in published.items()} == {
        1: "32.71.04.1006", 2: "32.71.04.1006", 3: "32.71.04.1003", 4: "32.71.04.1002", 5: "32.71.04.1003",
        6: "32.71.04.1007", 8: "32.71.04.1001"}
    assert [published[r]["agama"] for r in (1, 2, 3, 4, 6)] == ["1", "1", "3", "1", "4"]
    assert published[5]["status_perkawinan"] is None and published[3]["alamat"] is None
    assert published[1]["alamat"] == "Jl. Raya Dramaga No. 5, RT 01/RW 02"
    assert summary["rows_in"] == 8


@pytest.mark.parametrize("source_id", ["dinsos_penyaluran", "diskopukm_umkm", "kec_bogor_barat_penduduk"])
def test_every_example_on_the_page_is_the_registration_in_the_folder(source_id):
    page = (EXAMPLES.parent / "mapping.md").read_text(encoding="utf-8")
    registration = (EXAMPLES / "registry" / f"{source_id}.yaml").read_text(encoding="utf-8")
    body = "\n".join(line for line in registration.splitlines() if not line.startswith("#"))
    assert body.strip() in page

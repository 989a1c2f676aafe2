"""`hub quarantine show`: a run's rejected rows as sent, with the reasons in words, as a table, CSV and XLSX, on a
SQLite and a PostgreSQL catalog."""

from __future__ import annotations

import csv
import io
import json
import stat

import openpyxl
import pytest

from _served import hub
from catalog.db import Dataset, session
from catalog.metadata import quarantine_summary
from hub.pipeline import find_source, run_source
from hub.reasons import explain
from hub.settings import Settings
from schemas import load_standard

# An agency's export, semicolon-separated, its columns in its own order: two good rows and one of each trouble.
COLUMNS = ["Tanggal Lahir", "NIK", "Nama", "JK", "Agama", "Kelurahan", "Catatan"]
LINES = [
    "01/02/1980;3271010101800001;Siti Aminah;P;1;3271011001;",                       # 1 good
    "02/03/1981;3271010203810002;Budi Santoso;L;1;3271011001;",                      # 2 same NIK as 7
    "03/04/1982;3271010304820003;Andi;L;1;3271011001;satu;dua",                      # 3 one column too many
    "04/05/1983;3,27101E+15;Rina Wati;P;1;3271011001;",                              # 4 scientific notation
    '05/06/1984;3271010506840005;"=HYPERLINK(""http://x.invalid"",""klik"")";X;1;3271011001;',  # 5 unmapped JK
    '31/02/1987;3271013102870006;Dewi;P;1;3271011001;"baris satu\nbaris dua"',        # 6 a day that never was
    "06/07/1985;3271010203810002;Joko;L;1;3271011001;",                              # 7 same NIK as 2
    "07/08/1986;3271010708860008;Wawan;L;1;3271999999;",                             # 8 not a Kota Bogor code
    "08/09/1987;32710109098700;Désirée Siregar;P;1;3271011001;+62 812 3456 7890",     # 9 NIK too short
    "09/10/1988;3271010910880010;;P;1;3271011001;@catatan",                          # 10 no name
    "10/11/1989;3271011011890011;Rudi;L;1;3271011001;",                              # 11 good
]
REGISTRATION = """
id: uji_karantina
title: Uji karantina
agency: {code: dinsos, name: Dinas Sosial Kota Bogor}
standard: penduduk@1.0.0
kind: file
options: {path: "${HUB_HOME}/incoming/penduduk.csv", delimiter: ";"}
mapping:
  nik: {from: NIK, normalize: nik}
  nama: {from: Nama, normalize: name}
  jenis_kelamin: {from: JK, crosswalk: {L: "1", P: "2"}}
  agama: {from: Agama}
  tanggal_lahir: {from: Tanggal Lahir, date_formats: ["%d/%m/%Y"]}
  kode_wilayah: {from: Kelurahan, normalize: kode_wilayah}
"""
SOURCE = "uji_karantina"


@pytest.fixture
def ran(tmp_path, catalog_url):
    """A hub home with the source above, run once: (settings, the environment of `hub`, the run's result)."""
    home = tmp_path / "home"
    (home / "incoming").mkdir(parents=True)
    (home / "incoming" / "penduduk.csv").write_text(";".join(COLUMNS) + "\n" + "\n".join(LINES) + "\n",
                                                   encoding="utf-8")
    registry = tmp_path / "registry"
    registry.mkdir()
    (registry / f"{SOURCE}.yaml").write_text(REGISTRATION, encoding="utf-8")
    settings = Settings(home=home, catalog_url=catalog_url, registry=registry)
    result = run_source(settings, SOURCE)
    env = {"HUB_REGISTRY": str(registry), "HUB_CATALOG_URL": catalog_url}
    return settings, env, result


def _expected(settings, lang: str, values: bool = True) -> tuple[list[str], list[list]]:
    """The export as it should be, built from the catalog's own rows and hub.reasons."""
    with session(settings.catalog_url) as s:
        q = quarantine_summary(s, s.get(Dataset, SOURCE), limit=1000, records=True)
    standard = load_standard("penduduk@1.0.0")
    source = find_source(settings, SOURCE)
    added = ["nomor_baris", "kode_alasan", "alasan"] if lang == "id" else ["row_number", "reason_codes", "reasons"]
    line = "baris_asli" if lang == "id" else "raw_line"
    header = ([*COLUMNS, line] if values else []) + added
    rows = []
    for r in q["rows"]:
        cells = ([r["record"].get(c) for c in COLUMNS] + [r["record"].get("_line")]) if values else []
        cells += [r["row"], "; ".join(r["reasons"]),
                  "\n".join(explain(code, standard=standard, source=source, details=r["details"].get(code), lang=lang)
                            for code in r["reasons"])]
        rows.append(cells)
    return header, rows


def test_the_run_rejects_what_the_file_gets_wrong(ran):
    settings, _, result = ran
    with session(settings.catalog_url) as s:
        q = quarantine_summary(s, s.get(Dataset, SOURCE), limit=1000, records=True)
    assert {r["row"]: r["reasons"] for r in q["rows"]} == {
        2: ["nik:duplicate_key"], 3: ["_record:column_count"], 4: ["nik:scientific_notation"],
        5: ["jenis_kelamin:unmapped_code"], 6: ["tanggal_lahir:unparseable_date"], 7: ["nik:duplicate_key"],
        8: ["kode_wilayah:code_list"], 9: ["nik:pattern"], 10: ["nama:required"],
    }
    assert (result.rows_in, result.rows_quarantined) == (11, 9)


def test_csv_has_the_rows_as_sent_then_the_reasons(ran, tmp_path):
    settings, env, _ = ran
    out = tmp_path / "karantina.csv"
    done = hub(settings.home, "quarantine", "show", SOURCE, "--format", "csv", "--output", str(out), env=env)
    assert "9 rejected rows" in done.stderr
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 with a byte-order mark: Excel reads it as UTF-8
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # records as received: for the operator only
    found = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";"))
    header, rows = _expected(settings, "id")
    assert found[0] == header
    # CSV has no "absent": None is an empty cell; a value Excel would run as a formula gets an apostrophe.
    defused = {'=HYPERLINK("http://x.invalid","klik")', "@catatan"}
    as_text = [["" if c is None else ("'" + c if c in defused else str(c)) for c in row] for row in rows]
    assert found[1:] == as_text
    by_row = {r[len(COLUMNS) + 1]: r for r in found[1:]}
    assert by_row["3"][len(COLUMNS)] == "03/04/1982;3271010304820003;Andi;L;1;3271011001;satu;dua"  # the raw line
    assert by_row["6"][COLUMNS.index("Catatan")] == "baris satu\nbaris dua"
    assert by_row["9"][COLUMNS.index("Nama")] == "Désirée Siregar"
    assert by_row["9"][COLUMNS.index("Catatan")] == "+62 812 3456 7890"  # a number, not a formula: as sent
    assert "16 digit angka" in by_row["9"][-1] and by_row["9"][-2] == "nik:pattern"


def test_xlsx_holds_every_value_as_text(ran, tmp_path):
    settings, env, _ = ran
    out = tmp_path / "quarantine.xlsx"
    hub(settings.home, "quarantine", "show", SOURCE, "--format", "xlsx", "--output", str(out), "--lang", "en",
        env=env)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    sheet = openpyxl.load_workbook(out)["quarantine"]
    found = [[c.value for c in row] for row in sheet.iter_rows()]
    header, rows = _expected(settings, "en")
    assert found[0] == header
    # Blank cells are absent in XLSX too ("" read back as None).
    assert found[1:] == [[None if c == "" else c for c in row] for row in rows]
    for row in sheet.iter_rows(min_row=2, max_col=len(COLUMNS) + 1):
        assert all(c.data_type == "s" for c in row if c.value is not None)  # text, never a number or formula
    assert sheet.column_dimensions["B"].number_format == "@"  # what the agency types there stays text
    assert sheet.freeze_panes == "A2"


def test_table_shows_each_row_with_its_values_and_reasons(ran):
    settings, env, _ = ran
    done = hub(settings.home, "quarantine", "show", SOURCE, env=env)
    text = done.stdout
    assert "9 baris dikarantina" in text and "\nbaris 9\n" in text
    assert "Désirée Siregar" in text and "baris satu\\nbaris dua" in text
    assert "- nik:pattern: NIK (nik, dari kolom \"NIK\") tidak sesuai pola: harus 16 digit angka" in text
    assert "- _record:column_count: " in text
    english = hub(settings.home, "quarantine", "show", SOURCE, "--lang", "en", env=env).stdout
    assert "9 rows quarantined" in english and "\nrow 9\n" in english and "does not match the pattern" in english
    # Values go to the output only: nothing about them on stderr, where logs go.
    assert "Siti" not in done.stderr and "3271" not in done.stderr


def test_csv_to_standard_output_and_the_run_option(ran):
    settings, env, result = ran
    done = hub(settings.home, "quarantine", "show", SOURCE, "--format", "csv", "--run", result.run_id, env=env)
    lines = done.stdout.lstrip("\ufeff").splitlines()
    assert lines[0].split(";")[-3:] == ["nomor_baris", "kode_alasan", "alasan"]
    unknown = hub(settings.home, "quarantine", "show", SOURCE, "--run", "no_such_run", check=False, env=env)
    assert unknown.returncode == 2 and "has no run 'no_such_run'" in unknown.stderr
    refused = hub(settings.home, "quarantine", "show", SOURCE, "--format", "xlsx", check=False, env=env)
    assert refused.returncode == 2 and "--output FILE" in refused.stderr
    nowhere = hub(settings.home, "quarantine", "show", SOURCE, "--format", "csv", "--output",
                  str(settings.home / "no_such_folder" / "q.csv"), check=False, env=env)
    assert nowhere.returncode == 2 and "cannot write there" in nowhere.stderr and "Traceback" not in nowhere.stderr
    never = hub(settings.home, "quarantine", "show", "no_such_source", check=False, env=env)
    assert never.returncode == 2 and "no dataset 'no_such_source'" in never.stderr


def test_each_export_is_in_the_audit_log_without_values(ran, tmp_path):
    settings, env, result = ran
    hub(settings.home, "quarantine", "show", SOURCE, "--format", "csv", "--output", str(tmp_path / "q.csv"), env=env)
    entries = json.loads(hub(settings.home, "audit", "who-accessed", SOURCE, "--json", env=env).stdout)
    read = [e for e in entries if e["action"] == "quarantine.read"]
    assert len(read) == 1 and read[0]["role"] == "operator" and read[0]["client"] == "cli"
    assert read[0]["details"] == {"run_id": result.run_id, "rows": 9, "records": True, "format": "csv"}


def test_rows_are_read_a_page_at_a_time(ran, monkeypatch):
    """Pages of two rows give the same export as one page: the rows are streamed, not loaded whole."""
    from catalog import metadata
    from hub.quarantine import csv_chunks, rejects

    settings, _, _ = ran
    with rejects(settings, SOURCE) as found:
        whole = b"".join(csv_chunks(found))
    monkeypatch.setattr(metadata, "QUARANTINE_PAGE", 2)
    with rejects(settings, SOURCE) as found:
        assert found.count == 9
        paged = b"".join(csv_chunks(found, rows_per_chunk=2))
    assert paged == whole
    with rejects(settings, SOURCE, values=False, lang="en") as found:
        assert found.header == ["row_number", "reason_codes", "reasons"]
        assert [row[0] for row in found.rows] == [2, 3, 4, 5, 6, 7, 8, 9, 10]


def test_rows_past_a_sheet_go_on_in_another(ran, tmp_path, monkeypatch):
    from hub import quarantine

    settings, _, _ = ran
    monkeypatch.setattr(quarantine, "XLSX_SHEET_ROWS", 4)  # a header and three rows a sheet
    with quarantine.rejects(settings, SOURCE) as found:
        assert quarantine.write_xlsx(found, tmp_path / "q.xlsx") == 9
    book = openpyxl.load_workbook(tmp_path / "q.xlsx")
    assert book.sheetnames == ["karantina", "karantina 2", "karantina 3"]
    header, rows = _expected(settings, "id")
    for n, sheet in enumerate(book.worksheets):
        cells = [[c.value for c in row] for row in sheet.iter_rows()]
        assert cells[0] == header
        assert cells[1:] == [[None if c == "" else c for c in row] for row in rows[3 * n:3 * n + 3]]

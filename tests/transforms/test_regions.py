"""Region names to kode wilayah: every spelling of every Kota Bogor region, a sample of the nation, the real
list's repeated names, both editions, and the candidates shown for a name that did not resolve."""

from __future__ import annotations

import random
import re
import shutil
from collections import defaultdict

import pyarrow as pa
import pytest

from hub.errors import ConfigError
from schemas import codelists
from transforms import regions
from transforms.regions import candidates, resolve

LIST = "kode_wilayah"
EDITIONS = ("2022", "2025")
BOGOR = "32.71"
# The words an agency puts before a name, as they write them.
WORDS = {"kelurahan": ("Kel.", "Kelurahan", "Desa", "DS.", "kel", "KELURAHAN:"),
         "kecamatan": ("Kec.", "Kecamatan", "KEC", "Distrik", "kecamatan -")}
TINGKAT = {"kelurahan": "desa_kelurahan", "kecamatan": "kecamatan"}


def fullwidth(text: str) -> str:
    """The name as some PDFs and East Asian keyboards write it: full-width letters, an ideographic space."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else "\u3000" if c == " " else c for c in text)


def spellings(name: str, level: str) -> list[str]:
    """A name as agencies write it: cases, a word for the level before it, spaces and punctuation."""
    words = WORDS[level]
    return [
        name, name.upper(), name.lower(), name.title(),
        *(f"{word} {name}" for word in words), f"{words[0]}{name.upper()}",  # "Kel.BATU TULIS"
        f"  {'   '.join(name.split())}  ", name.replace(" ", ""), name.replace(" ", "\u00a0"),
        name.replace(" ", "-") + ".", f'"{name}"', f"{name}, ", fullwidth(name.upper()),
    ]


def rows_of(edition: str, level: str, within: str) -> list[dict]:
    tingkat = TINGKAT[level]
    return [r for r in codelists.rows(LIST, edition)
            if r["tingkat"] == tingkat and r["kode"].startswith(within + ".")]


def successor(code: str, source: str, target: str) -> str | None:
    """The code in `target` of a code of `source`, by the registered crosswalk (read here, not by the module)."""
    if source == target:
        return code
    for row in codelists.crosswalk_rows(LIST, "2022->2025"):
        if row[f"kode_{source}"] == code:
            return row[f"kode_{target}"] or None
    return None


_names: dict[str, dict[str, str]] = {}


def kecamatan_name(edition: str, code: str) -> str:
    if edition not in _names:
        _names[edition] = {r["kode"]: r["nama"] for r in codelists.rows(LIST, edition)}
    return _names[edition][code.rpartition(".")[0]]


def failed(result, rule: str) -> list[bool]:
    return dict(result.failures)[rule].to_pylist()


# --- every Kota Bogor region, every spelling, both editions ---------------------------------------------------


@pytest.mark.parametrize("level", ["kelurahan", "kecamatan"])
@pytest.mark.parametrize("source", EDITIONS)
@pytest.mark.parametrize("target", EDITIONS)
def test_every_bogor_region_is_found_by_its_name_in_every_spelling(level, source, target):
    """Kota Bogor has 6 kecamatan and 68 kelurahan; each is found from its name in `source`'s spelling, written
    every way agencies write it, as its code in `target`."""
    found = rows_of(source, level, BOGOR)
    assert len(found) == {"kelurahan": 68, "kecamatan": 6}[level]
    names, expected = [], []
    for row in found:
        forms = spellings(row["nama"], level)
        names += forms
        expected += [successor(row["kode"], source, target)] * len(forms)
    assert None not in expected
    result = resolve(pa.array(names), level=level, within=BOGOR, edition=target)
    wrong = [(n, c, e) for n, c, e in zip(names, result.codes.to_pylist(), expected) if c != e]
    assert wrong == []
    assert not any(v for _, mask in result.failures for v in mask.to_pylist())


def test_a_kelurahan_renamed_in_bogor_is_found_by_both_names():
    """Five Bogor kelurahan were renamed between the editions, each only by its spaces (ganti_nama)."""
    renamed = [r for r in codelists.crosswalk_rows(LIST, "2022->2025")
               if r["kode_2022"].startswith(BOGOR + ".") and r["perubahan"] != "tetap"]
    assert {(r["kode_2022"], r["perubahan"]) for r in renamed} == {
        ("32.71.01.1006", "ganti_nama"), ("32.71.01.1007", "ganti_nama"), ("32.71.01.1009", "ganti_nama"),
        ("32.71.01.1013", "ganti_nama"), ("32.71.04.1004", "ganti_nama")}
    result = resolve(pa.array(["Ranggamekar", "Rangga Mekar", "MULYAHARJA", "Mulya Harja", "Marga jaya"]),
                     level="kelurahan", within=BOGOR)
    assert result.codes.to_pylist() == ["32.71.01.1006"] * 2 + ["32.71.01.1007"] * 2 + ["32.71.04.1004"]


# --- a sample of the nation ----------------------------------------------------------------------------------


def plain_keys(name: str) -> set[str]:
    """A name's keys as the oracle reads them: its letters and digits in lower case, and without a leading "Desa"
    before more name."""
    key = re.sub(r"[\W_]", "", name.casefold())
    return {key, key.removeprefix("desa")} if re.match(r"(?i)desa\W", name) else {key}


def oracle(edition: str, within: str) -> dict[str, set[str]]:
    """The desa/kelurahan within `within` by key, over their names in both editions (the other edition's reach
    them through the crosswalk). Independent of the module's index."""
    other = "2022" if edition == "2025" else "2025"
    names = {row["kode"]: {row["nama"]} for row in rows_of(edition, "kelurahan", within)}
    to_edition = {r[f"kode_{other}"]: r[f"kode_{edition}"] for r in codelists.crosswalk_rows(LIST, "2022->2025")}
    for row in codelists.rows(LIST, other):
        code = to_edition.get(row["kode"])
        if row["tingkat"] == "desa_kelurahan" and code in names:
            names[code].add(row["nama"])
    by_key = defaultdict(set)
    for code, known in names.items():
        for name in known:
            for key in plain_keys(name):
                by_key[key].add(code)
    return by_key


SAMPLE = sorted(random.Random(5871).sample(
    [r["kode"] for r in codelists.rows(LIST, "2025") if r["tingkat"] == "kabupaten_kota" and r["kode"] != BOGOR],
    24))


@pytest.mark.parametrize("edition", EDITIONS)
def test_a_sample_of_the_nation_is_found_by_its_names(edition):
    """In 24 kabupaten/kota drawn at random (seeded), every kecamatan is found from each spelling of its name;
    every desa/kelurahan is found, or is ambiguous exactly when another region of its kabupaten/kota shares a
    name with it (the oracle); with its kecamatan's name, it is found unless a region of its own kecamatan
    does. Never another region's code, never unknown."""
    checked = ambiguous = narrowed = 0
    for city in SAMPLE:
        if not rows_of(edition, "kecamatan", city):
            continue  # a regency of 2025 that 2022 did not have
        kecamatan = rows_of(edition, "kecamatan", city)
        names = [form for row in kecamatan for form in spellings(row["nama"], "kecamatan")]
        expected = [row["kode"] for row in kecamatan for _ in spellings(row["nama"], "kecamatan")]
        assert resolve(pa.array(names), level="kecamatan", within=city, edition=edition).codes.to_pylist() == expected

        by_key = oracle(edition, city)
        villages = rows_of(edition, "kelurahan", city)
        written = {row["kode"]: row["nama"] for row in villages}
        names, codes, kecamatan_names = [], [], []
        for row in villages:
            forms = spellings(row["nama"], "kelurahan")
            names += forms
            codes += [row["kode"]] * len(forms)
            kecamatan_names += [kecamatan_name(edition, row["kode"]).upper()] * len(forms)
        alone = resolve(pa.array(names), level="kelurahan", within=city, edition=edition)
        with_kecamatan = resolve(pa.array(names), level="kelurahan", within=city, edition=edition,
                                 kecamatan=pa.array(kecamatan_names))
        assert not any(failed(alone, "region_unknown")) and not any(failed(with_kecamatan, "region_unknown"))
        assert not any(failed(with_kecamatan, "region_not_in_kecamatan"))
        for name, code, got, got_narrowed in zip(names, codes, alone.codes.to_pylist(),
                                                 with_kecamatan.codes.to_pylist()):
            others = {c for key in plain_keys(written[code]) for c in by_key[key]} - {code}
            same_kecamatan = {c for c in others if c.rpartition(".")[0] == code.rpartition(".")[0]}
            assert got == (None if others else code), (name, code, others)
            assert got_narrowed == (None if same_kecamatan else code), (name, code, same_kecamatan)
            checked += 1
            ambiguous += bool(others)
            narrowed += bool(others) and not same_kecamatan
    assert checked > 10_000 and ambiguous > 0 and narrowed > 0


# --- repeated names, scope, kecamatan ------------------------------------------------------------------------


def test_a_name_repeated_in_a_kabupaten_is_ambiguous_until_its_kecamatan_is_given():
    """Kabupaten Bogor (32.01) has five Pabuaran and two Cibinong (one a kelurahan of kecamatan Cibinong, one a
    desa of Gunungsindur); 2,300 names repeat like this within their kabupaten/kota across the 2025 list."""
    pabuaran = ["32.01.01.1012", "32.01.09.2002", "32.01.11.2010", "32.01.12.2004", "32.01.13.1007"]
    assert [r["kode"] for r in rows_of("2025", "kelurahan", "32.01") if r["nama"] == "Pabuaran"] == pabuaran
    names = pa.array(["Pabuaran", "Desa Pabuaran", "Cibinong", "pabuaran", "Kel. Pabuaran", "Pabuaran",
                      "Cibinong", "CIBINONG"])
    alone = resolve(names, level="kelurahan", within="32.01")
    assert alone.codes.to_pylist() == [None] * 8
    assert failed(alone, "region_ambiguous") == [True] * 8
    kecamatan = pa.array(["Cibinong", "Kec. Sukamakmur", "Gunungsindur", "KEMANG", "Bojong Gede", "32.01.11",
                          "Kecamatan Cibinong", "3201110"])
    narrowed = resolve(names, level="kelurahan", within="32.01", kecamatan=kecamatan)
    assert narrowed.codes.to_pylist() == ["32.01.01.1012", "32.01.09.2002", "32.01.11.2008", "32.01.12.2004",
                                          "32.01.13.1007", "32.01.11.2010", "32.01.01.1006", None]
    # The last kecamatan is no code of 32.01 (a digit short): it narrows nothing.
    assert failed(narrowed, "region_ambiguous") == [False] * 7 + [True]


def test_names_repeated_within_one_kecamatan_stay_ambiguous():
    """Sorkam Kanan is both a kelurahan and a desa of kecamatan Sorkam Barat; "Lubuk Pakam I,II" and "Lubuk Pakam
    III" share a key once punctuation and spaces are gone (the only such pair in the list): the code decides."""
    result = resolve(pa.array(["Sorkam Kanan", "Kelurahan Sorkam Kanan", "12.01.10.2018"]), level="kelurahan",
                     within="12.01", kecamatan=pa.array(["Sorkam Barat"] * 3))
    assert result.codes.to_pylist() == [None, None, "12.01.10.2018"]
    assert failed(result, "region_ambiguous") == [True, True, False]
    result = resolve(pa.array(["Lubuk Pakam III"]), level="kelurahan", within="12.07",
                     kecamatan=pa.array(["Lubuk Pakam"]))
    assert failed(result, "region_ambiguous") == [True]


def test_a_name_of_another_city_is_unknown_in_bogor():
    result = resolve(pa.array(["Pabuaran", "Cihideung Ilir", "Kec. Cibinong", "Sukamaju", "32.01.01.1012",
                               "Tanah Sareal"]), level="kelurahan", within=BOGOR)
    assert result.codes.to_pylist() == [None] * 5 + ["32.71.06.1001"]
    assert failed(result, "region_unknown") == [True] * 5 + [False]
    assert failed(resolve(pa.array(["Tanah Sareal"]), level="kelurahan", within="32.01"), "region_unknown") == [True]


def test_a_kelurahan_outside_the_kecamatan_given():
    """Tanah Sareal is a kelurahan of kecamatan Tanah Sareal, not Bogor Barat; a misspelt kecamatan narrows
    nothing (it fails where that column is mapped)."""
    result = resolve(pa.array(["Tanah Sareal", "Tanah Sareal", "Tanah Sareal", "Tanah Sareal"]), level="kelurahan",
                     within=BOGOR, kecamatan=pa.array(["Bogor Barat", "Kec. Tanah Sareal", "Bogor Barta", None]))
    assert result.codes.to_pylist() == [None, "32.71.06.1001", "32.71.06.1001", "32.71.06.1001"]
    assert failed(result, "region_not_in_kecamatan") == [True, False, False, False]


def test_blanks_codes_and_punctuation():
    names = pa.array(["", "   ", None, "-", "3271011001", "32.71.01.1001", "32 71 01 1001", "32.71.01",
                      "32.71.01.9999", "32.01.01.1012", "Kelurahan", "Kel."], pa.string())
    result = resolve(names, level="kelurahan", within=BOGOR)
    assert result.codes.to_pylist() == [None] * 4 + ["32.71.01.1001"] * 3 + [None] * 5
    assert failed(result, "region_unknown") == [False] * 3 + [True] + [False] * 3 + [True] * 5
    chunked = pa.chunked_array([["Empang"], ["Sempur", None]])
    assert resolve(chunked, level="kelurahan", within=BOGOR).codes.to_pylist() == [
        "32.71.01.1003", "32.71.03.1006", None]
    # A spreadsheet's code read as a number, an empty batch, a column of nothing.
    assert resolve(pa.array([3271011001, None]), level="kelurahan", within="3271").codes.to_pylist() == [
        "32.71.01.1001", None]
    assert resolve(pa.array([], pa.string()), level="kelurahan", within=BOGOR).codes.to_pylist() == []
    assert resolve(pa.array([None, None]), level="kelurahan", within=BOGOR).codes.to_pylist() == [None, None]


def test_a_word_for_the_level_is_taken_off_only_before_more_name():
    """"Kelurahan" is a desa of 33.22.08; "Desa Baru" a desa of 14.01.06, found with and without "Desa";
    "Kota Batu" is a city, and a desa in Aceh where "Kota" is no word for a desa."""
    assert resolve(pa.array(["Kelurahan", "Desa Kelurahan"]), level="kelurahan",
                   within="33.22").codes.to_pylist() == ["33.22.08.2003"] * 2
    assert resolve(pa.array(["Desa Baru", "Baru", "DS. DESA BARU"]), level="kelurahan", within="14.01",
                   kecamatan=pa.array(["14.01.06"] * 3)).codes.to_pylist() == ["14.01.06.2002"] * 3
    assert resolve(pa.array(["Kota Batu", "Batu"]), level="kelurahan", within="11.09").codes.to_pylist() == [
        "11.09.04.2026", None]


def test_kabupaten_and_kota_are_kinds():
    names = pa.array(["Kota Bogor", "KOTA BOGOR", "Kab. Bogor", "KAB BOGOR", "Kabupaten Bogor", "Bogor",
                      "Kotamadya Bogor", "Kota Depok", "Depok"])
    result = resolve(names, level="kabupaten_kota", within="32")
    assert result.codes.to_pylist() == ["32.71", "32.71", "32.01", "32.01", "32.01", None, "32.71", "32.76",
                                        "32.76"]
    assert failed(result, "region_ambiguous")[5]
    assert resolve(pa.array(["Kota Batu", "Batu", "Kab. Batu"]), level="kabupaten_kota",
                   within="35").codes.to_pylist() == ["35.79", "35.79", None]


# --- both editions ---------------------------------------------------------------------------------------------


def test_a_renamed_desa_is_found_by_either_name_in_either_edition():
    """32.01.15.2010 was Cihideunghilir in 2022 and is Cihideung Ilir in 2025 (ganti_nama): 1,365 regions were
    renamed beyond their spaces."""
    assert successor("32.01.15.2010", "2022", "2025") == "32.01.15.2010"
    for edition in EDITIONS:
        result = resolve(pa.array(["Cihideunghilir", "Cihideung Ilir", "Desa Cihideung ilir"]), level="kelurahan",
                         within="32.01", edition=edition)
        assert result.codes.to_pylist() == ["32.01.15.2010"] * 3


def test_a_recoded_region_is_given_in_the_editions_code():
    """Setia Asih (Tarumajaya, Kabupaten Bekasi) became a kelurahan: 32.16.01.2007 in 2022, 32.16.01.1007 in
    2025 (pindah_kode); kecamatan Merauke moved with its regency from Papua to Papua Selatan (91.01.01 ->
    93.01.01, pindah_induk). Names and codes of either edition give the code of the edition asked for."""
    assert successor("32.16.01.2007", "2022", "2025") == "32.16.01.1007"
    names = pa.array(["Setia Asih", "32.16.01.2007", "3216011007"])
    assert resolve(names, level="kelurahan", within="32.16", edition="2025").codes.to_pylist() == [
        "32.16.01.1007"] * 3
    assert resolve(names, level="kelurahan", within="32.16", edition="2022").codes.to_pylist() == [
        "32.16.01.2007"] * 3
    merauke = pa.array(["Merauke", "Distrik Merauke", "91.01.01", "93.01.01"])
    assert resolve(merauke, level="kecamatan", within="93.01").codes.to_pylist() == ["93.01.01"] * 4
    assert resolve(merauke, level="kecamatan", within="91.01", edition="2022").codes.to_pylist() == ["91.01.01"] * 4


def test_a_former_name_of_another_region_makes_a_name_ambiguous():
    """Kecamatan 11.02.06 had two desa Pardamean in 2022; in 2025 one (2006) is Lawe Perbunga: "Pardamean" may be
    a 2022 file's name for either, so it is ambiguous in both editions."""
    for edition in EDITIONS:
        result = resolve(pa.array(["Pardamean", "Lawe Perbunga"]), level="kelurahan", within="11.02",
                         edition=edition, kecamatan=pa.array(["11.02.06", "11.02.06"]))
        assert result.codes.to_pylist() == [None, "11.02.06.2006"]


def test_a_merge_between_editions_is_ambiguous_in_the_older(tmp_path, monkeypatch):
    """The shipped crosswalk maps no two 2022 codes to one 2025 code (a split shows as dihapus and baru): the
    merge is made here, in a code-list folder of its own."""
    from collections import Counter
    assert max(Counter(r["kode_2025"] for r in codelists.crosswalk_rows(LIST, "2022->2025")
                       if r["kode_2025"]).values()) == 1
    lists = tmp_path / "codelists"
    lists.mkdir()
    shutil.copy(codelists.CODELISTS_DIR / "codelists.yaml", lists)
    head = "kode,nama,tingkat\n10,PROV,provinsi\n10.01,KAB. SATU,kabupaten_kota\n10.01.01,Alpha,kecamatan\n"
    (lists / "kode_wilayah_2022.csv").write_text(head + "10.01.01.2001,Ujung,desa_kelurahan\n"
                                                 "10.01.01.2002,Pangkal,desa_kelurahan\n", encoding="utf-8")
    (lists / "kode_wilayah_2025.csv").write_text(head + "10.01.01.2003,Ujung Pangkal,desa_kelurahan\n",
                                                 encoding="utf-8")
    (lists / "kode_wilayah_2022_2025.csv").write_text(
        "kode_2022,kode_2025,perubahan\n10,10,tetap\n10.01,10.01,tetap\n10.01.01,10.01.01,tetap\n"
        "10.01.01.2001,10.01.01.2003,pindah_kode\n10.01.01.2002,10.01.01.2003,pindah_kode\n", encoding="utf-8")
    monkeypatch.setenv("HUB_CODELISTS", str(lists))
    names = pa.array(["Ujung", "Pangkal", "Ujung Pangkal", "10.01.01.2003"])
    assert resolve(names, level="kelurahan", within="10.01", edition="2025").codes.to_pylist() == [
        "10.01.01.2003"] * 4
    older = resolve(names, level="kelurahan", within="10.01", edition="2022")
    assert older.codes.to_pylist() == ["10.01.01.2001", "10.01.01.2002", None, None]
    assert failed(older, "region_ambiguous") == [False, False, True, True]


# --- candidates, errors, the index --------------------------------------------------------------------------------


@pytest.mark.parametrize("name, first", [
    ("Tanah Sereal", "32.71.06.1001"), ("Baranansiang", "32.71.02.1002"), ("Cibuluh2", "32.71.05.1005"),
    ("Kel. Katulampah", "32.71.02.1003"), ("Sindang Barang Loji", "32.71.04.1002"), ("Rangamekar", "32.71.01.1006"),
])
def test_candidates_list_the_meant_kelurahan_first(name, first):
    assert resolve(pa.array([name]), level="kelurahan", within=BOGOR).codes.to_pylist() == [None]
    found = candidates(name, level="kelurahan", within=BOGOR)
    assert found[0][0] == first and 1 <= len(found) <= 3
    assert found[0][1] == next(r["nama"] for r in codelists.rows(LIST, "2025") if r["kode"] == first)


def test_baranang_siang_resolves_without_candidates():
    """Spaces do not count, so "Baranang Siang" is Baranangsiang itself."""
    assert resolve(pa.array(["Baranang Siang"]), level="kelurahan", within=BOGOR).codes.to_pylist() == [
        "32.71.02.1002"]


def test_candidates_within_a_kecamatan_and_none_when_nothing_is_close():
    found = candidates("Pabuaran Mekr", level="kelurahan", within="32.01", kecamatan="Cibinong")
    assert found[0] == ("32.01.01.1013", "Pabuaran Mekar")
    assert all(code.startswith("32.01.01.") for code, _ in found)
    assert candidates("Xyzzy Qwerty", level="kelurahan", within=BOGOR) == []
    assert candidates("Bogor Utra", level="kecamatan", within=BOGOR)[0] == ("32.71.05", "Bogor Utara")


@pytest.mark.parametrize("arguments, message", [
    ({"level": "rt", "within": BOGOR}, "region level 'rt'"),
    ({"level": "kelurahan", "within": "32.71.01.1001"}, "the code of a region above"),
    ({"level": "kecamatan", "within": "32.71.01"}, "the code of a region above"),
    ({"level": "kelurahan", "within": "99.99"}, "no kabupaten_kota 99.99"),
    ({"level": "kelurahan", "within": "Bogor"}, "the code of a region above"),
    ({"level": "kelurahan", "within": BOGOR, "edition": "2019"}, "no edition '2019'"),
])
def test_a_wrong_scope_is_a_config_error(arguments, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        resolve(pa.array(["Empang"]), **arguments)


def test_the_index_is_built_once(monkeypatch):
    resolve(pa.array(["Empang"]), level="kelurahan", within=BOGOR)
    built = []
    monkeypatch.setattr(regions, "_build_level", lambda *a: built.append(a))
    monkeypatch.setattr(regions, "_build_scope", lambda *a: built.append(a))
    for _ in range(3):
        assert resolve(pa.array(["Empang", "Sempur"]), level="kelurahan",
                       within=BOGOR).codes.to_pylist() == ["32.71.01.1003", "32.71.03.1006"]
    assert built == []

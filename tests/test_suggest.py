"""hub.suggest.nearest: the 'did you mean' of column names and keywords."""

from __future__ import annotations

from hub.suggest import nearest

HEADER = ["NIK", "NAMA PENERIMA", "JK", "TGL_LAHIR", "Alamat Lengkap", "Kelurahan"]


def test_case_and_separators_do_not_count_and_an_equal_name_comes_first():
    assert nearest("nik", HEADER) == ["NIK"]
    assert nearest("nama_penerima", HEADER) == ["NAMA PENERIMA"]
    assert nearest("tgl lahir", HEADER) == ["TGL_LAHIR"]
    assert nearest("alamat--lengkap ", HEADER) == ["Alamat Lengkap"]
    # An equal name wins over one closer in difflib's eyes.
    assert nearest("Nama", ["Namaa", "NAMA"], n=2) == ["NAMA", "Namaa"]


def test_a_misspelt_name_finds_the_nearest():
    assert nearest("kelurhan", HEADER) == ["Kelurahan"]
    assert nearest("minLenght", ["minLength", "maxLength", "pattern"]) == ["minLength"]
    assert nearest("minLenght", ["minLength", "maxLength", "pattern"], n=2) == ["minLength", "maxLength"]


def test_a_column_named_by_some_of_its_words_is_found():
    assert nearest("NAMA", HEADER) == ["NAMA PENERIMA"]
    assert nearest("alamat", HEADER) == ["Alamat Lengkap"]
    # Before a name closer letter by letter: a column is often known by its first word.
    assert nearest("NAMA", ["Agama", "NAMA PENERIMA"], n=2) == ["NAMA PENERIMA", "Agama"]
    assert nearest("nama penerima bantuan", ["NAMA PENERIMA", "nama penerimaan bantuan"]) == ["NAMA PENERIMA"]


def test_nothing_close_is_no_suggestion():
    assert nearest("umur", HEADER) == []
    assert nearest("x", HEADER) == []
    assert nearest("nik", []) == []
    assert nearest("nik", HEADER, n=0) == []


def test_n_bounds_the_answer_and_repeats_count_once():
    assert nearest("nama", ["NAMA", "nama", "Nama_", "NAMA"], n=5) == ["NAMA", "nama", "Nama_"]
    assert len(nearest("a", ["a", "a b", "a c", "a d"], n=2)) == 2


def test_choices_may_be_any_iterable():
    assert nearest("jk", (c for c in HEADER)) == ["JK"]
    assert nearest("jk", dict.fromkeys(HEADER)) == ["JK"]

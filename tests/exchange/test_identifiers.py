"""X-Road identifiers: the examples of PR-REST, percent-encoding, and every malformed identifier refused."""

from __future__ import annotations

import pytest

from exchange.identifiers import MAX_PART_CHARS, ClientId, IdentifierError, ServiceId, split_service_path


def test_the_request_example_of_pr_rest_4_1():
    # GET /r1/INSTANCE/CLASS2/MEMBER2/SUBSYSTEM2/BARSERVICE/v1/bar/zyggy?quu=1, X-Road-Client: INSTANCE/CLASS1/...
    service, rest = split_service_path("INSTANCE/CLASS2/MEMBER2/SUBSYSTEM2/BARSERVICE/v1/bar/zyggy")
    assert service == ServiceId("INSTANCE", "CLASS2", "MEMBER2", "SUBSYSTEM2", "BARSERVICE")
    assert rest == "/v1/bar/zyggy"
    assert service.provider == ClientId("INSTANCE", "CLASS2", "MEMBER2", "SUBSYSTEM2")
    client = ClientId.parse("INSTANCE/CLASS1/MEMBER1/SUBSYSTEM1")
    assert (client.instance, client.member_class, client.member_code, client.subsystem) == (
        "INSTANCE", "CLASS1", "MEMBER1", "SUBSYSTEM1")
    assert str(client) == "INSTANCE/CLASS1/MEMBER1/SUBSYSTEM1"


def test_the_response_headers_of_the_examples_and_the_metadata_services():
    assert str(ServiceId.parse("DEV/COM/222/TESTSERVICE/petstore")) == "DEV/COM/222/TESTSERVICE/petstore"
    assert ClientId.parse("DEV/COM/222/TESTCLIENT").member_code == "222"
    for path in ("INSTANCE/CLASS2/MEMBER2/SUBSYSTEM2/listMethods", "/INSTANCE/CLASS2/MEMBER2/SUBSYSTEM2/getOpenAPI"):
        service, rest = split_service_path(path)
        assert service.service_code in ("listMethods", "getOpenAPI") and rest == ""
    # The hub's own names (issue 15).
    service, rest = split_service_path("/BOGOR/GOV/disdukcapil/siak/penduduk/3271010101800001")
    assert str(service) == "BOGOR/GOV/disdukcapil/siak/penduduk" and rest == "/3271010101800001"
    assert split_service_path("BOGOR/GOV/disdukcapil/siak/penduduk/")[1] == "/"


def test_every_allowed_symbol_round_trips_and_only_the_question_mark_is_encoded():
    service = ServiceId("EE", "GOV", "70000562", "rr", "a'()+,-.=?b")
    assert str(service) == "EE/GOV/70000562/rr/a'()+,-.=%3Fb"
    assert ServiceId.parse(str(service)) == service
    # Parts are percent-decoded one by one: an encoded letter is the letter.
    assert ClientId.parse("BOGOR/GOV/dinso%73/siks") == ClientId("BOGOR", "GOV", "dinsos", "siks")


@pytest.mark.parametrize("text, fault", [
    ("", "empty"),
    ("   ", "empty"),
    ("BOGOR/GOV/dinsos", "3 parts separated by /, expected 4"),
    ("BOGOR/GOV/dinsos/siks/extra", "5 parts separated by /, expected 4"),
    # PR-REST 4.2's invalid example: the separators themselves encoded.
    ("INSTANCE%2FCLASS%2FMEMBER%2FSUBSYSTEM", "1 parts separated by /, expected 4"),
    ("BOGOR//dinsos/siks", "the member class is empty"),
    ("BOGOR/GOV/dinsos/", "the subsystem code is empty"),
    ("BOGOR/GOV/din sos/siks", "the member code 'din sos' holds ' '"),
    ("BOGOR/GOV/dinsos/siks_2", "holds '_'"),
    ("BOGOR/GOV/dinsos/si%2Fks", "the subsystem code 'si/ks' holds '/'"),
    ("BOGOR/GOV/din%C3%A4/siks", "holds 'ä'"),
    ("BOGOR/GOV/dinsos/siks*", "holds '*'"),
    ("BOGOR/G%zzV/dinsos/siks", "member class 'G%zzV' has a % not followed by two hexadecimal digits"),
    ("BOGOR/GOV/dinsos/siks%4", "has a % not followed by two hexadecimal digits"),
    ("BOGOR/GOV/%FF/siks", "the member code '%FF' is not percent-encoded UTF-8"),
    ("BOGOR/GOV/" + "m" * (MAX_PART_CHARS + 1) + "/siks", f"has {MAX_PART_CHARS + 1} characters"),
])
def test_a_malformed_client_identifier_is_refused_naming_the_part_and_the_fault(text, fault):
    with pytest.raises(IdentifierError) as refused:
        ClientId.parse(text)
    assert str(refused.value).startswith("client identifier: ")
    assert fault in str(refused.value)


def test_three_parts_say_the_subsystem_is_needed():
    with pytest.raises(IdentifierError, match="the hub needs the subsystem code"):
        ClientId.parse("BOGOR/GOV/dinsos")
    with pytest.raises(IdentifierError, match="the hub needs the subsystem code"):
        ServiceId.parse("BOGOR/GOV/disdukcapil/penduduk")


@pytest.mark.parametrize("text, fault", [
    # PR-REST 4.2 calls BAR%2FSERVICE a valid encoding of the service code "BAR/SERVICE"; its 4.8 allows no /.
    ("INSTANCE/CLASS/MEMBER/SUBSYSTEM/BAR%2FSERVICE", "the service code 'BAR/SERVICE' holds '/'"),
    ("BOGOR/GOV/disdukcapil/siak", "4 parts separated by /, expected 5"),
    ("BOGOR/GOV/disdukcapil/siak/", "the service code is empty"),
    ("BOGOR/GOV/disdukcapil/siak/pen%duduk", "has a % not followed"),
    ("BOGOR/GOV/disdukcapil/siak/penduduk/v1", "6 parts separated by /, expected 5"),
    ("bogor/gov/disdukcapil/si;ak/penduduk", "the subsystem code 'si;ak' holds ';'"),
])
def test_a_malformed_service_identifier_is_refused(text, fault):
    with pytest.raises(IdentifierError) as refused:
        ServiceId.parse(text)
    assert str(refused.value).startswith("service identifier: ")
    assert fault in str(refused.value)


def test_the_rest_of_a_request_path_is_never_quoted_in_an_error():
    nik = "3271010101800001"
    for path in (f"BOGOR/GOV/disdukcapil/siak%zz/penduduk/{nik}", f"BOGOR/GOV/disdukcapil/si_ak/penduduk/{nik}",
                 "BOGOR/GOV/disdukcapil"):
        with pytest.raises(IdentifierError) as refused:
            split_service_path(path)
        assert nik not in str(refused.value)


def test_identifiers_made_in_code_are_checked_too():
    with pytest.raises(IdentifierError, match="client identifier: the X-Road instance is empty"):
        ClientId("", "GOV", "dinsos", "siks")
    with pytest.raises(IdentifierError, match="service identifier: the service code 'pen duduk' holds ' '"):
        ServiceId("BOGOR", "GOV", "disdukcapil", "siak", "pen duduk")
    with pytest.raises(IdentifierError, match="the member code is empty"):
        ClientId("BOGOR", "GOV", None, "siks")  # type: ignore[arg-type]
    with pytest.raises(IdentifierError, match="client identifier: empty"):
        ClientId.parse(None)  # type: ignore[arg-type]

"""Who may see what, on every path out of a served hub: each role × each path × each classification.

The catalog holds a `publik` dataset (Dinkes's facilities), a `terbatas` one (SIAK's residents), a `rahasia`
one (SITB's tuberculosis cases, and their integrated `kasus_tbc`) and a `publik` one with a `terbatas`
personal field (OSS's business owners). Each persona asks each path for each dataset, and the answer is
checked against the rule written out below, independently of `catalog.access`: the status, the columns, and
the form of every personal value, compared with the agency systems' own values.
"""

from __future__ import annotations

import csv
import io
import json
import re

import httpx
import pytest

from _exchange import client_token
from _served import demo_systems, hub, serve

SOURCES = ("dinkes_faskes", "disdukcapil_siak", "dinkes_sitb", "dpmptsp_oss")
DATASETS = (*SOURCES, "kasus_tbc")
PERSONAS = {  # name -> (role, agency)
    "anonim": (None, None),
    "analis": ("analyst", None),
    "walidata": ("steward", None),
    "disdukcapil": ("agency", "disdukcapil"),
    "dinsos": ("agency", "dinsos"),
    "dinkes": ("agency", "dinkes"),
    "dpmptsp": ("agency", "dpmptsp"),
}
PERSONAL = {  # dataset -> its personal fields and their kind
    "dinkes_faskes": {},
    "disdukcapil_siak": {"nik": "nik", "nama": "name", "tanggal_lahir": "birth_date", "alamat": "address"},
    "dinkes_sitb": {"nik": "nik", "nama": "name", "tanggal_lahir": "birth_date", "alamat": "address"},
    "kasus_tbc": {"nik": "nik", "nama": "name", "tanggal_lahir": "birth_date", "alamat": "address"},
    "dpmptsp_oss": {"nama_pemilik": "name"},
}


def expected(persona: str, dataset: str):
    """The rule, written out: 404 (may not know of it), 401 (needs a token), or each personal field's form
    (`plain`, `pseudonym`, `masked`, or `absent` for a field stricter than the caller may see)."""
    role, agency = PERSONAS[persona]
    if dataset in ("dinkes_sitb", "kasus_tbc"):  # rahasia; kasus_tbc's x-access names dinkes, the source's owner
        return {f: "plain" for f in PERSONAL[dataset]} if agency == "dinkes" else 404
    if dataset == "disdukcapil_siak":  # terbatas; penduduk's x-access names disdukcapil and dinsos
        if role is None:
            return 401
        if agency in ("disdukcapil", "dinsos"):
            return {f: "plain" for f in PERSONAL[dataset]}
        return {"nik": "pseudonym", "nama": "masked", "tanggal_lahir": "masked", "alamat": "masked"}
    if dataset == "dpmptsp_oss":  # publik, nama_pemilik terbatas; umkm's x-access names dpmptsp
        return {"nama_pemilik": "absent" if role is None else "plain" if agency == "dpmptsp" else "masked"}
    return {}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """A served hub with the four sources and the integrated kasus_tbc, and a token for each persona."""
    from demo.agencies import build

    home = tmp_path_factory.mktemp("access-home")
    build(home, people_count=480, dinsos_count=120)
    with demo_systems(home) as live:  # Dinkes's facilities come from its live API
        for source in SOURCES:
            hub(home, "run", source, env=live)
    hub(home, "integrate", "kasus_tbc")
    headers = {"anonim": {}}
    for name, (role, agency) in PERSONAS.items():
        if role:
            made = hub(home, "users", "create", name, "--role", role, *(["--agency", agency] if agency else []))
            headers[name] = {"Authorization": "Bearer " + re.search(r"hub_[0-9a-f]{12}_[\w-]+", made.stdout)[0]}
    env = {"HUB_SERVICES": str(_exchange_services(home))}
    clients = {}
    for name, (role, agency) in PERSONAS.items():
        if role == "agency":  # each agency's system is a client of the service bus, granted every service
            client = f"BOGOR/GOV/{agency}/sistem"
            clients[name] = (client, client_token(home, env, client))
            for service, _ in EXCHANGE.values():
                hub(home, "exchange", "grant", service, client, "--purpose", "uji hak akses", env=env)
    server, base = serve(home, env)
    yield {"home": home, "base": base, "headers": headers, "raw": _raw(home), "clients": clients,
           "keys": _keys(home)}
    server.terminate()
    server.wait(timeout=30)


# The service bus's dataset services, one per source: (service, its key); each answers the dataset's personal fields.
EXCHANGE = {"dinkes_faskes": ("BOGOR/GOV/dinkes/simpus/faskes", "kode_faskes"),
            "disdukcapil_siak": ("BOGOR/GOV/disdukcapil/siak/penduduk", "nik"),
            "dinkes_sitb": ("BOGOR/GOV/dinkes/sitb/kasus", "nomor_registrasi"),
            "dpmptsp_oss": ("BOGOR/GOV/dpmptsp/oss/umkm", "nib")}


def _exchange_services(home):
    folder = home / "services"
    folder.mkdir()
    for dataset, (service, key) in EXCHANGE.items():
        fields = [key, *(f for f in PERSONAL[dataset] if f != key)]
        (folder / f"{dataset}.yaml").write_text(
            f"service: {service}\ntitle: Layanan {dataset}\nprovider: {service.split('/')[2]}\nkind: dataset\n"
            f"dataset: {{id: {dataset}, by_key: true, fields: [{', '.join(fields)}]}}\n")
    return folder


def _keys(home) -> dict[str, list[str]]:
    """A few keys of each dataset of a service, as the operator reads them."""
    found = {}
    for dataset, (_, key) in EXCHANGE.items():
        rows = json.loads(hub(home, "query", f"SELECT {key} FROM {dataset} ORDER BY {key} LIMIT 6", "--format",
                              "json").stdout)
        found[dataset] = [str(r[key]) for r in rows]
    return found


def _raw(home) -> dict[str, dict[str, set[str]]]:
    """Each dataset's personal values as the operator reads them unmasked (`hub query`): dataset -> field -> values."""
    raw = {}
    for dataset, fields in PERSONAL.items():
        if fields:
            found = json.loads(hub(home, "query", f"SELECT {', '.join(fields)} FROM {dataset}", "--format", "json").stdout)
            raw[dataset] = {f: {str(r[f]) for r in found if r[f] is not None} for f in fields}
    return raw


def _form(value, kind: str) -> str:
    """What a personal value looks like: plain (left for the caller to check), pseudonym or masked."""
    text = str(value)
    if re.fullmatch(r"psn_[a-z2-7]{13}", text):
        return "pseudonym"
    masked = {"nik": r"\d{6}\*{10}", "birth_date": r"\d{4}-\*\*-\*\*"}.get(kind, r"\*\*\*")
    return "masked" if re.fullmatch(masked, text) else "plain"


def check_rows(catalog, persona: str, dataset: str, columns: list[str], records: list[dict], text: str) -> None:
    """The columns and every personal value are as `expected` says; no value the caller may not see is in `text`."""
    rule = expected(persona, dataset)
    assert records, (persona, dataset)
    raw = catalog["raw"].get(dataset, {})
    for field, form in rule.items():
        if form == "absent":
            assert field not in columns, (persona, dataset, field)
            assert not any(v in text for v in raw[field]), (persona, dataset, field)
            continue
        assert field in columns, (persona, dataset, field)
        values = [r[field] for r in records if r[field] not in (None, "")]
        assert values, (persona, dataset, field)
        forms = {_form(v, PERSONAL[dataset][field]) for v in values}
        assert forms == {form}, (persona, dataset, field, forms)
        if form == "plain":
            assert {str(v) for v in values} <= raw[field], (persona, dataset, field)
        else:
            leaked = [v for v in raw[field] if len(v) > 3 and v in text]
            assert not leaked, (persona, dataset, field, len(leaked))


def check_refused(status: int, persona: str, dataset: str) -> None:
    rule = expected(persona, dataset)
    assert status == (rule if isinstance(rule, int) else 200), (persona, dataset, status)


# --- the paths --------------------------------------------------------------------------------------------


def api_rows(catalog, persona, dataset):
    answer = httpx.get(f"{catalog['base']}/api/datasets/{dataset}/rows", params={"limit": 1000},
                       headers=catalog["headers"][persona], timeout=60)
    if answer.status_code != 200:
        return answer.status_code, None
    body = answer.json()
    return 200, ([f["name"] for f in body["fields"]], body["rows"], answer.text)


def api_download(catalog, persona, dataset):
    answer = httpx.get(f"{catalog['base']}/api/datasets/{dataset}/download.csv", headers=catalog["headers"][persona],
                       timeout=60)
    if answer.status_code != 200:
        return answer.status_code, None
    records = list(csv.DictReader(io.StringIO(answer.text)))
    return 200, (list(records[0]) if records else [], records, answer.text)


def api_sql(catalog, persona, dataset):
    # Joined with the publik dataset: a join reaches no more than the dataset alone.
    sql = (f"SELECT d.* FROM {dataset} d LEFT JOIN (SELECT count(*) AS n FROM dinkes_faskes) f ON true")
    answer = httpx.post(f"{catalog['base']}/api/sql", json={"sql": sql, "limit": 10000},
                        headers=catalog["headers"][persona], timeout=60)
    if answer.status_code != 200:
        return _not_known_as_404(answer, dataset), None
    body = answer.json()
    return 200, ([c["name"] for c in body["columns"]], body["rows"], answer.text)


def ckan_datastore_search(catalog, persona, dataset):
    answer = httpx.post(f"{catalog['base']}/api/3/action/datastore_search", json={"resource_id": dataset, "limit": 32000},
                        headers=catalog["headers"][persona], timeout=60)
    if answer.status_code != 200:
        assert answer.json()["success"] is False
        return {403: 401 if persona == "anonim" else 403}.get(answer.status_code, answer.status_code), None
    result = answer.json()["result"]
    return 200, ([f["id"] for f in result["fields"]], result["records"], answer.text)


def ckan_datastore_search_sql(catalog, persona, dataset):
    answer = httpx.post(f"{catalog['base']}/api/3/action/datastore_search_sql", json={"sql": f"SELECT * FROM {dataset}"},
                        headers=catalog["headers"][persona], timeout=60)
    if answer.status_code == 409:  # CKAN's Validation Error: here, a table the caller may not know of
        assert "unknown dataset" in answer.json()["error"]["message"]
        return 404, None
    if answer.status_code != 200:
        return {403: 401 if persona == "anonim" else 403}.get(answer.status_code, answer.status_code), None
    result = answer.json()["result"]
    return 200, ([f["id"] for f in result["fields"]], result["records"], answer.text)


def portal_preview(catalog, persona, dataset):
    """The dataset page's preview table, signed in with the persona's token as the portal's cookie."""
    token = catalog["headers"][persona].get("Authorization", "").removeprefix("Bearer ")
    answer = httpx.get(f"{catalog['base']}/dataset/{dataset}", cookies={"hub_token": token} if token else None,
                       timeout=60)
    if answer.status_code != 200:
        return answer.status_code, None
    table = re.search(r'<table class="rows">(.*?)</table>', answer.text, re.S)
    if table is None:
        assert 'class="warning access-denied"' in answer.text
        return 401 if persona == "anonim" else 403, None
    columns = re.findall(r'<code class="field-name">([^<]+)</code>', table.group(1))

    def value(cell: str) -> str:  # a coded value shows its label, then the code itself
        code = re.search(r'<code class="code"[^>]*>([^<]*)</code>', cell)
        return code.group(1) if code else cell

    records = [{field: value(cell) for field, cell in re.findall(r'<td data-field="([^"]+)">(.*?)</td>', row)}
               for row in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S) if "<td" in row]
    import html as html_module

    records = [{k: html_module.unescape(v) for k, v in r.items()} for r in records]
    return 200, (columns, records, html_module.unescape(answer.text))


def portal_sql(catalog, persona, dataset):
    """The portal's SQL page, signed in with the persona's token as the portal's cookie."""
    import html as html_module

    token = catalog["headers"][persona].get("Authorization", "").removeprefix("Bearer ")
    answer = httpx.post(f"{catalog['base']}/sql", data={"sql": f"SELECT * FROM {dataset}"},
                        cookies={"hub_token": token} if token else None, timeout=60)
    text = html_module.unescape(answer.text)
    if answer.status_code != 200:
        message = re.search(r'<pre class="message">(.*?)</pre>', text, re.S).group(1)
        if "unknown dataset" in message:
            return 404, None
        return (401 if "send a token" in message else 403 if "not cleared" in message else answer.status_code), None
    table = re.search(r'<table class="sql-result">(.*?)</table>', text, re.S).group(1)
    columns = re.findall(r'<th scope="col">(\S+) <span', table)
    records = [dict(zip(columns, re.findall(r"<td>(.*?)</td>", row))) for row in re.findall(r"<tr>(.*?)</tr>", table)
               if "<td>" in row]
    return 200, (columns, records, text)


def _not_known_as_404(answer: httpx.Response, dataset: str) -> int:
    """SQL names a dataset the caller may not know of as unknown (400), like one that does not exist."""
    if answer.status_code == 400:
        assert f"unknown dataset {dataset!r}" in answer.json()["detail"], answer.text
        assert dataset not in answer.json()["detail"].partition("datasets:")[2].split(", ")
        return 404
    return answer.status_code


ROW_PATHS = [api_rows, api_download, api_sql, ckan_datastore_search, ckan_datastore_search_sql, portal_preview,
             portal_sql]


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("path", ROW_PATHS, ids=lambda p: p.__name__)
def test_rows_reach_each_caller_as_the_rule_says(catalog, path, persona, dataset):
    status, answer = path(catalog, persona, dataset)
    check_refused(status, persona, dataset)
    if answer is not None:
        check_rows(catalog, persona, dataset, *answer)


@pytest.mark.parametrize("dataset", EXCHANGE)
@pytest.mark.parametrize("persona", [p for p, (role, _) in PERSONAS.items() if role == "agency"])
def test_service_bus_lookups_reach_each_agency_system_as_the_rule_says(catalog, persona, dataset):
    """An agency's system, granted the service, sees a record exactly as the agency's officers see the dataset: a
    grant opens the service and never clears more. Not cleared for a `rahasia` dataset: refused. A key the caller
    sees pseudonymized is looked up by its pseudonym only."""
    from transforms.pseudonym import key as pseudonym_key, pseudonym

    service, key = EXCHANGE[dataset]
    rule = expected(persona, dataset)
    client, token = catalog["clients"][persona]
    headers = {"X-Road-Client": client, "Authorization": f"Bearer {token}", "X-Road-Issue": "uji hak akses"}
    by_pseudonym = isinstance(rule, dict) and rule.get(key) == "pseudonym"
    records, text = [], ""
    for value in catalog["keys"][dataset]:
        asked = pseudonym(value, pseudonym_key(catalog["home"])) if by_pseudonym else value
        answer = httpx.get(f"{catalog['base']}/r1/{service}/{asked}", headers=headers, timeout=60)
        if isinstance(rule, int):  # may not know of the data: the service is refused, naming no value
            assert answer.status_code == 403, (persona, dataset, answer.text)
            assert answer.headers["X-Road-Error"] == "Server.ServerProxy.AccessDenied"
            assert value not in answer.text
            continue
        assert answer.status_code == 200, (persona, dataset, answer.text)
        records.append(answer.json()["record"])
        text += answer.text
        if by_pseudonym:
            plain = httpx.get(f"{catalog['base']}/r1/{service}/{value}", headers=headers, timeout=60)
            assert plain.status_code == 404 and value not in plain.text, (persona, dataset)
    if records:
        check_rows(catalog, persona, dataset, list(records[0]), records, text)


# --- what the caller may know of: lists, search, metadata, DCAT, CKAN ---------------------------------------


def known(persona: str) -> set[str]:
    return {d for d in DATASETS if expected(persona, d) != 404}


def _listed_by(catalog, persona: str) -> dict[str, set[str]]:
    base, headers = catalog["base"], catalog["headers"][persona]
    get = lambda path, **params: httpx.get(base + path, params=params, headers=headers, timeout=60)  # noqa: E731
    ckan = get("/api/3/action/package_search", rows=1000).json()["result"]
    ttl = get("/catalog.ttl").text
    token = headers.get("Authorization", "").removeprefix("Bearer ")
    every_kind = [("kind", k) for k in ("harmonized", "integrated", "indicator")]
    portal = httpx.get(base + "/search", params=every_kind, cookies={"hub_token": token} if token else None).text
    agencies = "".join(httpx.get(base + f"/agency/{a}", cookies={"hub_token": token} if token else None).text
                       for a in ("dinkes", "disdukcapil", "dpmptsp"))
    return {
        "api list": {d["id"] for d in get("/api/datasets").json()["datasets"]},
        "api search": {d["id"] for d in get("/api/search", rows=1000).json()["results"]},
        "ckan package_list": set(get("/api/3/action/package_list").json()["result"]),
        "ckan package_search": {p["id"] for p in ckan["results"]},
        "dcat": set(re.findall(r'dct:identifier "([a-z_]+)"', ttl)),
        "portal search": set(re.findall(r'href="/dataset/([a-z_]+)\?', portal)),
        "portal agencies": set(re.findall(r'data-source="([a-z_]+)"', agencies)) | (
            {"kasus_tbc"} & known(persona)),  # an integrated dataset belongs to no agency page
    }


@pytest.mark.parametrize("persona", PERSONAS)
def test_each_caller_knows_of_the_same_datasets_on_every_path(catalog, persona):
    for path, ids in _listed_by(catalog, persona).items():
        assert ids & set(DATASETS) == known(persona), (persona, path)


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("persona", PERSONAS)
def test_a_dataset_not_known_of_is_not_found_on_every_path(catalog, persona, dataset):
    base, headers = catalog["base"], catalog["headers"][persona]
    token = headers.get("Authorization", "").removeprefix("Bearer ")
    answers = {
        "metadata": httpx.get(f"{base}/api/datasets/{dataset}", headers=headers),
        "dictionary": httpx.get(f"{base}/api/datasets/{dataset}/dictionary", headers=headers),
        "versions": httpx.get(f"{base}/api/datasets/{dataset}/versions", headers=headers),
        "lineage": httpx.get(f"{base}/api/datasets/{dataset}/lineage", headers=headers),
        "quality": httpx.get(f"{base}/api/datasets/{dataset}/quality", headers=headers),
        "ckan package_show": httpx.get(f"{base}/api/3/action/package_show", params={"id": dataset}, headers=headers),
        "portal": httpx.get(f"{base}/dataset/{dataset}", cookies={"hub_token": token} if token else None),
        "dcat": httpx.get(f"{base}/catalog/datasets/{dataset}", headers={**headers, "Accept": "text/turtle"}),
        "dcat distribution": httpx.get(f"{base}/catalog/datasets/{dataset}/distributions/csv.jsonld", headers=headers),
        "subscribe": httpx.post(f"{base}/api/datasets/{dataset}/subscriptions", headers=headers,
                                json={"channel": "webhook", "target": "https://93.184.215.14/hook"}),
    }
    for path, answer in answers.items():
        if dataset in known(persona):
            # 401: an anonymous caller may not make a webhook
            assert answer.status_code in (200, 201, 422) or (path, persona, answer.status_code) == (
                "subscribe", "anonim", 401), (persona, dataset, path, answer.status_code)
        else:
            assert answer.status_code == 404, (persona, dataset, path, answer.status_code)
            assert "Kasus" not in answer.text and "tuberkulosis" not in answer.text.lower(), (persona, path)


# --- runs and quarantine ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", SOURCES)
@pytest.mark.parametrize("persona", PERSONAS)
def test_quarantine_and_runs_are_for_stewards_and_the_owner(catalog, persona, dataset):
    role, agency = PERSONAS[persona]
    owner = {"dinkes_faskes": "dinkes", "disdukcapil_siak": "disdukcapil", "dinkes_sitb": "dinkes",
             "dpmptsp_oss": "dpmptsp"}[dataset]
    headers = catalog["headers"][persona]
    answer = httpx.get(f"{catalog['base']}/api/datasets/{dataset}/quarantine", headers=headers)
    about = httpx.get(f"{catalog['base']}/api/datasets/{dataset}", headers=headers)
    if dataset not in known(persona):
        assert answer.status_code == about.status_code == 404
        return
    if role is None:
        assert answer.status_code == 401
    elif role == "steward" or agency == owner:
        assert answer.status_code == 200 and answer.json()["rows"]
        records = [r.get("record") for r in answer.json()["rows"]]
        assert all(records) if agency == owner else not any(records)  # values: the owner's own only
    else:
        assert answer.status_code == 403
    assert ("runs" in about.json()) == (role == "steward" or agency == owner)


# --- errors say nothing the caller may not see ----------------------------------------------------------------


def test_errors_name_only_what_the_caller_may_see(catalog):
    base, headers = catalog["base"], catalog["headers"]
    hidden = httpx.get(f"{base}/api/datasets/dpmptsp_oss/rows", params={"filter": "nama_pemilik~a"})
    assert hidden.status_code == 400 and "no field 'nama_pemilik'" in hidden.text
    assert "nama_pemilik" not in hidden.json()["detail"].partition("fields:")[2]
    masked = httpx.get(f"{base}/api/datasets/dpmptsp_oss/rows", params={"sort": "nama_pemilik"},
                       headers=headers["analis"])
    assert masked.status_code == 400 and "masked for you" in masked.text
    owner = httpx.get(f"{base}/api/datasets/dpmptsp_oss/rows", params={"sort": "nama_pemilik", "limit": 5},
                      headers=headers["dpmptsp"])
    assert owner.status_code == 200
    said = {who: httpx.get(f"{base}/api/datasets/dpmptsp_oss/rows", params={"limit": 1},
                           headers=headers[who]).json()["withheld_fields"] for who in ("anonim", "analis")}
    assert said == {"anonim": ["nama_pemilik"], "analis": []}  # what is left out is said, not silently dropped
    page = httpx.get(f"{base}/dataset/dpmptsp_oss").text
    assert re.search(r"tidak ditampilkan untuk Anda: <code>nama_pemilik</code>", page)
    unknown = httpx.post(f"{base}/api/sql", json={"sql": "SELECT * FROM dinkes_sitb"}, headers=headers["walidata"])
    assert unknown.status_code == 400 and "dinkes_sitb" not in unknown.json()["detail"].partition("datasets:")[2]
    needs = httpx.post(f"{base}/api/sql", json={"sql": "SELECT * FROM dinkes_faskes, disdukcapil_siak"})
    assert needs.status_code == 401 and "send a token" in needs.text
    column = httpx.post(f"{base}/api/sql", json={"sql": "SELECT nama_pemilik FROM dpmptsp_oss"})
    assert column.status_code == 400 and "nama_pemilik" in column.text  # as a column that is not there
    for answer in (hidden, masked, unknown, needs, column):
        assert not re.search(r"\d{16}", answer.text)


def test_sql_cannot_call_the_pseudonym_function_to_find_a_person(catalog):
    """Pseudonyms are made before the data reaches a caller's sandbox (`catalog.views`): the function that makes
    them is not there to call."""
    [nik] = sorted(catalog["raw"]["disdukcapil_siak"]["nik"])[:1]
    answer = httpx.post(f"{catalog['base']}/api/sql", headers=catalog["headers"]["analis"],
                        json={"sql": f"SELECT count(*) FROM disdukcapil_siak WHERE nik = _hub_pseudonym('{nik}')"})
    assert answer.status_code == 400 and "_hub_pseudonym does not exist" in answer.text


def test_pseudonyms_are_stable_distinct_and_say_nothing_of_the_nik(catalog):
    """A person has the same pseudonym on every request (and in every dataset: tests/serving/test_api.py), so
    an analyst can count people and link datasets without seeing a NIK."""
    base, analyst = catalog["base"], catalog["headers"]["analis"]
    ask = lambda: httpx.post(f"{base}/api/sql", headers=analyst,  # noqa: E731
                             json={"sql": "SELECT nik FROM disdukcapil_siak ORDER BY nik"}).json()["rows"]
    first = ask()
    assert first == ask() and len({r["nik"] for r in first}) == len(first) > 0
    niks = catalog["raw"]["disdukcapil_siak"]["nik"]
    assert not any(r["nik"] in niks for r in first)


# --- an attacker's SQL ------------------------------------------------------------------------------------
# Statements that try to read a dataset's raw files (data, metadata, manifests), or to learn where they are,
# from every SQL path: {file} is a file of the warehouse, {folder} its folder, {dataset} the dataset it holds.

RAW_FILE_ATTEMPTS = [
    "SELECT * FROM '{file}'",
    'SELECT * FROM "{file}"',
    "SELECT * FROM read_parquet('{file}')",
    "SELECT * FROM parquet_scan(['{file}'])",
    "SELECT * FROM read_blob('{file}')",
    "SELECT * FROM read_text('{file}')",
    "SELECT * FROM read_json_auto('{file}')",
    "SELECT * FROM parquet_metadata('{file}')",
    "SELECT * FROM glob('{folder}/*')",
    "SELECT * FROM query_table('{file}')",
    "SELECT * FROM query('SELECT * FROM ''{file}''')",
    'SELECT * FROM (WITH "{file}" AS (SELECT 1 AS x) SELECT * FROM "{file}") a, "{file}" b',
    "SELECT * FROM (WITH \"{file}\" AS (SELECT 1 AS x) SELECT * FROM '{file}') a, '{file}' b",
    'WITH {dataset} AS (SELECT * FROM "{file}") SELECT * FROM {dataset}',
    'WITH "{dataset}" AS (SELECT * FROM \'{file}\') SELECT * FROM "{dataset}"',
    'SELECT * FROM {dataset} WHERE EXISTS (SELECT * FROM "{file}")',
    'SELECT * FROM {dataset}, LATERAL (SELECT * FROM "{file}") AS raw',
    "SELECT * FROM (WITH \"{file}\" AS (SELECT * FROM {dataset}) SELECT 1) s, LATERAL (SELECT * FROM '{file}') l",
    'SELECT * FROM "{dataset}" UNION ALL BY NAME SELECT * FROM "{file}"',
    "SELECT * FROM {dataset} UNION ALL BY NAME (WITH x AS (SELECT * FROM '{file}') SELECT * FROM x)",
]
SETTING_ATTEMPTS = [
    "SELECT current_setting('temp_directory') AS t",
    "SELECT current_setting('allowed_paths') AS t",
    "SELECT current_setting('allowed_directories') AS t",
    "SELECT current_setting('secret_directory') AS t",
    "SELECT * FROM dinkes_faskes WHERE current_setting('temp_directory') IS NOT NULL",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM duckdb_views()",
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM duckdb_databases()",
    "SELECT * FROM duckdb_temporary_files()",
    "SELECT * FROM duckdb_extensions()",
    "SELECT * FROM duckdb_secrets()",
    "SELECT * FROM duckdb_functions()",
    "SELECT * FROM pragma_database_list",
]
ATTACKERS = ("anonim", "analis", "dinsos")  # dinsos: an agency cleared for SIAK's residents, not for SITB's cases


def _sql_paths(catalog, persona: str):
    """Each SQL path as a function of a statement: the API, CKAN's datastore_search_sql, the portal's SQL
    page and its CSV export (signed in with the persona's token as the portal's cookie)."""
    base, headers = catalog["base"], catalog["headers"][persona]
    token = headers.get("Authorization", "").removeprefix("Bearer ")
    cookies = {"hub_token": token} if token else None
    client = httpx.Client(base_url=base, headers=headers, timeout=60)
    portal = httpx.Client(base_url=base, cookies=cookies, timeout=60)
    return {
        "api": lambda sql: client.post("/api/sql", json={"sql": sql}),
        "ckan": lambda sql: client.post("/api/3/action/datastore_search_sql", json={"sql": sql}),
        "portal": lambda sql: portal.post("/sql", data={"sql": sql}),
        "csv": lambda sql: portal.post("/sql.csv", data={"sql": sql}),
    }


def _not_for(catalog, persona: str) -> list[str]:
    """Every personal value `persona` may not see plain."""
    values = []
    for dataset, fields in catalog["raw"].items():
        rule = expected(persona, dataset)
        for field, found in fields.items():
            if isinstance(rule, int) or rule.get(field) != "plain":
                values += [v for v in found if len(v) > 3]
    return values


def _raw_files(catalog) -> dict[str, list]:
    """Each dataset's files in the warehouse: data, table metadata, manifest lists and manifests."""
    warehouse = catalog["home"] / "warehouse"
    found = {}
    for dataset in DATASETS:
        folder = next(warehouse.glob(f"*/{dataset}"))
        found[dataset] = sorted(p for p in folder.rglob("*") if p.is_file())
        assert {p.suffix for p in found[dataset]} >= {".parquet", ".json", ".avro"}, dataset
    return found


def _statements(catalog, every_file: bool) -> list[str]:
    statements = list(SETTING_ATTEMPTS)
    for dataset, files in _raw_files(catalog).items():
        if not every_file:  # one file of each kind of the dataset with the most personal data
            if dataset != "disdukcapil_siak":
                continue
            files = [next(f for f in files if f.suffix == suffix) for suffix in (".parquet", ".json", ".avro")]
        for f in files:
            statements += [t.format(file=f, folder=f.parent, dataset=dataset) for t in RAW_FILE_ATTEMPTS]
    return statements


@pytest.mark.parametrize("persona", ATTACKERS)
@pytest.mark.parametrize("path", ["api", "ckan", "portal", "csv"])
def test_no_sql_path_reads_a_raw_file_or_a_setting(catalog, path, persona):
    """Refused with a 4xx, and no personal value the caller may not see in the answer (the API gets every file
    of every dataset; the other paths one file of each kind of SIAK's residents)."""
    send = _sql_paths(catalog, persona)[path]
    secret = _not_for(catalog, persona)
    assert len(secret) > 100
    for sql in _statements(catalog, every_file=path == "api"):
        answer = send(sql)
        assert 400 <= answer.status_code < 500, (path, persona, sql, answer.status_code, answer.text[:300])
        leaked = [v for v in secret if v in answer.text]
        assert not leaked, (path, persona, sql, len(leaked))

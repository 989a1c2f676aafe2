"""Self-service for agencies: scaffold a registration, check it, and try it on a sample."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hub.errors import ConfigError
from hub.settings import Settings
from hub.suggest import nearest

__all__ = ["check", "load_registry", "mapping_columns", "missing_columns", "sample", "scaffold"]


def load_registry(settings: Settings) -> tuple[list, list[dict]]:
    """The registrations that load, by id, and the problems of those that do not (`{"file", "error"}`).

    What Airflow and `hub status` read: one broken registration (or the standard it names) never takes the
    others' DAGs with it.
    """
    from connectors.registry import load_source

    if not settings.registry.is_dir():
        raise ConfigError(f"source registry folder {settings.registry} does not exist (set HUB_REGISTRY)")
    sources, problems = [], []
    for path in sorted(settings.registry.glob("*.yaml")):
        try:
            sources.append(load_source(path, settings.home, settings.data_dirs))
        except Exception as e:  # a standard or code list it names may be what is broken
            problems.append({"file": str(path), "error": str(e) if isinstance(e, ConfigError) else
                             f"{type(e).__name__}: {e}"})
    return sources, problems


def scaffold(settings: Settings, kind: str, source_id: str, standard_ref: str, agency: str) -> Path:
    """Write `<registry>/<source_id>.yaml` for a kind, with the standard's fields to map; never overwrite."""
    import yaml

    from connectors.kinds import kind_class
    from schemas import load_standard

    cls = kind_class(kind)
    standard = load_standard(standard_ref)
    path = settings.registry / f"{source_id}.yaml"
    if path.exists():
        raise ConfigError(f"{path} exists already; edit it, or choose another source id")

    def block(data: dict) -> str:
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, default_flow_style=False).rstrip()

    fields = []
    for f in standard.fields:
        notes = [f.type, "required" if f.required else "optional"]
        if f.code_list:
            notes.append(f"code list {f.code_list['name']}")
        if f.format:
            notes.append(f.format)
        fields.append(f"  {f.name}: {{from: TODO}}  # {f.title}: {', '.join(notes)}")
    text = "\n".join([
        f"# A {kind} source. Replace every TODO, then:",
        f"#   hub sources check {source_id}          checks this file and reaches the system",
        f"#   hub sources test {source_id} --limit 100   tries the first records, writing nothing",
        f"# Options of the {kind} kind: docs/connectors.md. The mapping language: docs/mapping.md.",
        block({"id": source_id, "title": "TODO: judul sumber data", "description": "TODO: isi, cakupan, asal data",
               "agency": {"code": agency, "name": "TODO: nama instansi"}, "standard": standard.ref, "kind": kind,
               "schedule": "@daily"}),
        block({"options": cls.example_options(source_id)}),
        f"# One line per field of {standard.ref}: `from` names the source's column; add normalize, crosswalk or",
        "# date_formats where the source writes values its own way. Drop the optional fields it does not have.",
        "mapping:",
        *fields,
        "",
    ])
    settings.registry.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def check(settings: Settings, source_id: str) -> dict:
    """Validate a registration, reach its system and read its column names. Raises ConfigError or a SourceError
    with the reason.

    Names every required field of the standard the mapping leaves unfilled, and every column the mapping reads
    that the source does not have (`missing_columns`: field, column, `at` in the mapping, and `did_you_mean`, the
    source's nearest column): compared exactly, as harmonization reads them. `columns` are the source's column
    names (None when nothing tells them, as an API that sent no record yet, or when they look like a record's
    values: `columns_hidden`); a name that may be personal data is never among them.
    """
    from connectors import connector_for
    from hub.pipeline import find_source
    from schemas import load_standard
    from transforms.mapping import check_mapping

    source = find_source(settings, source_id)
    standard = load_standard(source.standard_ref)
    check_mapping(source, standard)
    unmapped = [f.name for f in standard.fields if f.required and f.name not in source.mapping]
    connector = connector_for(source)
    connector.check()
    missing, shown, hidden = missing_columns(source.mapping, connector.columns())
    return {"source": source.id, "file": str(source.path), "standard": standard.ref, "system": connector.describe(),
            "incremental": connector.incremental, "required_fields_not_mapped": unmapped,
            "missing_columns": missing, "columns": shown, "columns_hidden": hidden}


def closest_regions(spec: dict, field, record: dict, narrow: bool = True) -> list[dict]:
    """The regions closest to the name a record gives for a field mapped with a region step, most alike first:
    what a name that did not resolve may have meant. `narrow`: only those in the record's kecamatan (not where
    the name is of a region in another kecamatan: that region is what to show)."""
    from transforms import regions
    from transforms.mapping import region_scope

    scope = region_scope(spec, field)
    kecamatan = spec["region"].get("kecamatan") if isinstance(spec["region"], dict) and narrow else None
    found = regions.candidates(record[spec["from"]], level=scope["level"], within=str(scope["within"]),
                               edition=scope["edition"], kecamatan=record.get(kecamatan) if kecamatan else None)
    return [{"code": code, "name": name} for code, name in found]


def mapping_columns(mapping: dict) -> list[tuple[str, str, str]]:
    """(field, where in the field's mapping, source column) of every column a mapping reads."""
    from transforms.mapping import columns_used

    return [(field, at, column) for field, spec in mapping.items() if isinstance(spec, dict)
            for at, column in columns_used(spec)]


def missing_columns(mapping: dict, columns: list[str] | None) -> tuple[list[dict], list[str] | None, bool]:
    """The columns `mapping` reads that are not among `columns`, each with the nearest one; the columns as they may
    be shown; and whether they are withheld for looking like a record's values.

    A name that may be a value (transforms.mapping.shown_name) is shown as NOT_SHOWN and never suggested.
    Where a name holds such a run of digits, the whole header is taken for a record: nothing of it is shown (its
    other names would be the person's name, address, ...), nor suggested.
    """
    from transforms.mapping import NOT_SHOWN, VALUE_DIGITS, shown_name

    if columns is None:
        return [], None, False
    hidden = any(VALUE_DIGITS.search(name) for name in columns)
    shown = None if hidden else [shown_name(name) for name in columns]
    choices = [name for name in shown or () if name != NOT_SHOWN]
    present = set(columns)
    missing = []
    for field, at, column in mapping_columns(mapping):
        if column not in present:
            near = nearest(column, choices)
            missing.append({"field": field, "column": column, "at": f"mapping/{field}/{at}",
                            "did_you_mean": near[0] if near else None})
    return missing, shown, hidden


def sample(settings: Settings, source_id: str, limit: int, show: int = 5, lang: str = "id") -> dict:
    """Read, harmonize and validate a source's first `limit` records; write nothing to the catalog.

    What would be published is shown with personal data masked; each rejected row with its reasons (the code, and
    the sentence in `lang` that says what was expected) and, for fields that are not personal data, the value the
    source sent.
    """
    import pyarrow.parquet as pq

    from catalog.masking import mask_table, personal_fields
    from hub.pipeline import find_source, stage_into
    from hub.reasons import explainer
    from schemas import load_standard
    from transforms import regions

    source = find_source(settings, source_id)
    standard = load_standard(source.standard_ref)
    personal = personal_fields(standard)
    with tempfile.TemporaryDirectory(prefix=f"hub-test-{source_id}-") as folder:
        summary = stage_into(Path(folder), source, "sources-test", cursor=None, limit=limit)
        data = pq.ParquetFile(Path(folder) / "data.parquet")
        preview = mask_table(next(data.iter_batches(batch_size=show), None) or data.schema_arrow.empty_table(),
                             personal) if data.metadata.num_rows else None
        rejected = pq.read_table(Path(folder) / "quarantine.parquet").sort_by("row").to_pylist()

    sentence = explainer(standard=standard, source=source, lang=lang)

    def reason(code: str, record: dict, details: dict) -> dict:
        field, _, rule = code.partition(":")
        column = (source.mapping.get(field) or {}).get("from")
        item = {"field": field, "rule": rule, "sentence": sentence(code, details.get(code))}
        if column and column in record:
            item["column"] = column
            item["value"] = "***" if field in personal else record[column]
            if rule in regions.RULES and field not in personal and isinstance(record[column], str):
                item["candidates"] = closest_regions(source.mapping[field], standard.field(field), record,
                                                     narrow=rule != "region_not_in_kecamatan")
        return item

    return {
        "source": source_id, "standard": standard.ref, "rows_read": summary["rows_in"],
        "would_publish": summary["rows_valid"], "would_quarantine": summary["rows_quarantined"],
        "identical_repeats": summary["rows_repeated"], "repeated_rows": summary["validation"]["duplicates"]["rows"],
        "reasons": summary["validation"]["reasons"],
        "published_preview": [] if preview is None else json.loads(json.dumps(preview.to_pylist(), default=str)),
        "rejected": [{"row": r["row"], "reasons": [reason(code, json.loads(r["record"]), json.loads(r["details"] or "{}"))
                                                   for code in r["reasons"]]} for r in rejected],
        "masked_fields": sorted(personal),
    }


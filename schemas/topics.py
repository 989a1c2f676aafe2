"""The city's data topics (schemas/topics.yaml): which standards each covers, its Satu Data and EU data theme."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from hub.followed import BrokenFile, Followed, Problem, yaml_document
from schemas.standards import STANDARDS_DIR

__all__ = ["EU_THEMES", "TOPICS_FILE", "Topic", "topics", "topics_of"]

TOPICS_FILE = Path(__file__).resolve().parent / "topics.yaml"
MAX_TOPICS_BYTES = 1 << 20  # a page of YAML per topic: far less than this
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_TEXTS = ("id", "title", "title_en", "satu_data", "eu_theme")
# The codes of the EU data-theme vocabulary (http://publications.europa.eu/resource/authority/data-theme), which
# DCAT-AP names a dataset's dcat:theme from.
EU_THEMES = {"AGRI": "Agriculture, fisheries, forestry and food", "ECON": "Economy and finance",
             "EDUC": "Education, culture and sport", "ENER": "Energy", "ENVI": "Environment",
             "GOVE": "Government and public sector", "HEAL": "Health", "INTR": "International issues",
             "JUST": "Justice, legal system and public safety", "REGI": "Regions and cities",
             "SOCI": "Population and society", "TECH": "Science and technology", "TRAN": "Transport"}


@dataclass(frozen=True)
class Topic:
    id: str
    title: str  # Indonesian
    title_en: str
    satu_data: str  # the Satu Data Indonesia (data.go.id) topic it falls under
    eu_theme: str  # its code in the EU data-theme vocabulary (EU_THEMES)
    standards: tuple[str, ...]  # names of data standards, without version


# Read again when the file changes (hub.followed): a running server sees a steward's edit on its next call.
_cache = Followed("topics")


def topics(path: Path | None = None, standards: Path | None = None) -> list[Topic]:
    """The topics of `path` (default TOPICS_FILE), in order, checked: ids unique, every standard named has a
    file in `standards` (default the checkout's schemas/standards). A broken file raises a BrokenFile naming
    the file, line and column of each problem (a file that was good before keeps its last good topics)."""
    path = Path(path or TOPICS_FILE).resolve()
    standards = Path(standards or STANDARDS_DIR).resolve()
    # The standards folder is followed too: a standard added or removed changes what the file may name.
    return list(_cache.get(("topics", standards), [path, standards], lambda: _read(path, standards)))


def topics_of(standard_name: str, path: Path | None = None) -> list[str]:
    """The ids of the topics that cover the standard `standard_name`, in the topics' order."""
    return [t.id for t in topics(path) if standard_name in t.standards]


def _read(path: Path, standards: Path) -> tuple[Topic, ...]:
    where = str(path)
    problems: list[Problem] = []

    def at(node, message: str) -> None:
        problems.append(Problem(where, node.start_mark.line + 1, node.start_mark.column + 1, message))

    root = yaml_document(path, MAX_TOPICS_BYTES)
    if not isinstance(root, yaml.SequenceNode) or not root.value:
        raise BrokenFile([Problem(where, root.start_mark.line + 1 if root else 1, 1, "the topics are a list, each "
                                  "with id, title, title_en, satu_data, eu_theme and standards")])
    known = {p.name.rsplit("-", 1)[0] for p in standards.glob("*-*.json")}
    found, seen = [], {}
    for node in root.value:
        if not isinstance(node, yaml.MappingNode):
            at(node, "a topic is a mapping with id, title, title_en, satu_data, eu_theme and standards")
            continue
        fields = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.value not in (*_TEXTS, "standards"):
                at(key, f"a topic has no key {getattr(key, 'value', '')!r}; its keys: {', '.join(_TEXTS)}, standards")
            elif key.value in fields:
                at(key, f"{key.value!r} twice in one topic")
            else:
                fields[key.value] = value
        name = fields.get("id")
        label = f"topic {name.value!r}" if isinstance(name, yaml.ScalarNode) and name.value else "a topic"
        missing = [k for k in (*_TEXTS, "standards") if k not in fields]
        if missing:
            at(node, f"{label} has no {', '.join(missing)}")
            continue
        texts = [k for k in _TEXTS if not isinstance(fields[k], yaml.ScalarNode) or not fields[k].value.strip()]
        for key in texts:
            at(fields[key], f"the {key} of {label} is a text")
        if texts:
            continue
        if not _ID.match(name.value):
            at(name, f"{label}: an id is lower-case letters, digits and _, starting with a letter")
        elif name.value in seen:
            at(name, f"{label} twice: also on line {seen[name.value]}")
        seen.setdefault(name.value, name.start_mark.line + 1)
        if fields["eu_theme"].value.strip() not in EU_THEMES:
            at(fields["eu_theme"], f"{label}: no EU data theme {fields['eu_theme'].value.strip()!r}; "
                                   f"themes: {', '.join(EU_THEMES)}")
        listed = fields["standards"]
        if not isinstance(listed, yaml.SequenceNode) or not listed.value:
            at(listed, f"the standards of {label} are a list of standard names")
            continue
        names = []
        for item in listed.value:
            if not isinstance(item, yaml.ScalarNode) or item.value not in known:
                shown = item.value if isinstance(item, yaml.ScalarNode) else "?"
                at(item, f"{label}: no standard {shown!r} in {standards.name}; standards: {', '.join(sorted(known))}")
            elif item.value in names:
                at(item, f"{label} names the standard {item.value!r} twice")
            else:
                names.append(item.value)
        found.append(Topic(*(fields[k].value.strip() for k in _TEXTS), tuple(names)))
    if problems:
        raise BrokenFile(problems)
    return tuple(found)



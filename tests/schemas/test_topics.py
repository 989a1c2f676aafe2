"""The city's topics (schemas/topics.yaml): every standard in one at least, and a broken file named with its line."""

from __future__ import annotations

import pytest

from hub.followed import BrokenFile
from schemas.standards import STANDARDS_DIR
from schemas.topics import TOPICS_FILE, Topic, topics, topics_of


def test_every_standard_is_in_a_topic():
    standards = {p.name.rsplit("-", 1)[0] for p in STANDARDS_DIR.glob("*.json")}
    covered = {name for t in topics() for name in t.standards}
    assert standards - covered == set()
    assert all(topics_of(name) for name in standards)


def test_the_topics_shipped():
    found = topics()
    assert [t.id for t in found][:2] == ["population", "social_protection"]
    assert topics_of("fasilitas_per_penduduk_kecamatan") == ["health", "education"]  # in two topics
    assert topics_of("no_such_standard") == []
    health = next(t for t in found if t.id == "health")
    assert health == Topic("health", "Kesehatan", "Health", "Kesehatan", "HEAL", health.standards)
    assert topics(TOPICS_FILE) == found


GOOD = ("- id: health\n  title: Kesehatan\n  title_en: Health\n  satu_data: Kesehatan\n  eu_theme: HEAL\n"
        "  standards: [kasus_tbc]\n")


@pytest.mark.parametrize(("content", "problem"), [
    (GOOD.replace("eu_theme: HEAL", "eu_theme: HEALTH"),
     ":5:13: topic 'health': no EU data theme 'HEALTH'; themes: AGRI, ECON"),
    (GOOD + GOOD, ":7:7: topic 'health' twice: also on line 1"),
    (GOOD.replace("[kasus_tbc]", "[kasus_tbc, kasus_dbd]"), ":6:26: topic 'health': no standard 'kasus_dbd'"),
    (GOOD.replace("[kasus_tbc]", "[kasus_tbc, kasus_tbc]"), ":6:26: topic 'health' names the standard 'kasus_tbc' twice"),
    (GOOD.replace("  title_en: Health\n", ""), ":1:3: topic 'health' has no title_en"),
    (GOOD.replace("title: Kesehatan", "title: ''"), ":2:10: the title of topic 'health' is a text"),
    (GOOD.replace("id: health", "id: Kesehatan"), ":1:7: topic 'Kesehatan': an id is lower-case letters"),
    (GOOD + "  colour: green\n", ":7:3: a topic has no key 'colour'"),
    (GOOD.replace("[kasus_tbc]", "kasus_tbc"), ":6:14: the standards of topic 'health' are a list"),
    ("health: {}\n", ":1:1: the topics are a list"),
    ("- id: [health\n", ":2:1: not valid YAML"),
])
def test_a_broken_topics_file_is_named_with_its_line(tmp_path, content, problem):
    path = tmp_path / "topics.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BrokenFile) as raised:
        topics(path)
    assert f"topics.yaml{problem}" in str(raised.value)


def test_the_topics_file_is_read_again_when_it_changes(tmp_path):
    path = tmp_path / "topics.yaml"
    path.write_text(GOOD, encoding="utf-8")
    assert topics_of("umkm", path) == []
    path.write_text(GOOD.replace("[kasus_tbc]", "[kasus_tbc, umkm]"), encoding="utf-8")
    assert topics_of("umkm", path) == ["health"]

"""axe-core, the accessibility rules engine, fetched from the npm registry once, verified, and run in a page."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
from functools import cache

from hub.settings import ROOT

__all__ = ["AXE_INTEGRITY", "AXE_VERSION", "TAGS", "axe_source", "check", "describe", "serious"]

AXE_VERSION = "4.14.1"
# The registry's dist.integrity for that version: a tarball that does not hash to it is refused, from the network
# or from the cache. A new version means a new pin of both.
AXE_INTEGRITY = "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
TARBALL = f"https://registry.npmjs.org/axe-core/-/axe-core-{AXE_VERSION}.tgz"
CACHE = ROOT / "test-output" / "cache"  # git-ignored with the rest of test-output/
TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
SERIOUS = ("serious", "critical")


def _verified(data: bytes, origin: str) -> bytes:
    algorithm, _, expected = AXE_INTEGRITY.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if actual != expected:
        raise RuntimeError(f"axe-core {AXE_VERSION} from {origin} does not match its pinned integrity "
                           f"{AXE_INTEGRITY} (got {algorithm}-{actual}): refused")
    return data


def _tarball() -> bytes:
    """The pinned tarball: from the cache if it is there and intact, else from the registry (then cached)."""
    cached = CACHE / f"axe-core-{AXE_VERSION}.tgz"
    if cached.is_file():
        try:
            return _verified(cached.read_bytes(), str(cached))
        except RuntimeError:
            cached.unlink()  # a damaged or swapped file: fetch it again, and verify that
    import httpx

    try:
        response = httpx.get(TARBALL, timeout=120, follow_redirects=True)
        response.raise_for_status()
    except httpx.HTTPError as e:
        raise RuntimeError(f"axe-core {AXE_VERSION} could not be fetched from {TARBALL} ({e}); the accessibility "
                           f"checks need it once, then find it in {CACHE}") from None
    data = _verified(response.content, TARBALL)
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(f"{cached.name}.{os.getpid()}.part")  # parallel sessions: each writes its own,
    partial.write_bytes(data)
    partial.replace(cached)  # then one atomic rename
    return data


@cache
def axe_source() -> str:
    """The text of axe.min.js of the pinned, verified axe-core."""
    with tarfile.open(fileobj=io.BytesIO(_tarball()), mode="r:gz") as tar:
        member = tar.extractfile("package/axe.min.js")
        if member is None:
            raise RuntimeError(f"axe-core {AXE_VERSION}'s tarball holds no package/axe.min.js")
        return member.read().decode("utf-8")


def check(page, tags=TAGS) -> list[dict]:
    """Run axe-core on the page as it is now, with the rules of `tags`: the violations it finds (axe's own dicts:
    id, impact, help, helpUrl, nodes with target and html).

    The portal sends no script and its Content-Security-Policy (serving.guard) allows only its own origin's: an
    inline script tag is refused, so the page's browser context must be made with `bypass_csp=True`."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(content=axe_source())
    return page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
            return result.violations;
        }""",
        list(tags),
    )


def serious(violations: list[dict]) -> list[dict]:
    """The violations of impact serious or critical: the ones a page must not have."""
    return [v for v in violations if v.get("impact") in SERIOUS]


def describe(violations: list[dict], nodes: int = 3) -> str:
    """Violations for an assertion message: per rule its id, impact, help and link, then its first `nodes`
    elements, each as its selector and HTML."""
    if not violations:
        return "no violations"
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v.get('impact')}): {v['help']} [{len(v['nodes'])} elements] {v['helpUrl']}")
        for node in v["nodes"][:nodes]:
            target = " ".join(str(t) for t in node["target"])
            lines.append(f"    at {target}: {node['html'][:200]}")
            summary = (node.get("failureSummary") or "").strip().replace("\n", " ")
            if summary:
                lines.append(f"      {summary[:300]}")
        if len(v["nodes"]) > nodes:
            lines.append(f"    ... and {len(v['nodes']) - nodes} more")
    return "\n".join(lines)


if __name__ == "__main__":
    print(f"axe-core {AXE_VERSION}: {len(axe_source())} characters of axe.min.js, tarball cached in {CACHE}")

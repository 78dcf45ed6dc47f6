"""The CycloneDX SBOM made from a lock: strictly valid, spec-conformant conda purls, the lock's
dependency graph, and the same bytes for the same lock."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from builder.lock import condalock
from builder.publish import sbom_json

REPO = Path(__file__).resolve().parents[2]
LOCKS = sorted(p.parent.name for p in (REPO / "lockfiles").glob("*/conda-lock.yml"))


def lock(name: str):
    return condalock.read(REPO / "lockfiles" / name / "conda-lock.yml")


@pytest.fixture(scope="module", params=LOCKS)
def made(request):
    """(lock, SBOM text) of each committed lock, made once (without SOURCE_DATE_EPOCH)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SOURCE_DATE_EPOCH", raising=False)
        locked = lock(request.param)
        return locked, sbom_json(locked)


def test_validates_strictly(made):
    _, text = made
    error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(text)
    assert error is None, error


def test_purls_are_conda_purls_with_the_channel_as_a_qualifier(made):
    locked, text = made
    by_ref = {
        f"{plat}/{p.file_name}": p for plat in locked.platforms for p in locked.packages[plat]
    }
    components = json.loads(text)["components"]
    components = [c for c in components if not c["purl"].startswith("pkg:pypi/")]  # demo's pip:
    assert len(components) == len(by_ref)
    for c in components:
        p = by_ref[c["bom-ref"]]
        purl = PackageURL.from_string(c["purl"])
        assert purl.to_string() == c["purl"]
        assert (purl.type, purl.namespace, purl.name, purl.version) == (
            "conda",
            None,
            p.name,
            p.version,
        )
        assert purl.qualifiers == {
            "build": p.build,
            "channel": p.channel.removeprefix("https://conda.anaconda.org/").strip("/"),
            "subdir": p.subdir,
            "type": "conda" if p.url.endswith(".conda") else "tar.bz2",
        }
        assert c["purl"].startswith(f"pkg:conda/{p.name}@")


def test_carries_the_lock_dependency_graph(made):
    locked, text = made
    sbom = json.loads(text)
    graph = {d["ref"]: set(d.get("dependsOn", ())) for d in sbom["dependencies"]}
    root = sbom["metadata"]["component"]["bom-ref"]
    for plat in locked.platforms:
        refs = {p.name: f"{plat}/{p.file_name}" for p in locked.packages[plat]}
        for p in locked.packages[plat]:
            expected = {refs[d.split()[0]] for d in p.depends if d.split()[0] in refs}
            assert graph[refs[p.name]] == expected - {refs[p.name]}, p.name
    # every package is reachable from the image
    seen, todo = set(), [root]
    while todo:
        ref = todo.pop()
        if ref not in seen:
            seen.add(ref)
            todo += graph.get(ref, ())
    assert seen == {c["bom-ref"] for c in sbom["components"]} | {root}


def test_the_same_lock_gives_the_same_bytes(monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    locked = lock("demo")
    first = sbom_json(locked)
    assert sbom_json(lock("demo")) == first
    sbom = json.loads(first)
    assert "timestamp" not in sbom["metadata"]
    assert sbom["serialNumber"].startswith("urn:uuid:")
    # another lock, another serial number
    other = dataclasses.replace(locked, packages={k: v[:-1] for k, v in locked.packages.items()})
    assert json.loads(sbom_json(other))["serialNumber"] != sbom["serialNumber"]


def test_the_timestamp_comes_from_source_date_epoch(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    text = sbom_json(lock("demo"))
    assert json.loads(text)["metadata"]["timestamp"].startswith("2023-11-14T22:13:20")
    assert sbom_json(lock("demo")) == text
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(text) is None


def with_wheels(locked):
    """The demo's lock with two wheels per platform, one requiring the other, which
    requires demo-pylib, a PyPI project the conda lock installs."""
    from builder.lock.model import PypiPackage

    def wheel(name, version, plat, depends=()):
        file = f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
        digest = f"{name} {version} {plat}".encode().hex().ljust(64, "0")[:64]
        url = f"https://pypi.fixture.invalid/files/{file}"
        return PypiPackage(name, version, plat, url, digest, depends)

    pypi = {
        plat: [
            wheel("demo-pyutil", "1.2.0", plat, ("demo-pylib-extra >=0.1",)),
            wheel("demo-pylib-extra", "0.3.1", plat, ("demo-pylib <1,>=0.2",)),
        ]
        for plat in locked.platforms
    }
    return dataclasses.replace(locked, pypi=pypi)


def test_pypi_wheels_are_pypi_purls_in_the_graph(monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    plain = dataclasses.replace(lock("demo"), pypi={})  # the fixture's wheels instead of demo's
    locked = with_wheels(plain)
    text = sbom_json(locked)
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(text) is None
    sbom = json.loads(text)
    wheels = {
        f"{plat}/pypi/{w.file_name}": w for plat in locked.platforms for w in locked.pypi[plat]
    }
    pypi = [c for c in sbom["components"] if c["purl"].startswith("pkg:pypi/")]
    assert sorted(c["bom-ref"] for c in pypi) == sorted(wheels)
    for c in pypi:
        w = wheels[c["bom-ref"]]
        purl = PackageURL.from_string(c["purl"])
        assert (purl.type, purl.namespace, purl.name, purl.version, purl.qualifiers) == (
            "pypi",
            None,
            w.name,
            w.version,
            {},
        )
        assert c["purl"] == f"pkg:pypi/{w.name}@{w.version}"
        assert c["hashes"] == [{"alg": "SHA-256", "content": w.sha256}]
    graph = {d["ref"]: set(d.get("dependsOn", ())) for d in sbom["dependencies"]}
    root = graph[sbom["metadata"]["component"]["bom-ref"]]
    for plat in locked.platforms:
        util = f"{plat}/pypi/demo_pyutil-1.2.0-py3-none-any.whl"
        extra = f"{plat}/pypi/demo_pylib_extra-0.3.1-py3-none-any.whl"
        pylib = next(p for p in locked.packages[plat] if p.name == "demo-pylib")
        assert graph[util] == {extra}
        assert graph[extra] == {f"{plat}/{pylib.file_name}"}  # the conda package
        assert util in root and extra not in root  # reachable through demo-pyutil
    # the conda part is what it was without wheels
    conda = [c for c in sbom["components"] if c["purl"].startswith("pkg:conda/")]
    assert conda == json.loads(sbom_json(plain))["components"]
    assert sbom["serialNumber"] != json.loads(sbom_json(plain))["serialNumber"]

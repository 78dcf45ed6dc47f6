"""Publish and release: tag policy (no docker), then the demo pushed to the local registry.

The registry tests publish the demo's two images (built once per session by the image
tests' ``demo_images``) into a namespace of their own, so runs never see each other's tags.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from docker_support import REGISTRY
from image.demo_support import scistacks
from publish.conftest import namespace

from builder.lock.model import LockedDistribution, LockedPackage
from builder.publish.tags import TagContext, content_tag, tags_for
from builder.registry import Registry

# ---------------------------------------------------------------- tag policy (no docker)


def _locked(versions: dict[str, dict[str, str]]) -> LockedDistribution:
    packages = {
        plat: [
            LockedPackage(n, v, "h0_0", plat, f"https://c/{plat}/{n}-{v}.conda", "m", f"s{n}{v}")
            for n, v in sorted(pkgs.items())
        ]
        for plat, pkgs in versions.items()
    }
    return LockedDistribution("x", tuple(versions), ("conda-forge",), packages, "inputs")


BOTH = {"linux-64": {"python": "3.12.7", "numpy": "2.1"}, "linux-aarch64": {"python": "3.12.7"}}


def test_tags_content_calver_sha_latest_python():
    locked = _locked(BOTH)
    tags = tags_for(TagContext("x", locked, git_sha="0123456789abcdef", today=dt.date(2025, 3, 4)))
    assert tags.immutable == (content_tag(locked), "2025.03.04", "0123456789ab")
    assert tags.mutable == ("latest", "python-3.12")
    assert content_tag(locked) == "lock-" + locked.lock_hash()[:12]


def test_calver_takes_the_next_free_suffix():
    ctx = TagContext(
        "x",
        _locked(BOTH),
        today=dt.date(2025, 3, 4),
        existing_tags=frozenset({"2025.03.04", "2025.03.04-2"}),
    )
    assert "2025.03.04-3" in tags_for(ctx).immutable


def test_version_tag_only_when_every_platform_agrees():
    split = {"linux-64": {"python": "3.12.7"}, "linux-aarch64": {"python": "3.11.9"}}
    assert tags_for(TagContext("x", _locked(split))).mutable == ("latest",)
    no_python = {"linux-64": {"r-base": "4.4.1"}}
    assert tags_for(TagContext("x", _locked(no_python))).mutable == ("latest", "r-4.4")


def test_content_tag_follows_packages_not_spec():
    a, b = _locked(BOTH), _locked(BOTH)
    b.inputs_hash = "other inputs"
    assert content_tag(a) == content_tag(b)
    changed = _locked({**BOTH, "linux-aarch64": {"python": "3.12.8"}})
    assert content_tag(changed) != content_tag(a)


# ---------------------------------------------------------------- the demo, published


def _namespace() -> str:
    return namespace()


@pytest.fixture(scope="module")
def published(smoked) -> tuple[Path, str, dict]:
    namespace = _namespace()
    proc = scistacks(smoked, "publish", "demo", "--registry", namespace)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((smoked / "build" / "publish" / "demo.json").read_text())
    return smoked, namespace, record


@pytest.mark.docker
@pytest.mark.arm64
@pytest.mark.registry
def test_publish_pushes_one_multiarch_image_with_its_tags(published):
    project, namespace, record = published
    repo = f"{namespace}/demo"
    inspect = subprocess.run(
        ["docker", "buildx", "imagetools", "inspect", "--raw", f"{repo}:latest"],
        capture_output=True,
        text=True,
        check=True,
    )
    index = json.loads(inspect.stdout)
    platforms = {
        f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index["manifests"]
    }
    assert {"linux/amd64", "linux/arm64"} <= platforms
    lock_hash = json.loads((project / "build" / "images" / "demo.json").read_text())["lock_hash"]
    content = f"lock-{lock_hash[:12]}"
    registry = Registry(REGISTRY)
    tags = set(registry.tags(repo.split("/", 1)[1]))
    today = dt.datetime.now(dt.UTC).strftime("%Y.%m.%d")
    assert {content, f"{content}-amd64", f"{content}-arm64", today, "latest"} <= tags
    # the demo project is no git checkout: no sha tag; it locks no python: no python-* tag
    assert not any(t.startswith("python-") for t in tags)
    digests = {registry.manifest(repo.split("/", 1)[1], t)[2] for t in (content, today, "latest")}
    assert digests == {record["digest"]}
    assert set(record["platforms"]) == {"linux/amd64", "linux/arm64"}


@pytest.mark.docker
@pytest.mark.arm64
@pytest.mark.registry
def test_artifacts_are_attached_and_the_sbom_matches_the_lock(published):
    project, namespace, record = published
    registry = Registry(REGISTRY)
    repository = f"{namespace}/demo".split("/", 1)[1]
    entries = registry.referrers(repository, record["digest"])
    assert {e["artifactType"] for e in entries} >= {
        "application/vnd.scistacks.packages+markdown",
        "application/vnd.cyclonedx+json",
        "application/vnd.scistacks.smoke+markdown",
    }
    sbom_entry = next(e for e in entries if e["artifactType"] == "application/vnd.cyclonedx+json")
    manifest = json.loads(registry.manifest(repository, sbom_entry["digest"])[0])
    sbom = json.loads(registry.blob(repository, manifest["layers"][0]["digest"]))
    assert sbom["bomFormat"] == "CycloneDX"
    lock = __import__("yaml").safe_load(
        (project / "lockfiles" / "demo" / "conda-lock.yml").read_text()
    )
    purl_type = {"conda": "pkg:conda/", "pip": "pkg:pypi/"}  # demo has both
    expected = {
        (purl_type[p["manager"]], p["name"], p["version"], p["hash"]["sha256"])
        for p in lock["package"]
        if p["platform"] in ("linux-64", "linux-aarch64")
    }
    assert {e[0] for e in expected} == set(purl_type.values())
    got = set()
    for c in sbom["components"]:
        sha = next(h["content"] for h in c["hashes"] if h["alg"] == "SHA-256")
        kind = c["purl"][: c["purl"].index("/") + 1]
        got.add((kind, c["name"], c["version"], sha))
        assert f"@{c['version']}" in c["purl"]
    assert got == expected


@pytest.mark.docker
@pytest.mark.arm64
@pytest.mark.registry
def test_second_publish_and_release_are_noops(published):
    project, namespace, record = published
    started = time.monotonic()
    proc = scistacks(project, "publish", "demo", "--registry", namespace)
    seconds = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("unchanged:") and record["digest"] in proc.stdout
    assert seconds < 5  # mostly interpreter start-up; the registry side is two GETs
    proc = scistacks(project, "release", "demo", "--registry", namespace)
    assert proc.returncode == 0, proc.stderr
    assert "nothing built, smoke-tested or pushed" in proc.stderr
    assert proc.stdout.startswith("unchanged:")


@pytest.mark.docker
@pytest.mark.arm64
@pytest.mark.registry
@pytest.mark.parametrize("record", ['{"digest": "sha256:00", "extra": 1}', "[1, 2]", "{"])
def test_a_damaged_publish_record_is_rebuilt_from_the_registry(published, tmp_path, record):
    project, namespace, expected = published
    copy = tmp_path / "demo"
    shutil.copytree(project, copy)
    (copy / "build" / "publish" / "demo.json").write_text(record)
    proc = scistacks(copy, "publish", "demo", "--registry", namespace)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("unchanged:")
    rewritten = json.loads((copy / "build" / "publish" / "demo.json").read_text())
    assert rewritten["digest"] == expected["digest"]
    assert rewritten["immutable"] == expected["immutable"]  # content and date; no new date
    assert rewritten["platforms"] == expected["platforms"]
    assert rewritten["artifacts"].keys() >= expected["artifacts"].keys()


@pytest.mark.docker
@pytest.mark.arm64
@pytest.mark.registry
def test_a_spec_changed_since_its_lock_is_refused_even_when_the_lock_is_published(
    published, tmp_path
):
    project, namespace, _ = published
    copy = tmp_path / "demo"
    shutil.copytree(project, copy)
    spec = copy / "distributions" / "demo" / "distribution.yml"
    spec.write_text(spec.read_text().replace("  - demo-tool\n", "  - demo-tool >=0.1\n"))
    for command in ("publish", "release"):
        proc = scistacks(copy, command, "demo", "--registry", namespace)
        assert proc.returncode == 1
        [line] = proc.stderr.strip().splitlines()
        assert "lock is out of date" in line, line


@pytest.mark.docker
@pytest.mark.arm64
@pytest.mark.registry
def test_release_on_a_machine_that_never_built_it_builds_nothing(published, tmp_path):
    project, namespace, expected = published
    fresh = tmp_path / "fresh-runner"  # a checkout: specs and locks, no build/, no images
    shutil.copytree(project, fresh, ignore=shutil.ignore_patterns("build"))
    started = time.monotonic()
    proc = scistacks(fresh, "release", "demo", "--registry", namespace)
    seconds = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("unchanged:") and expected["digest"] in proc.stdout
    assert "nothing built, smoke-tested or pushed" in proc.stderr
    assert not (fresh / "build" / "images").exists() and not (fresh / "build" / "smoke").exists()
    assert (
        json.loads((fresh / "build" / "publish" / "demo.json").read_text())["digest"]
        == (expected["digest"])
    )
    assert seconds < 10  # registry reads only (the benchmark measures it)


@pytest.mark.docker
@pytest.mark.arm64
@pytest.mark.registry
def test_release_attaches_the_profile_snippet_pinned_by_content_tag(published):
    project, namespace, record = published
    proc = scistacks(project, "release", "demo", "--registry", namespace)
    assert proc.returncode == 0, proc.stderr
    registry = Registry(REGISTRY)
    repository = f"{namespace}/demo".split("/", 1)[1]
    entries = registry.referrers(
        repository, record["digest"], "application/vnd.scistacks.profile+yaml"
    )
    assert len(entries) == 1  # the no-op release did not attach a second one
    manifest = json.loads(registry.manifest(repository, entries[0]["digest"])[0])
    files = {
        layer["annotations"]["org.opencontainers.image.title"]: registry.blob(
            repository, layer["digest"]
        )
        for layer in manifest["layers"]
    }
    assert set(files) == {"profile-z2jh.yaml", "profile-kubespawner.py"}
    lock_hash = json.loads((project / "build" / "images" / "demo.json").read_text())["lock_hash"]
    pinned = f"{namespace}/demo:lock-{lock_hash[:12]}"
    values = __import__("yaml").safe_load(files["profile-z2jh.yaml"])
    assert pinned in json.dumps(values["singleuser"]["profileList"])
    scope: dict = {"c": type("Config", (), {"KubeSpawner": type("K", (), {})()})()}
    exec(compile(files["profile-kubespawner.py"], "profile-kubespawner.py", "exec"), scope)
    assert pinned in json.dumps(scope["c"].KubeSpawner.profile_list)
    assert "latest" not in files["profile-z2jh.yaml"].decode()


@pytest.mark.docker
@pytest.mark.arm64
@pytest.mark.registry
def test_profiles_attach_needs_a_publish_record_only_when_named(published, tmp_path):
    project, namespace, record = published
    proc = scistacks(project, "profiles", "--registry", namespace, "--attach")
    assert proc.returncode == 0, proc.stderr
    assert f"{namespace}/demo:lock-" in proc.stdout
    entries = Registry(REGISTRY).referrers(
        f"{namespace}/demo".split("/", 1)[1],
        record["digest"],
        "application/vnd.scistacks.profile+yaml",
    )
    assert len(entries) == 1

    unpublished = tmp_path / "demo"
    shutil.copytree(project, unpublished, ignore=shutil.ignore_patterns("publish"))
    quiet = scistacks(unpublished, "profiles", "--registry", namespace, "--attach")
    assert quiet.returncode == 0, quiet.stderr  # nothing published here: nothing to attach
    named = scistacks(unpublished, "profiles", "--registry", namespace, "--attach", "demo")
    assert named.returncode == 1 and named.stdout == ""
    [line] = named.stderr.strip().splitlines()
    assert "build/publish/demo.json" in line and "scistacks publish demo" in line


@pytest.mark.docker
@pytest.mark.arm64
@pytest.mark.registry
def test_unreachable_registry_is_one_line_naming_it(smoked):
    for command in ("publish", "release"):
        proc = scistacks(smoked, command, "demo", "--registry", "localhost:1/x")
        assert proc.returncode == 1
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "localhost:1" in lines[0], proc.stderr


@pytest.mark.docker
@pytest.mark.arm64
@pytest.mark.registry
def test_existing_immutable_tag_with_other_content_is_refused(smoked, tmp_path):
    project = tmp_path / "demo"
    shutil.copytree(smoked, project, ignore=shutil.ignore_patterns("publish"))
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(project),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
        check=True,
    )
    sha = subprocess.run(
        ["git", "-C", str(project), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    namespace = _namespace()
    repository = f"{namespace}/demo".split("/", 1)[1]
    registry = Registry(REGISTRY)
    # the commit's tag already names something else (an empty index)
    other = (
        b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}'
    )
    registry.put_manifest(repository, sha[:12], other, "application/vnd.oci.image.index.v1+json")
    proc = scistacks(project, "publish", "demo", "--registry", namespace)
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and sha[:12] in proc.stderr
    assert registry.tags(repository) == [sha[:12]]  # nothing pushed, no mutable tag moved
    assert not (project / "build" / "publish" / "demo.json").exists()


@pytest.mark.docker
@pytest.mark.arm64
@pytest.mark.registry
def test_missing_platform_image_refuses_before_pushing(smoked, tmp_path):
    project = tmp_path / "demo"
    shutil.copytree(smoked, project, ignore=shutil.ignore_patterns("publish"))
    record_file = project / "build" / "images" / "demo.json"
    record = json.loads(record_file.read_text())
    del record["platforms"]["linux-aarch64"]
    record_file.write_text(json.dumps(record))
    namespace = _namespace()
    proc = scistacks(project, "publish", "demo", "--registry", namespace)
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and "linux/arm64" in proc.stderr
    assert Registry(REGISTRY).tags(f"{namespace}/demo".split("/", 1)[1]) == []


@pytest.mark.docker
@pytest.mark.arm64
@pytest.mark.registry
def test_run_pulls_the_published_image_for_this_machine(published, tmp_path):
    from builder import run

    _, namespace, record = published
    host = run.host_platform()
    proc = scistacks(
        tmp_path,  # a researcher's folder, not a project
        "run",
        f"{namespace}/demo:latest",
        "--pull",
        "always",
        "--detach",
        "--workdir",
        str(tmp_path),
    )
    name = (
        proc.stderr.split("running as ")[1].split(";")[0] if "running as " in proc.stderr else None
    )
    try:
        assert proc.returncode == 0, proc.stderr
        assert f"pulling {namespace}/demo:latest ({host})" in proc.stderr
        url = proc.stdout.strip().splitlines()[-1]
        with urllib.request.urlopen(url.replace("/?token=", "/api/status?token="), timeout=10) as r:
            assert r.status == 200
        image = subprocess.run(
            ["docker", "inspect", "--format", "{{.Image}}", name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        digests = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", image],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        # the platform's own manifest of the published index, not some other local image
        assert record["platforms"][host] in digests
    finally:
        if name:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)

"""The stage records: each model round-trips through its file, and a damaged file is one
line naming the file, the first bad field and the command that writes it again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.errors import RecordError
from builder.project import Project
from builder.publish.record import Published
from builder.records import (
    CheckResult,
    ImageRecord,
    ImportsRun,
    ModuleImport,
    NotebookResult,
    PlatformImage,
    PlatformResults,
    PublishRecord,
    SmokeResults,
)

DIGEST = "sha256:" + "ab" * 32


def image_record() -> ImageRecord:
    return ImageRecord(
        distribution="demo",
        lock_hash="1" * 64,
        platforms={
            "linux-64": PlatformImage(
                oci_platform="linux/amd64",
                ref="scistacks/demo:111111111111-amd64",
                image_id="sha256:" + "2" * 64,
                lock_hash="3" * 64,
                engine="native",
            )
        },
    )


def smoke_results() -> SmokeResults:
    checks = [
        CheckResult(kind="image", name="image", status="pass", duration=0.5),
        CheckResult(
            kind="notebook",
            name="notebooks/read-data.ipynb",
            status="fail",
            duration=2.25,
            message="cell 2 raised ValueError",
            details="Traceback ...",
            cell=2,
            cell_source="1/0",
            output="notebooks/read-data.ipynb",
        ),
        CheckResult(kind="import", name="numpy", status="pass", duration=0.1, seconds=0.1),
    ]
    platform = PlatformResults(
        oci_platform="linux/amd64",
        passed=False,
        ref="scistacks/demo:111111111111-amd64",
        image_id="sha256:" + "2" * 64,
        lock_hash="3" * 64,
        problem=None,
        duration=3.0,
        container_seconds=2.75,
        failed=["notebook: notebooks/read-data.ipynb"],
        notebooks={"notebooks/read-data.ipynb": NotebookResult(passed=False, duration=2.25)},
        imports=ImportsRun(
            container_seconds=1.5,
            python="/srv/conda/envs/notebook/bin/python",
            python_version="3.11.2",
            modules={"numpy": ModuleImport(ok=True, seconds=0.1, version="2.0.0")},
        ),
        checks=checks,
    )
    return SmokeResults(
        distribution="demo",
        passed=False,
        lock_hash="1" * 64,
        duration=3.5,
        platforms={"linux-64": platform},
    )


def publish_record() -> PublishRecord:
    return PublishRecord(
        distribution="demo",
        repository="localhost:5000/scistacks/demo",
        digest=DIGEST,
        lock_hash="1" * 64,
        immutable=["lock-111111111111", "2025.01.15"],
        mutable=["latest"],
        platforms={"linux/amd64": "sha256:" + "4" * 64},
        artifacts={"application/vnd.cyclonedx+json": "sha256:" + "5" * 64},
        signed={},
    )


MODELS = [
    (image_record, "build/images/demo.json", "build"),
    (smoke_results, "build/smoke/demo/results.json", "smoke"),
    (publish_record, "build/publish/demo.json", "publish"),
]
IDS = ["image", "smoke", "publish"]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


@pytest.mark.parametrize(("make", "rel", "command"), MODELS, ids=IDS)
def test_round_trip(project, make, rel, command):
    record = make()
    assert record.save(project) is True
    assert (project.root / rel).is_file()
    loaded = type(record).load(project, "demo")
    assert loaded == record
    assert record.save(project) is False  # unchanged: the file keeps its mtime
    data = json.loads((project.root / rel).read_text())
    assert data["version"] == 1 and data["distribution"] == "demo"


def test_the_files_keep_the_keys_other_tools_read(project):
    image_record().save(project)
    smoke_results().save(project)
    images = json.loads(project.image_record("demo").read_text())
    assert set(images["platforms"]["linux-64"]) == {
        "oci_platform",
        "ref",
        "image_id",
        "lock_hash",
        "engine",
    }
    results = json.loads(project.smoke_results("demo").read_text())
    entry = results["platforms"]["linux-64"]
    assert entry["problem"] is None and entry["imports"]["python_version"] == "3.11.2"
    image, notebook, module = entry["checks"]
    # unset optional fields of a check are left out, not written as null
    assert image == {"kind": "image", "name": "image", "status": "pass", "duration": 0.5}
    assert notebook["cell"] == 2 and module["seconds"] == 0.1 and "message" not in module
    assert entry["imports"]["modules"]["numpy"] == {"ok": True, "seconds": 0.1, "version": "2.0.0"}


def test_a_file_without_a_version_is_version_1(project):
    data = image_record().model_dump(mode="json")
    del data["version"]
    path = project.image_record("demo")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    assert ImageRecord.load(project, "demo") == image_record()


def test_published_is_the_record_plus_a_flag_the_file_never_holds(project):
    done = Published(**dict(publish_record()), unchanged=True)
    done.save(project)
    assert "unchanged" not in json.loads(project.publish_record("demo").read_text())
    assert PublishRecord.load(project, "demo") == publish_record()


def _damage(project: Project, rel: str, make, change) -> None:
    path = project.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    data = make().model_dump(mode="json")
    text = change(data)
    path.write_text(text if isinstance(text, str) else json.dumps(data, indent=2))


def _truncated(data):
    return json.dumps(data, indent=2)[:-40]


DAMAGE = {
    "truncated": (_truncated, None, "not valid JSON"),
    "not-an-object": (lambda d: "[1, 2]", None, "expected a JSON object, got an array"),
    "unknown-version": (lambda d: d.update(version=2), "version", "unknown version 2"),
    "version-a-string": (lambda d: d.update(version="1"), "version", "unknown version '1'"),
    "wrong-type": (lambda d: d.update(lock_hash=5), "lock_hash", "valid string"),
    "unknown-key": (lambda d: d.update(extra=1), "extra", "unknown key"),
    "missing-field": (
        lambda d: d.pop("lock_hash") and None,
        "lock_hash",
        "required field is missing",
    ),
    "another-distribution": (lambda d: d.update(distribution="x"), "distribution", "'x'"),
}


@pytest.mark.parametrize(("make", "rel", "command"), MODELS, ids=IDS)
@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_file_is_one_line(project, make, rel, command, damage):
    change, field, words = DAMAGE[damage]
    _damage(project, rel, make, change)
    with pytest.raises(RecordError) as caught:
        type(make()).load(project, "demo")
    err = caught.value
    assert err.file == rel and err.field == field and words in err.message
    assert f"(run: scistacks {command} demo)" in err.message
    assert "\n" not in str(err) and str(err).startswith(f"{rel}: ")


def _set(path: str, value):
    """An edit setting the value at a dotted path (list items by index) of the file."""

    def edit(data):
        *parents, last = path.split(".")
        for part in parents:
            data = data[int(part)] if isinstance(data, list) else data[part]
        data[int(last) if isinstance(data, list) else last] = value

    return edit


NESTED = [  # the first bad field, named by its path in the file
    (image_record, "platforms.linux-64.image_id", 5),
    (smoke_results, "platforms.linux-64.checks.1.status", "ok"),
    (smoke_results, "platforms.linux-64.imports.modules.numpy.seconds", "fast"),
    (publish_record, "platforms.linux/amd64", ["sha256:00"]),
]


@pytest.mark.parametrize(("make", "field", "value"), NESTED)
def test_a_nested_bad_field_is_named_by_its_path(project, make, field, value):
    rel = project.relative(type(make()).path(project, "demo"))
    _damage(project, rel, make, _set(field, value))
    with pytest.raises(RecordError) as caught:
        type(make()).load(project, "demo")
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("model", "rel", "says"),
    [
        (
            ImageRecord,
            "build/images/demo.json",
            "no images built for 'demo' (run: scistacks build demo)",
        ),
        (
            SmokeResults,
            "build/smoke/demo/results.json",
            "not smoke-tested (run: scistacks smoke demo)",
        ),
        (
            PublishRecord,
            "build/publish/demo.json",
            "demo has no publish record (run: scistacks publish demo)",
        ),
    ],
    ids=IDS,
)
def test_a_missing_file_says_which_command_writes_it(project, model, rel, says):
    with pytest.raises(RecordError) as caught:
        model.load(project, "demo")
    assert str(caught.value) == f"{rel}: {says}"


def test_another_runners_copy_is_shown_by_its_own_path(project, tmp_path):
    other = tmp_path / "runner" / "demo.json"
    other.parent.mkdir()
    other.write_text("{")
    with pytest.raises(RecordError) as caught:
        ImageRecord.load(project, "demo", path=other)
    assert caught.value.file == "runner/demo.json"


def test_a_folder_in_the_way_is_one_line(project):
    project.publish_record("demo").mkdir(parents=True)
    with pytest.raises(RecordError) as caught:
        PublishRecord.load(project, "demo")
    assert caught.value.file == "build/publish/demo.json"
    assert "cannot read" in caught.value.message


def test_a_deeply_nested_file_is_one_line(project):
    path = project.image_record("demo")
    path.parent.mkdir(parents=True)
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(RecordError) as caught:
        ImageRecord.load(project, "demo")
    assert "not valid JSON" in caught.value.message


# ---------------------------------------------------------------- through the real CLI


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    from image.demo_support import copy_demo_project

    return copy_demo_project(tmp_path / "demo")


def _one_line(proc) -> str:
    assert proc.returncode == 1, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr
    return line


@pytest.mark.registry
def test_publish_names_a_damaged_image_record(demo):
    from image.demo_support import scistacks
    from publish.conftest import namespace

    path = Project(demo).image_record("demo")
    path.parent.mkdir(parents=True)
    path.write_text('{"distribution": "demo", "lock_hash": ')
    line = _one_line(scistacks(demo, "publish", "demo", "--registry", namespace()))
    assert line.startswith("error: build/images/demo.json: not valid JSON")
    assert line.endswith("(run: scistacks build demo)")
    assert not Project(demo).publish_record("demo").exists()


@pytest.mark.docker
def test_smoke_names_the_bad_field_of_an_image_record(demo):
    from image.demo_support import scistacks

    record = image_record()
    data = record.model_dump(mode="json")
    data["platforms"]["linux-64"]["image_id"] = 5
    path = Project(demo).image_record("demo")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    line = _one_line(scistacks(demo, "smoke", "demo"))
    assert line.startswith("error: build/images/demo.json: platforms.linux-64.image_id: ")
    assert not Project(demo).smoke_results("demo").exists()

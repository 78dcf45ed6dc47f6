"""The files one stage writes and a later stage reads, one typed model each:

- ``ImageRecord``: ``build/images/NAME.json``, written by build, read by smoke, publish,
  run and collect;
- ``SmokeResults``: ``build/smoke/NAME/results.json``, written by smoke, read by publish,
  release, the next smoke run (for its durations) and collect;
- ``PublishRecord``: ``build/publish/NAME.json``, written by publish, read by publish,
  profiles and run.

Each has one reader (``load``) and one writer (``save``, atomic); ``Project`` names their
paths. A record carries ``version: 1`` (a file without one is version 1). A missing,
truncated or malformed file, or one of an unknown version, is one ``RecordError`` naming
the file, the first bad field and the command that writes it again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer

from builder.errors import RecordError
from builder.fsutil import write_atomic
from builder.project import Project

VERSION = 1


class _Model(BaseModel):
    # strict: a record is written by us, so "1" for a number is damage, not a convenience
    model_config = ConfigDict(extra="forbid", strict=True)


class _Sparse(_Model):
    """Optional fields that are not set are left out of the file, not written as null."""

    @model_serializer(mode="wrap")
    def _without_unset(self, handler) -> dict:
        return {k: v for k, v in handler(self).items() if v is not None}


class StageRecord(_Model):
    version: Literal[1] = VERSION
    distribution: str

    command: ClassVar[str]  # the scistacks command that writes it: build, smoke, publish
    missing: ClassVar[str]  # what a missing file means, with {name}

    @classmethod
    def path(cls, project: Project, name: str) -> Path:
        raise NotImplementedError

    @classmethod
    def load(cls, project: Project, name: str, *, path: Path | None = None) -> Self:
        """NAME's record in ``project`` (or at ``path``: another runner's copy)."""
        path = Path(path) if path is not None else cls.path(project, name)
        shown = project.relative(path)

        def bad(message: str, field: str | None = None) -> RecordError:
            return RecordError(
                f"{message} (run: scistacks {cls.command} {name})", file=shown, field=field
            )

        try:
            text = path.read_text()
        except FileNotFoundError:
            raise RecordError(cls.missing.format(name=name), file=shown) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise bad(f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise bad(f"not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})") from None
        except RecursionError:
            raise bad("not valid JSON: nested too deeply") from None
        if not isinstance(data, dict):
            raise bad(f"expected a JSON object, got {_JSON_TYPES[type(data)]}")
        if isinstance(data.get("distribution"), str) and data["distribution"] != name:
            raise bad(f"a record of {data['distribution']!r}, not {name!r}", "distribution")
        version = data.get("version", VERSION)
        if version != VERSION:
            raise bad(f"unknown version {version!r} (this scistacks reads {VERSION})", "version")
        try:
            record = cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise bad(_explain(err), ".".join(str(p) for p in err["loc"]) or None) from None
        return record

    def save(self, project: Project, *, path: Path | None = None) -> bool:
        """Written atomically; False when the file already held exactly this."""
        path = path if path is not None else self.path(project, self.distribution)
        return write_atomic(path, json.dumps(self.model_dump(mode="json"), indent=2) + "\n")


_JSON_TYPES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true or false",
    type(None): "null",
}


def _explain(error: dict) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required field is missing"
    return error["msg"]


# ---------------------------------------------------------------- build/images/NAME.json


class PlatformImage(_Model):
    """The local image of one platform, as build left it."""

    oci_platform: str  # linux/amd64
    ref: str  # the local tag
    image_id: str  # sha256:...
    lock_hash: str  # of this platform's packages
    engine: str


class ImageRecord(StageRecord):
    """Which local image each platform has, of which lock, from which engine."""

    command: ClassVar[str] = "build"
    missing: ClassVar[str] = "no images built for {name!r} (run: scistacks build {name})"

    lock_hash: str  # of the whole lock
    platforms: dict[str, PlatformImage] = Field(default_factory=dict)  # conda subdir -> image

    @classmethod
    def path(cls, project: Project, name: str) -> Path:
        return project.image_record(name)


# ---------------------------------------------------------------- build/smoke/NAME/results.json


class CheckResult(_Sparse):
    """One testcase: a notebook, an import or a hub check."""

    kind: str  # image | notebook | import | imports | hub
    name: str
    status: Literal["pass", "fail", "skip"]
    duration: float
    message: str | None = None
    details: str | None = None
    cell: int | None = None  # 1-based
    cell_source: str | None = None
    output: str | None = None  # executed notebook, relative to the results folder
    log: str | None = None
    seconds: float | None = None  # import time of a module


class NotebookResult(_Model):
    passed: bool
    duration: float


class ModuleImport(_Sparse):
    ok: bool
    seconds: float
    version: str | None = None
    error: str | None = None


class ImportsRun(_Model):
    """The imports check's one process: which Python, each module's import time."""

    container_seconds: float
    python: str
    python_version: str
    modules: dict[str, ModuleImport]


class PlatformResults(_Model):
    """What smoke found for one platform's image (``image_id`` is what publish trusts)."""

    oci_platform: str
    passed: bool
    ref: str | None
    image_id: str | None
    lock_hash: str | None
    problem: str | None  # nothing could run on this platform
    duration: float  # from the start of the run until the platform's last check ended
    container_seconds: float
    failed: list[str]  # testcase names
    notebooks: dict[str, NotebookResult]
    imports: ImportsRun | None
    checks: list[CheckResult]


class SmokeResults(StageRecord):
    command: ClassVar[str] = "smoke"
    missing: ClassVar[str] = "not smoke-tested (run: scistacks smoke {name})"

    passed: bool
    lock_hash: str | None
    duration: float
    platforms: dict[str, PlatformResults]

    @classmethod
    def path(cls, project: Project, name: str) -> Path:
        return project.smoke_results(name)


# ---------------------------------------------------------------- build/publish/NAME.json


class PublishRecord(StageRecord):
    """What the last publish pushed: the manifest list, its tags, platforms and artifacts."""

    command: ClassVar[str] = "publish"
    missing: ClassVar[str] = "{name} has no publish record (run: scistacks publish {name})"

    repository: str  # REGISTRY/NAMESPACE/NAME
    digest: str  # of the manifest list
    lock_hash: str
    immutable: list[str]
    mutable: list[str]
    platforms: dict[str, str]  # linux/amd64 -> digest
    artifacts: dict[str, str]  # artifactType -> digest
    signed: dict[str, Any]  # by, digests, attestations (--sign); {} unsigned

    @classmethod
    def path(cls, project: Project, name: str) -> Path:
        return project.publish_record(name)


__all__ = [
    "VERSION",
    "CheckResult",
    "ImageRecord",
    "ImportsRun",
    "ModuleImport",
    "NotebookResult",
    "PlatformImage",
    "PlatformResults",
    "PublishRecord",
    "SmokeResults",
    "StageRecord",
]

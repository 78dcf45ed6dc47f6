"""Yanked tags: advisories that a published image must not be used any more.

An advisory lives in two places, so that whoever holds either finds it:

- ``yanked.yml`` at the project root, under version control: reviewed in a pull request
  and read by ``scistacks hub check`` and ``hub bump``;
- the registry: an OCI artifact (``application/vnd.scistacks.yank+json``) whose subject is
  the yanked image's digest, so ``oras discover`` or any referrers client sees it next to
  the image itself.

A yank never deletes or moves a tag: hubs that pin it keep working until they are bumped.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from builder.errors import HubError, PublishError
from builder.fsutil import write_atomic
from builder.project import Project
from builder.registry import Registry
from builder.yamlio import NESTED_TOO_DEEPLY

YANKED_FILE = "yanked.yml"
SCHEMA_VERSION = 1
YANK_TYPE = "application/vnd.scistacks.yank+json"
HEADER = """\
# Yanked tags: published images that must not be used any more, and why.
# Written by `scistacks yank NAME:TAG --reason "..."` (which also attaches the advisory
# to the image in the registry); read by `scistacks hub check` and `scistacks hub bump`.
# A yank never deletes or moves a tag.
"""


class YankedTag(BaseModel):
    model_config = ConfigDict(extra="forbid")

    distribution: str = Field(min_length=1)
    tag: str = Field(min_length=1)
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    reason: str = Field(min_length=1)
    date: dt.date  # UTC day of the yank
    replaced_by: str | None = None

    def payload(self) -> bytes:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True).encode() + b"\n"


class YankedList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = SCHEMA_VERSION
    yanked: list[YankedTag] = Field(default_factory=list)

    def find(self, distribution: str, *, digest: str | None = None, tag: str | None = None):
        return [
            e
            for e in self.yanked
            if e.distribution == distribution
            and (digest is None or e.digest == digest)
            and (tag is None or e.tag == tag)
        ]


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def _shown(project: Project) -> str:
    return project.relative(project.root / YANKED_FILE)


def _read(project: Project):
    """(plain round-trip data or None when there is no file, validated list)."""
    path = project.root / YANKED_FILE
    shown = _shown(project)
    if not path.is_file():
        return None, YankedList()
    try:
        data = _yaml().load(path.read_text(encoding="utf-8"))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark else None
        raise HubError(
            f"invalid YAML: {exc.problem or exc.context}", file=shown, field=where
        ) from None
    except (YAMLError, OSError, UnicodeDecodeError) as exc:
        raise HubError(f"cannot read: {exc}", file=shown) from None
    except RecursionError:
        raise HubError(NESTED_TOO_DEEPLY, file=shown) from None
    except ValueError as exc:  # date: 2025-02-30 is a timestamp that cannot be built
        raise HubError(f"invalid value: {exc}", file=shown, field=_date_line(path)) from None
    if data is None:
        return None, YankedList()
    if isinstance(data, dict) and isinstance(data.get("version"), int) and data["version"] > 1:
        raise HubError(
            f"schema version {data['version']} is newer than this scistacks reads "
            f"({SCHEMA_VERSION}); upgrade scistacks",
            file=shown,
            field="version",
        )
    try:
        return data, YankedList.model_validate(_plain(data))
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or None
        raise HubError(error["msg"], file=shown, field=where) from None


def _date_line(path) -> str | None:
    """The line of the first impossible date (the constructor does not say which)."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = re.search(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b", line)
        if m:
            try:
                dt.date(*map(int, m.groups()))
            except ValueError:
                return f"line {number}"
    return None


def _plain(data):
    if isinstance(data, dict):
        return {str(k): _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    return data


def load(project: Project) -> YankedList:
    """The project's yanked list (empty when there is no yanked.yml)."""
    return _read(project)[1]


def add(project: Project, entry: YankedTag) -> bool:
    """Record ``entry`` in yanked.yml, keeping the file's comments; False if it is there."""
    data, current = _read(project)
    if current.find(entry.distribution, digest=entry.digest, tag=entry.tag):
        return False
    if data is None:
        data = _yaml().load(HEADER + f"version: {SCHEMA_VERSION}\nyanked: []\n")
    entries = data.get("yanked")
    if not isinstance(entries, CommentedSeq):
        entries = data["yanked"] = CommentedSeq()
    entries.fa.set_block_style()
    item = CommentedMap()
    for key, value in entry.model_dump().items():
        if value is not None:
            item[key] = value
    entries.append(item)
    out = io.StringIO()
    _yaml().dump(data, out)
    return write_atomic(project.root / YANKED_FILE, out.getvalue())


# ---------------------------------------------------------------- the registry side


@dataclass(frozen=True)
class Subject:
    """The yanked image as the registry knows it (what the artifact's ``subject`` names)."""

    repository: str  # NAMESPACE/NAME
    digest: str
    media_type: str
    size: int


def attach(client: Registry, subject: Subject, entry: YankedTag) -> str:
    """Attach the advisory to the image; returns the artifact's digest (reused if there)."""
    for existing in advisories(client, subject.repository, subject.digest):
        if existing.tag == entry.tag:
            return existing.digest
    return client.attach(
        subject.repository,
        subject.digest,
        subject.media_type,
        subject.size,
        YANK_TYPE,
        {"yank.json": (entry.payload(), "application/json")},
        {
            "org.opencontainers.image.title": "yank.json",
            "io.scistacks.yank.tag": entry.tag,
            "io.scistacks.yank.reason": entry.reason,
            "io.scistacks.yank.date": entry.date.isoformat(),
        },
    )


@dataclass(frozen=True)
class Advisory:
    """A yank advisory as read back from the registry."""

    digest: str  # of the artifact
    tag: str
    reason: str
    date: str
    replaced_by: str | None = None


def advisories(client: Registry, repository: str, digest: str) -> list[Advisory]:
    """Yank advisories attached to ``digest`` (the artifact's payload, or its annotations
    when the payload cannot be read)."""
    out = []
    for ref in client.referrers(repository, digest, YANK_TYPE):
        notes = ref.get("annotations") or {}
        payload = {
            "tag": notes.get("io.scistacks.yank.tag", "?"),
            "reason": notes.get("io.scistacks.yank.reason", "yanked"),
            "date": notes.get("io.scistacks.yank.date", "?"),
        }
        found = client.manifest(repository, ref["digest"])
        if found is not None:
            try:
                layers = json.loads(found[0]).get("layers") or []
                payload.update(json.loads(client.blob(repository, layers[0]["digest"])))
            except (ValueError, LookupError, AttributeError, TypeError, PublishError):
                pass  # annotations are enough to warn
        out.append(
            Advisory(
                ref["digest"],
                str(payload.get("tag")),
                str(payload.get("reason")),
                str(payload.get("date")),
                payload.get("replaced_by"),
            )
        )
    return out

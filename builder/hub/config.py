"""Hub config files as hub admins write them: z2jh values, 2i2c/daskhub cluster values,
or anything else in YAML that names one of our images.

A reference is found in ruamel.yaml's round-trip node tree, which keeps the exact
character span of every scalar. A rewrite replaces only the characters of the tag it
bumps (in the quoting style the file already uses), so comments, key order, quotes,
indentation, long lines and anchors stay exactly as the admin wrote them.

Styles found (in document order, each reference once even when aliased):

- ``image: {name: REPO, tag: TAG}`` mappings, as z2jh's ``singleuser.image`` (also nested
  under ``jupyterhub:`` or ``basehub: jupyterhub:``);
- ``kubespawner_override.image: REPO:TAG`` strings in ``profileList`` entries and in
  ``profile_options.*.choices.*`` (``unlisted_choice`` holds a template, and is skipped);
- any other string value that is entirely a reference to one of our images (an
  ``image:`` key anywhere, an environment variable, ...).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from builder.errors import HubError
from builder.publish.tags import DIGEST_RE
from builder.yamlio import NESTED_TOO_DEEPLY, read_text

TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z")  # the OCI distribution spec's
# what may precede a scalar's own text inside its span: an anchor and/or an explicit tag
_PROPERTIES_RE = re.compile(r"(?:[&!]\S*\s+)*")

# where a reference was found, by its path in the document
Z2JH = "image name/tag"
PROFILE_LIST = "profileList kubespawner_override"
PROFILE_OPTIONS = "profile_options choice"
STRING = "image string"


@dataclass(frozen=True)
class ImageRef:
    """One reference to one of our images, located in one file."""

    file: str  # as shown in messages
    line: int  # 1-based: the tag's line (the name's, when there is no tag)
    path: str  # e.g. jupyterhub.singleuser.profileList[0].kubespawner_override.image
    kind: str
    registry: str  # REGISTRY/NAMESPACE it matched
    distribution: str
    tag: str | None
    digest: str | None
    # what a rewrite replaces: (start, end) of the scalar, its quoting style, and for a
    # name/tag mapping without a tag, where a ``tag:`` entry goes instead
    _span: tuple[int, int] = field(repr=False, compare=False)
    _style: str | None = field(repr=False, compare=False)
    _insert: tuple[int, str] | None = field(default=None, repr=False, compare=False)
    _whole: bool = field(default=True, repr=False, compare=False)  # the scalar is REPO:TAG

    @property
    def repository(self) -> str:
        return f"{self.registry}/{self.distribution}"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def __str__(self) -> str:
        out = self.repository
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def with_tag(self, tag: str) -> str:
        return f"{self.repository}:{tag}"


def split_reference(value: str) -> tuple[str, str | None, str | None] | None:
    """``REPO[:TAG][@DIGEST]`` -> (repo, tag, digest); None for what is no image reference."""
    if not value or any(c.isspace() for c in value):
        return None
    rest, _, digest = value.partition("@")
    tag = None
    if ":" in rest.rsplit("/", 1)[-1]:
        rest, tag = rest.rsplit(":", 1)
    return rest, tag or None, digest or None


class Ours:
    """Which repositories are ours: ``REGISTRY/NAMESPACE/<distribution>``."""

    def __init__(self, registries: Iterable[str], names: Iterable[str] | None):
        self.registries = [r.rstrip("/") for r in registries]
        self.names = list(names) if names is not None else None  # None: any name
        self._repos = {f"{r}/{n}": (r, n) for r in self.registries for n in self.names or ()}

    def match(self, repo: str) -> tuple[str, str] | None:
        if self.names is not None:
            return self._repos.get(repo)
        registry, _, name = repo.rpartition("/")
        return (registry, name) if registry in self.registries and name else None

    def describe(self) -> str:
        names = "*" if self.names is None else "{" + ",".join(self.names) + "}"
        return " or ".join(f"{r}/{names}" for r in self.registries)


def _path(parts: tuple) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _kind(parts: tuple) -> str:
    keys = [p for p in parts if isinstance(p, str)]
    if "profile_options" in keys:
        return PROFILE_OPTIONS
    if "profileList" in keys or "profile_list" in keys:
        return PROFILE_LIST
    return STRING


class _Scanner:
    def __init__(self, text: str, shown: str, ours: Ours):
        self.text = text
        self.shown = shown
        self.ours = ours
        self.seen: set[int] = set()  # node ids: an aliased node is one reference
        self.refs: list[ImageRef] = []

    def _span(self, node: ScalarNode) -> tuple[int, int]:
        start, end = node.start_mark.index, node.end_mark.index
        props = _PROPERTIES_RE.match(self.text, start)
        return (props.end() if props else start), end

    def _ref(self, node: ScalarNode, parts: tuple, kind: str, **extra) -> ImageRef | None:
        if not str(node.tag).endswith(":str"):
            return None
        split = split_reference(node.value)
        matched = split and self.ours.match(split[0])
        if not matched:
            return None
        return ImageRef(
            self.shown,
            node.start_mark.line + 1,
            _path(parts),
            kind,
            matched[0],
            matched[1],
            split[1],
            split[2],
            self._span(node),
            node.style,
            **extra,
        )

    def walk(self, node: Node, parts: tuple) -> None:
        if id(node) in self.seen:
            return
        self.seen.add(id(node))
        if isinstance(node, ScalarNode):
            ref = self._ref(node, parts, _kind(parts))
            if ref:
                self.refs.append(ref)
        elif isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                self.walk(item, (*parts, i))
        elif isinstance(node, MappingNode):
            self._unique_keys(node)
            for key, value in node.value:
                if not isinstance(key, ScalarNode) or key.value == "<<":
                    continue  # merged mappings are walked where they are defined
                if key.value == "unlisted_choice":
                    continue  # a template for what users type, not an image
                here = (*parts, key.value)
                if isinstance(value, MappingNode) and self._name_tag(value, here):
                    continue
                self.walk(value, here)

    def _unique_keys(self, node: MappingNode) -> None:
        """Refuse duplicate keys, as specs do: YAML readers disagree on which one wins."""
        seen: dict[str, int] = {}
        for key, _ in node.value:
            if not isinstance(key, ScalarNode) or key.value == "<<":
                continue
            line = key.start_mark.line + 1
            if key.value in seen:
                raise HubError(
                    f"duplicate key {key.value!r} (first on line {seen[key.value]}); YAML "
                    "readers disagree on which one wins",
                    file=self.shown,
                    field=f"line {line}",
                )
            seen[key.value] = line

    def _entries(self, node: MappingNode) -> dict[str, tuple[ScalarNode, Node]]:
        """Keys of a mapping, merged ones (``<<: *anchor``) included, own keys winning."""
        out: dict[str, tuple[ScalarNode, Node]] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                continue
            if key.value == "<<":
                merged = value.value if isinstance(value, SequenceNode) else [value]
                for m in merged:
                    if isinstance(m, MappingNode):
                        for k, v in self._entries(m).items():
                            out.setdefault(k, (key, v[1]))
            else:
                out[key.value] = (key, value)
        return out

    def _name_tag(self, node: MappingNode, parts: tuple) -> bool:
        """``image: {name: REPO, tag: TAG}`` (z2jh); True when it is one of ours."""
        if not str(parts[-1]).lower().endswith("image"):
            return False
        self._unique_keys(node)
        entries = self._entries(node)
        name = entries.get("name")
        if not name or not isinstance(name[1], ScalarNode):
            return False
        split = split_reference(str(name[1].value))
        matched = split and not split[1] and not split[2] and self.ours.match(split[0])
        if not matched:
            return False  # REPO:TAG in name: found as a string by the walk
        tag = entries.get("tag")
        self.seen.update({id(node), id(name[1])})
        tag_node = tag[1] if tag and isinstance(tag[1], ScalarNode) else None
        value = str(tag_node.value) if tag_node is not None else ""
        if tag_node is not None and str(tag_node.tag).endswith(":null"):
            value = ""  # tag: ~ (or nothing): the chart's default, which is no tag of ours
        if tag_node is not None:
            self.seen.add(id(tag_node))
        if tag_node is None:
            insert = self._tag_insertion(node, *name)
        elif tag_node.start_mark.index == tag_node.end_mark.index:
            # ``tag:`` with nothing after it: the value goes right after the colon
            insert = (self.text.index(":", tag[0].end_mark.index) + 1, " {}")
        else:
            insert = None
        self.refs.append(
            ImageRef(
                self.shown,
                (tag_node if value else name[1]).start_mark.line + 1,
                _path(parts),
                Z2JH,
                matched[0],
                matched[1],
                value.partition("@")[0] or None,
                value.partition("@")[2] or None,
                self._span(tag_node) if tag_node is not None else (0, 0),
                tag_node.style if tag_node is not None else None,
                _insert=insert,
                _whole=False,
            )
        )
        return True

    def _tag_insertion(self, node: MappingNode, key: ScalarNode, value: Node) -> tuple[int, str]:
        """Where a ``tag:`` entry goes in a mapping that has none: (offset, template)."""
        if node.flow_style:
            return value.end_mark.index, ", tag: {}"
        # after the line of the name entry (the value's, unless it is an alias from above)
        after = value.end_mark.index if value.start_mark.index > key.start_mark.index else 0
        end = max(key.end_mark.index, after)
        newline = self.text.find("\n", end)
        indent = " " * key.start_mark.column
        if newline < 0:
            return len(self.text), "\n" + indent + "tag: {}\n"
        return newline + 1, indent + "tag: {}\n"


@dataclass
class HubConfig:
    """One hub config file and the references to our images in it."""

    path: Path
    shown: str
    text: str
    refs: list[ImageRef]

    @classmethod
    def load(cls, path: str | Path, ours: Ours, shown: str | None = None) -> HubConfig:
        path = Path(path)
        shown = shown or str(path)
        text = _read(path, shown)
        refs = scan(text, shown, ours)
        if not refs:
            raise HubError(f"no references to {ours.describe()}", file=shown)
        return cls(path, shown, text, refs)

    def rewritten(self, tags: dict[ImageRef, str]) -> str:
        """The file's text with each given reference's tag replaced, nothing else touched."""
        edits: list[tuple[int, int, str]] = []
        for ref, tag in tags.items():
            if ref._insert is not None:
                at, template = ref._insert
                edits.append((at, at, template.format(render_scalar(tag, None))))
                continue
            start, end = ref._span
            if ref._style in ("|", ">") or (ref._style is None and "\n" in self.text[start:end]):
                raise HubError(
                    "cannot rewrite a value written over several lines; write it on one line",
                    file=self.shown,
                    field=f"line {ref.line}",
                )
            value = ref.with_tag(tag) if ref._whole else tag
            edits.append((start, end, render_scalar(value, ref._style)))
        text = self.text
        for start, end, new in sorted(edits, reverse=True):
            text = text[:start] + new + text[end:]
        self._verify(text, tags)
        return text

    def _verify(self, text: str, tags: dict[ImageRef, str]) -> None:
        """The new text must read back with exactly the intended references."""
        ours = Ours({r.registry for r in self.refs}, {r.distribution for r in self.refs})
        try:
            after = {r.path: r for r in scan(text, self.shown, ours)}
        except HubError:
            after = {}
        for ref in self.refs:
            again = after.get(ref.path)
            want = tags.get(ref, ref.tag)
            if again is None or again.tag != want or again.repository != ref.repository:
                raise HubError(
                    "rewriting the tag did not read back as intended; the file is left unchanged",
                    file=self.shown,
                    field=f"line {ref.line}",
                )


def render_scalar(value: str, style: str | None) -> str:
    """``value`` as YAML in the quoting style it replaces."""
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"':
        return json.dumps(value)  # a JSON string is a YAML double-quoted scalar
    if _reads_as_string(value):
        return value
    return json.dumps(value)  # a plain 2025.03 or 123456 would read as a number


def _reads_as_string(value: str) -> bool:
    try:
        return YAML(typ="safe", pure=True).load(f"k: {value}\n") == {"k": value}
    except YAMLError:
        return False


def scan(text: str, shown: str, ours: Ours) -> list[ImageRef]:
    """Every reference to our images in ``text``, in document order."""
    try:
        documents = list(YAML(typ="rt").compose_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context and exc.context_mark:
            problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
        where = f"line {mark.line + 1}" if mark else None
        raise HubError(f"not YAML: {problem}", file=shown, field=where) from None
    except YAMLError as exc:
        raise HubError(f"not YAML: {exc}", file=shown) from None
    except RecursionError:
        raise HubError(NESTED_TOO_DEEPLY, file=shown) from None
    scanner = _Scanner(text, shown, ours)
    try:
        for i, doc in enumerate(documents):
            if doc is not None:
                scanner.walk(doc, () if len(documents) == 1 else (i,))
    except RecursionError:
        raise HubError(NESTED_TOO_DEEPLY, file=shown) from None
    return scanner.refs


def malformed(ref: ImageRef) -> str | None:
    """What is wrong with a reference's tag or digest, knowable without a registry."""
    if ref.digest is not None and not DIGEST_RE.match(ref.digest):
        return (
            f"{ref}: malformed digest {ref.digest!r} (expected sha256: and 64 lowercase hex digits)"
        )
    if ref.tag is not None and not TAG_RE.match(ref.tag):
        return f"{ref}: malformed tag {ref.tag!r} (letters, digits, '_', '.', '-'; at most 128)"
    return None


def _read(path: Path, shown: str) -> str:
    return read_text(path, shown, HubError)

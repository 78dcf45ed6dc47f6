"""Stage 7: profiles. Reads each distribution's ``hub`` section and its lock (and, for
digests, the publish record ``build/publish/NAME.json``), writes a KubeSpawner
``profile_list`` that hub admins paste into their config.

Distributions that need the same kind of node (no GPU, same node selector and
tolerations) become image choices of one profile, each choice carrying its own image,
CPU, memory and start page. A distribution that needs another kind of node (a GPU) is a
profile of its own, so its tolerations and GPU limit never leak onto CPU servers.

Images are pinned by the immutable content tag (``lock-<hash>``) or by digest, never by a
moving tag: a hub must keep spawning what was tested until its config is bumped. Only
published images are listed (the publish record says so, or the registry has the tag):
a hub cannot pull the others. ``--all`` lists them too, each named "not published" on
stderr. References are OCI ones: the repository part lowercased, anything else malformed
refused with one line, never emitted.
"""

from __future__ import annotations

import json
import pprint
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from builder.errors import HubError, PublishError
from builder.fsutil import write_atomic
from builder.lock import read_lock
from builder.project import Project
from builder.publish.tags import DIGEST_RE, content_tag
from builder.records import PublishRecord
from builder.registry import Reference, Registry
from builder.spec import Catalog
from builder.spec.models import Hub, Quantity

FORMATS = ("z2jh", "kubespawner")
# the OCI distribution spec's grammar (docker's reference grammar for the host)
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
REPOSITORY_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*\Z")
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
HOST_RE = re.compile(rf"^(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?\Z")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z")
# Packages that put RStudio behind jupyter-server-proxy at /rstudio.
RSTUDIO_PACKAGES = ("rstudio-server", "jupyter-rsession-proxy")


@dataclass(frozen=True)
class HubImage:
    """One distribution as a hub sees it: its pinned image and its hub section."""

    name: str
    image: str
    hub: Hub
    ships_rstudio: bool
    published: bool = True


def image_for(project: Project, name: str, registry: str, digest: bool = False) -> str:
    """``REG/NS/NAME:lock-xxxxxxxxxxxx``, or ``REG/NS/NAME@sha256:…`` from the publish record."""
    repo = f"{registry.rstrip('/')}/{name}"
    if not digest:
        return _checked(f"{repo}:{content_tag(read_lock(project, name))}")
    value = PublishRecord.load(project, name).digest
    if not DIGEST_RE.match(value):
        shown = project.relative(project.publish_record(name))
        raise HubError(
            f"expected a sha256:<64 hex> digest, got {value!r}", file=shown, field="digest"
        )
    return _checked(f"{repo}@{value}")


def _checked(image: str) -> str:
    """An image reference as OCI spells it, or a one-line error: never emitted broken."""
    rest, _, digest = image.partition("@")
    host, _, rest = rest.partition("/")
    repository, _, tag = rest.partition(":")
    if (
        not HOST_RE.match(host)
        or not REPOSITORY_RE.match(repository)
        or (digest and not DIGEST_RE.match(digest))
        or (not digest and not TAG_RE.match(tag))
    ):
        raise HubError(f"{image!r} is not a valid image reference", field="--registry")
    return image


def check_registry(registry: str) -> str:
    """``REGISTRY/NAMESPACE`` as a hub can pull from it: the namespace lowercased (OCI
    repository names are), the host kept; anything else malformed is a one-line error."""

    def bad(why: str) -> HubError:
        return HubError(f"{why}, got {registry!r}", field="--registry")

    host, slash, namespace = registry.partition("/")
    namespace = namespace[:-1] if namespace.endswith("/") else namespace
    if not slash or not namespace:
        raise bad("expected REGISTRY/NAMESPACE (e.g. ghcr.io/org)")
    if "@" in namespace or ":" in namespace:
        raise bad("expected REGISTRY/NAMESPACE without a tag or digest")
    if not HOST_RE.match(host) or ("." not in host and ":" not in host and host != "localhost"):
        raise bad("expected a registry host first (e.g. ghcr.io/org)")
    if not REPOSITORY_RE.match(namespace.lower()):
        raise bad("expected a namespace of letters, digits and single . _ - between them, per /")
    return f"{host}/{namespace.lower()}"


def _unpublished(project: Project, name: str, image: str, lock_hash: str, asked: dict) -> str:
    """Why ``image`` is not known to be published ("" when it is): the publish record of
    this lock for this repository says so, else the registry is asked (once per host)."""
    ref = Reference.parse(image)
    if project.publish_record(name).is_file():  # a damaged one is an error, not "ask"
        record = PublishRecord.load(project, name)
        if (
            record.repository.lower() == f"{ref.host}/{ref.repository}"
            and record.lock_hash == lock_hash
        ):
            return ""
    client = asked.setdefault(ref.host, Registry(ref.host, timeout=10.0))
    if isinstance(client, str):  # the host did not answer before
        return client
    try:
        found = client.manifest(ref.repository, ref.digest or ref.tag)
    except PublishError as exc:
        asked[ref.host] = f"{ref.host} does not answer ({exc.message})"
        return asked[ref.host]
    return "" if found else f"no {ref.tag or ref.digest} in {ref.host}/{ref.repository}"


def collect(
    project: Project,
    catalog: Catalog,
    names: list[str],
    registry: str,
    digest: bool = False,
    unpublished: bool = False,
    echo=lambda _: None,
) -> list[HubImage]:
    """The selected distributions that have a hub section and are published (with
    ``unpublished``, the others too, each told to ``echo``), in catalog order."""
    registry = check_registry(registry)
    images = []
    asked: dict = {}
    for name in catalog.select(names):
        dist = catalog.get(name)
        if dist.hub is None:
            continue  # a building block (or a CI-only image), not offered on hubs
        locked = read_lock(project, name)
        ships_rstudio = any(
            pkg in locked.by_name(platform)
            for platform in locked.platforms
            for pkg in RSTUDIO_PACKAGES
        )
        image = image_for(project, name, registry, digest)
        why = _unpublished(project, name, image, locked.lock_hash(), asked)
        if why and unpublished:
            echo(f"{name}: not published: {why}")
        elif why:
            if "does not answer" in why:
                raise HubError(f"cannot tell whether {name} is published: {why} (--all lists it)")
            echo(f"{name}: left out, not published: {why} (--all lists it)")
            continue
        images.append(HubImage(name, image, dist.hub, ships_rstudio, not why))
    return images


# ---------------------------------------------------------------- quantities

_CPU_MILLI = re.compile(r"^([0-9.]+)m\Z")
# JupyterHub's ByteSpecification reads K/M/G/T (as powers of 1024, the hub convention
# z2jh users already type). Binary suffixes map onto those; the rest become bytes.
_BINARY = {"Ki": "K", "Mi": "M", "Gi": "G", "Ti": "T"}
_DECIMAL = {"k": 10**3, "P": 10**15, "E": 10**18, "Pi": 2**50, "Ei": 2**60}
_MEM_RE = re.compile(r"^([0-9.]+)([A-Za-z]*)\Z")


def cpu_value(value: str | float) -> float:
    text = str(value)
    milli = _CPU_MILLI.match(text)
    return float(milli.group(1)) / 1000 if milli else float(text)


def memory_value(value: str | float) -> str | int:
    number, suffix = _MEM_RE.match(str(value)).groups()
    if suffix in ("K", "M", "G", "T"):
        return f"{number}{suffix}"
    if suffix in _BINARY:
        return f"{number}{_BINARY[suffix]}"
    if suffix == "m":  # millibytes: Kubernetes allows it, nobody means it
        return int(float(number) / 1000)
    return int(float(number) * _DECIMAL.get(suffix, 1))


def _resources(cpu: Quantity | None, memory: Quantity | None) -> dict:
    out: dict = {}
    if cpu and cpu.guarantee is not None:
        out["cpu_guarantee"] = cpu_value(cpu.guarantee)
    if cpu and cpu.limit is not None:
        out["cpu_limit"] = cpu_value(cpu.limit)
    if memory and memory.guarantee is not None:
        out["mem_guarantee"] = memory_value(memory.guarantee)
    if memory and memory.limit is not None:
        out["mem_limit"] = memory_value(memory.limit)
    return out


# ---------------------------------------------------------------- profiles


def _default_url(img: HubImage) -> str | None:
    url = img.hub.default_url
    if url is None and img.ships_rstudio:
        return "/rstudio"
    if url and url.startswith("/rstudio") and not img.ships_rstudio:
        # Our r-edu has no RStudio Server (it runs R in JupyterLab, hence /lab):
        # /rstudio would land its users on a 404.
        raise HubError(
            f"{img.name} does not ship RStudio (no {' or '.join(RSTUDIO_PACKAGES)} in its lock)",
            field="hub.default_url",
        )
    return url


def _own_override(img: HubImage) -> dict:
    """What one image sets on the spawner, apart from where its pod is placed."""
    out = {"image": img.image}
    url = _default_url(img)
    if url:
        out["default_url"] = url
    out.update(_resources(img.hub.cpu, img.hub.memory))
    return out


def _placement_key(hub: Hub) -> str:
    return json.dumps(
        [hub.gpu, hub.node_selector, hub.tolerations, hub.gpu_node_choices], sort_keys=True
    )


def _placement(hub: Hub) -> tuple[dict, dict]:
    """Profile-level override and options for the kind of node a group needs."""
    override: dict = {}
    options: dict = {}
    if hub.gpu:
        override["extra_resource_limits"] = {"nvidia.com/gpu": hub.gpu}
    if hub.tolerations:
        override["tolerations"] = [dict(t) for t in hub.tolerations]
    if hub.node_selector:
        override["node_selector"] = dict(hub.node_selector)
    if hub.gpu_node_choices:
        options["node_type"] = {
            "display_name": "GPU type" if hub.gpu else "Node type",
            "choices": {
                key: {
                    "display_name": key,
                    "default": i == 0,
                    "kubespawner_override": {"node_selector": dict(selector)},
                }
                for i, (key, selector) in enumerate(hub.gpu_node_choices.items())
            },
        }
    return override, options


def profile_list(images: list[HubImage]) -> list[dict]:
    """KubeSpawner's ``profile_list`` for these images (deterministic: catalog order)."""
    groups: dict[str, list[HubImage]] = {}
    for img in images:
        groups.setdefault(_placement_key(img.hub), []).append(img)
    profiles = []
    for members in groups.values():
        override, options = _placement(members[0].hub)
        default = any(m.hub.default for m in members)
        if len(members) == 1:
            img = members[0]
            profile = {
                "display_name": img.hub.display_name,
                "slug": img.name,
                "description": img.hub.description,
                "default": default,
                "kubespawner_override": _own_override(img) | override,
            }
        else:
            # Settings every member shares go on the profile; the rest on each choice.
            own = {m.name: _own_override(m) for m in members}
            shared = {
                k: v
                for k, v in own[members[0].name].items()
                if all(o.get(k) == v for o in own.values())
            }
            default_member = next((m for m in members if m.hub.default), members[0])
            gpu = members[0].hub.gpu
            plain = not (gpu or override or options)
            profile = {
                "display_name": "GPU environments" if gpu else "Environments",
                # "standard" for the plain-node group; any other group by its members
                "slug": "standard" if plain else "-".join(m.name for m in members),
                "description": "; ".join(
                    f"{m.hub.display_name}: {m.hub.description}"
                    if m.hub.description
                    else m.hub.display_name
                    for m in members
                ),
                "default": default,
                "kubespawner_override": shared | override,
            }
            options = {
                "image": {
                    "display_name": "Environment",
                    "choices": {
                        m.name: {
                            "display_name": m.hub.display_name,
                            "default": m is default_member,
                            "kubespawner_override": {
                                k: v for k, v in own[m.name].items() if k not in shared
                            },
                        }
                        for m in members
                    },
                },
                **options,
            }
        if not profile["kubespawner_override"]:
            del profile["kubespawner_override"]
        if options:
            profile["profile_options"] = options
        profiles.append(profile)
    if profiles and not any(p["default"] for p in profiles):
        profiles[0]["default"] = True
    return profiles


# ---------------------------------------------------------------- output

HEADER = "Generated by scistacks profiles. Images are pinned by immutable tag or digest."


def render(profiles: list[dict], fmt: str) -> str:
    if fmt == "z2jh":
        body = yaml.safe_dump({"singleuser": {"profileList": profiles}}, sort_keys=False, width=100)
        return (
            f"# {HEADER}\n# zero-to-jupyterhub values: helm upgrade ... --values THIS_FILE\n{body}"
        )
    if fmt == "kubespawner":
        # pprint of plain dicts/lists/str/numbers/bools is valid Python and stable.
        body = pprint.pformat(profiles, indent=1, width=100, sort_dicts=False)
        return f"# {HEADER}\n# jupyterhub_config.py\nc.KubeSpawner.profile_list = {body}\n"
    raise HubError(f"unknown format {fmt!r} (one of: {', '.join(FORMATS)})", field="--format")


def generate(
    project: Project,
    catalog: Catalog,
    names: list[str],
    registry: str,
    fmt: str = "z2jh",
    digest: bool = False,
    output: str | Path | None = None,
    unpublished: bool = False,
    echo=lambda _: None,
) -> str:
    """Render the snippet; write it atomically to ``output`` when given. Returns the text."""
    images = collect(project, catalog, names, registry, digest, unpublished, echo)
    if not images:
        offered = [n for n in catalog.select(names) if catalog.get(n).hub is not None]
        if offered:
            raise HubError(
                f"none of {', '.join(offered)} is published in {check_registry(registry)}"
                " (publish first, or --all)"
            )
        raise HubError("no selected distribution has a hub section", field="hub")
    text = render(profile_list(images), fmt)
    if output is not None:
        write_atomic(output, text)
    return text


# ---------------------------------------------------------------- next to the image

PROFILE_TYPE = "application/vnd.scistacks.profile+yaml"


def attach(project: Project, catalog: Catalog, name: str, echo=lambda _: None) -> str | None:
    """Attach NAME's snippet (both formats) to its published image, from the publish
    record; returns the artifact digest (None: NAME is not offered on hubs)."""
    if catalog.get(name).hub is None:
        return None
    record = PublishRecord.load(project, name)
    digest, shown = record.digest, project.relative(project.publish_record(name))
    ref = Reference.parse(record.repository)
    client = Registry(ref.host, timeout=10.0)
    have = client.referrers(ref.repository, digest, PROFILE_TYPE)
    if have:
        echo(f"{name}: profile snippet already attached ({have[0]['digest'][:19]})")
        return have[0]["digest"]
    subject = client.manifest(ref.repository, digest)
    if subject is None:
        raise HubError(f"{ref.host}/{ref.repository}@{digest} is not in the registry", file=shown)
    namespace = f"{ref.host}/{ref.repository.rsplit('/', 1)[0]}"
    images = collect(project, catalog, [name], namespace)
    if not images:
        raise HubError(f"{name}'s lock changed since it was published", file=shown)
    files = {
        "profile-z2jh.yaml": (render(profile_list(images), "z2jh").encode(), "application/yaml"),
        "profile-kubespawner.py": (
            render(profile_list(images), "kubespawner").encode(),
            "text/x-python",
        ),
    }
    raw, media, _ = subject
    artifact = client.attach(
        ref.repository,
        digest,
        media,
        len(raw),
        PROFILE_TYPE,
        files,
        {"org.opencontainers.image.title": "profile-z2jh.yaml"},
    )
    echo(f"{name}: profile snippet attached ({artifact[:19]})")
    return artifact

"""``scistacks profiles``: KubeSpawner profile lists, checked by KubeSpawner's own code.

Each generated choice is loaded into a real ``KubeSpawner`` (its built-in ``_mock`` mode,
as KubeSpawner's own tests do: no Kubernetes API) and applied through
``load_user_options``, the path a hub takes when a user picks a profile.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from conftest import free_port, run_scistacks

from builder.lock import read_lock
from builder.project import Project
from builder.publish.tags import content_tag
from builder.records import PublishRecord

kubespawner = pytest.importorskip("kubespawner")

REPO_ROOT = Path(__file__).resolve().parent.parent
REGISTRY = "registry.example.org/scistacks"
WITH_HUB = sorted(
    p.parent.name
    for p in (REPO_ROOT / "distributions").glob("*/distribution.yml")
    if "hub" in yaml.safe_load(p.read_text())
)
# JupyterHub's ByteSpecification: K/M/G/T are powers of 1024
UNITS = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _hub(name: str, root: Path = REPO_ROOT) -> dict:
    return yaml.safe_load((root / "distributions" / name / "distribution.yml").read_text())["hub"]


def _bytes(text) -> int:
    number, unit = re.fullmatch(r"([0-9.]+)([KMGT]?)", str(text)).groups()
    return int(float(number) * UNITS.get(unit, 1))


def _tag(name: str, root: Path = REPO_ROOT) -> str:
    tag = content_tag(read_lock(Project.at(root), name))
    assert re.fullmatch(r"lock-[0-9a-f]{12}", tag)
    return tag


def _publish_record(root: Path, name: str, namespace: str = REGISTRY, **extra) -> Path:
    """``build/publish/NAME.json`` as publish writes it for the committed lock."""
    project = Project.at(root)
    data = {
        "distribution": name,
        "repository": f"{namespace}/{name}",
        "digest": "sha256:" + "cd" * 32,
        "lock_hash": read_lock(project, name).lock_hash(),
        "immutable": [_tag(name, root)],
        "mutable": ["latest"],
        "platforms": {"linux/amd64": "sha256:" + "ef" * 32},
        "artifacts": {},
        "signed": {},
    }
    PublishRecord(**(data | extra)).save(project)
    return project.publish_record(name)


def _copy(root: Path, published: bool = True) -> Path:
    """A copy of the shipped specs and locks, every hub image published in REGISTRY."""
    shutil.copytree(REPO_ROOT / "distributions", root / "distributions")
    shutil.copytree(REPO_ROOT / "lockfiles", root / "lockfiles")
    for name in WITH_HUB if published else ():
        _publish_record(root, name)
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the shipped specs and locks, published in REGISTRY, free to edit."""
    return _copy(tmp_path / "proj")


@pytest.fixture(scope="module")
def published_root(tmp_path_factory) -> Path:
    return _copy(tmp_path_factory.mktemp("published") / "proj")


def _edit_hub(root: Path, name: str, **changes) -> None:
    path = root / "distributions" / name / "distribution.yml"
    data = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None) if key == "hub" else data["hub"].pop(key, None)
        else:
            data["hub"][key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


KUBECONFIG = """\
apiVersion: v1
kind: Config
current-context: offline
contexts: [{name: offline, context: {cluster: offline, user: offline}}]
clusters: [{name: offline, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: offline, user: {token: unused}}]
"""


@pytest.fixture(autouse=True)
def kube_config(tmp_path_factory, monkeypatch):
    """KubeSpawner loads a kube config when built; profile loading never calls the API,
    so a cluster that does not exist is enough."""
    from kubernetes_asyncio.config import kube_config

    path = tmp_path_factory.getbasetemp() / "kubeconfig"
    path.write_text(KUBECONFIG)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))


def _spawn(profile_list: list | None, user_options: dict, config=None):
    """A KubeSpawner after a user picked ``user_options`` on the spawn form."""

    async def pick():
        # built inside a loop: KubeSpawner shares one API client per running loop
        kwargs = {"config": config} if config is not None else {"profile_list": profile_list}
        spawner = kubespawner.KubeSpawner(_mock=True, **kwargs)
        spawner.user_options = user_options
        await spawner.load_user_options()
        return spawner

    return asyncio.run(pick())


def _choices(profile_list: list):
    """(user_options, distribution) for every image a user can pick."""
    for profile in profile_list:
        image = profile.get("profile_options", {}).get("image")
        if image:
            for key in image["choices"]:
                yield {"profile": profile["slug"], "image": key}, key
        else:
            yield {"profile": profile["slug"]}, profile["slug"]


def _z2jh(run_cli, *args, root=REPO_ROOT) -> list:
    code, out, err = run_cli("profiles", "--registry", REGISTRY, *args, root=root)
    assert code == 0, err
    return yaml.safe_load(out)["singleuser"]["profileList"]


@pytest.fixture(scope="module")
def shipped(published_root) -> str:
    """The z2jh snippet of the shipped distributions (one CLI run for several tests)."""
    result = run_scistacks("profiles", "--registry", REGISTRY, root=published_root)
    assert result.code == 0, result.stderr
    return result.stdout


def test_every_hub_distribution_spawns_with_its_image_and_resources(shipped):
    profiles = yaml.safe_load(shipped)["singleuser"]["profileList"]
    offered = []
    for options, name in _choices(profiles):
        offered.append(name)
        hub = _hub(name)
        spawner = _spawn(profiles, options)
        assert spawner.image == f"{REGISTRY}/{name}:{_tag(name)}"
        assert spawner.cpu_limit == float(hub["cpu"]["limit"])
        assert spawner.cpu_guarantee == float(hub["cpu"]["guarantee"])
        assert spawner.mem_limit == _bytes(hub["memory"]["limit"])
        assert spawner.mem_guarantee == _bytes(hub["memory"]["guarantee"])
        assert spawner.default_url == hub["default_url"]
        if hub.get("gpu"):
            assert spawner.extra_resource_limits == {"nvidia.com/gpu": hub["gpu"]}
            assert spawner.tolerations == hub["tolerations"]
        else:
            assert spawner.extra_resource_limits == {}
            assert spawner.tolerations == []
    assert sorted(offered) == WITH_HUB


def test_shapes_gpu_apart_and_the_default(shipped):
    profiles = yaml.safe_load(shipped)["singleuser"]["profileList"]
    gpu = [n for n in WITH_HUB if _hub(n).get("gpu")]
    assert gpu == ["gpu-ml"]
    slugs = [p["slug"] for p in profiles]
    assert "gpu-ml" in slugs  # a profile of its own: its toleration stays off CPU pods
    standard = next(p for p in profiles if "profile_options" in p)
    assert set(standard["profile_options"]["image"]["choices"]) == set(WITH_HUB) - set(gpu)
    # no choice made: the spec's default (pangeo) spawns
    [default] = [n for n in WITH_HUB if _hub(n).get("default")]
    assert _spawn(profiles, {}).image == f"{REGISTRY}/{default}:{_tag(default)}"


def test_never_latest_and_deterministic(run_cli, shipped, published_root):
    again = run_cli("profiles", "--registry", REGISTRY, root=published_root)
    assert again.stdout == shipped
    assert "latest" not in shipped
    images = re.findall(r"image: (\S+)", shipped)
    assert len(images) == len(WITH_HUB)
    assert all(
        re.fullmatch(rf"{re.escape(REGISTRY)}/[a-z0-9-]+:lock-[0-9a-f]{{12}}", i) for i in images
    )


def test_kubespawner_format_executes_to_the_same_list(run_cli, project, tmp_path):
    out = tmp_path / "jupyterhub_config.py"
    code, _, err = run_cli(
        "profiles", "--registry", REGISTRY, "--format", "kubespawner", "--output", out, root=project
    )
    assert code == 0, err
    from traitlets.config import Config

    c = Config()
    exec(compile(out.read_text(), str(out), "exec"), {"c": c})
    assert c.KubeSpawner.profile_list == _z2jh(run_cli, root=project)
    # and KubeSpawner takes it from config, as a hub would
    spawner = _spawn(None, {"profile": "gpu-ml"}, config=c)
    assert spawner.image.endswith(f"/gpu-ml:{_tag('gpu-ml', project)}")


def test_digest_from_publish_record(run_cli, project):
    digest = "sha256:" + "ab" * 32
    _publish_record(project, "pangeo", digest=digest)
    (project / "build" / "publish" / "base.json").unlink(missing_ok=True)
    profiles = _z2jh(run_cli, "--digest", "pangeo", root=project)
    assert _spawn(profiles, {}).image == f"{REGISTRY}/pangeo@{digest}"

    code, out, err = run_cli("profiles", "--registry", REGISTRY, "--digest", "base", root=project)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "build/publish/base.json" in err and "publish record" in err


def test_gpu_node_choices_become_a_node_type_option(run_cli, project):
    choices = {
        "T4": {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"},
        "A100": {"cloud.google.com/gke-accelerator": "nvidia-tesla-a100"},
    }
    _edit_hub(project, "gpu-ml", gpu_node_choices=choices)
    profiles = _z2jh(run_cli, root=project)
    picked = _spawn(profiles, {"profile": "gpu-ml", "node_type": "A100"})
    assert picked.node_selector == choices["A100"]
    assert picked.extra_resource_limits == {"nvidia.com/gpu": 1}
    assert _spawn(profiles, {"profile": "gpu-ml"}).node_selector == choices["T4"]


def test_skips_distributions_without_hub_and_refuses_rstudio_it_lacks(run_cli, project):
    _edit_hub(project, "demo", hub=None)
    names = [n for _, n in _choices(_z2jh(run_cli, root=project))]
    assert "demo" not in names and "pangeo" in names

    # r-edu runs R in JupyterLab; it has no RStudio Server to send users to
    _edit_hub(project, "r-edu", default_url="/rstudio")
    out = project / "profiles.yaml"
    code, _, err = run_cli("profiles", "--registry", REGISTRY, "--output", out, root=project)
    assert code == 1 and not out.exists()
    assert len(err.strip().splitlines()) == 1 and "RStudio" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--registry", "nohost"], "--registry"),
        (["--registry", "ghcr.io/org:latest"], "--registry"),
        # never emitted: what a hub could not pull
        (["--registry", "Upper/Case:"], "--registry"),
        (["--registry", "ghcr.io/Upper/Case:"], "--registry"),
        (["--registry", "ghcr.io/org:"], "--registry"),
        (["--registry", "ghcr.io/org@sha256:" + "ab" * 32], "--registry"),
        (["--registry", "ghcr.io//org"], "--registry"),
        (["--registry", "ghcr.io/my org"], "--registry"),
        (["--registry", "ghcr.io/-org"], "--registry"),
        (["--registry", "ghc_r.io/org"], "--registry"),
        (["--registry", "ghcr.io/org", "--all", "nosuch"], "nosuch"),
        (["--registry", REGISTRY, "nosuch"], "nosuch"),
    ],
)
def test_bad_input_is_one_line(run_cli, args, message):
    code, out, err = run_cli("profiles", *args, root=REPO_ROOT)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err


# ---------------------------------------------------------------- published or not


class FakeRegistry(ThreadingHTTPServer):
    """Answers manifest requests like an OCI registry: 200 for ``present``, else 404."""

    def __init__(self):
        self.present: set[tuple[str, str]] = set()
        self.asked: list[str] = []
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                registry.asked.append(self.path)
                repo, _, ref = self.path.removeprefix("/v2/").rpartition("/manifests/")
                found = (repo, ref) in registry.present
                body = b'{"schemaVersion": 2}' if found else b'{"errors": []}'
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/vnd.oci.image.index.v1+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def fake_registry():
    server = FakeRegistry()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _offered(profiles: list) -> list[str]:
    return sorted(name for _, name in _choices(profiles))


def test_lists_only_published_images_unless_all(run_cli, tmp_path, fake_registry):
    root = _copy(tmp_path / "proj", published=False)
    namespace = f"{fake_registry.host}/scistacks"
    _publish_record(root, "pangeo", namespace=namespace)  # the record says so
    fake_registry.present.add(("scistacks/gpu-ml", _tag("gpu-ml")))  # the registry says so
    # a record of another lock is not enough
    _publish_record(root, "r-edu", namespace=namespace, lock_hash="0" * 64)
    code, out, err = run_cli("profiles", "--registry", namespace, root=root)
    assert code == 0, err
    profiles = yaml.safe_load(out)["singleuser"]["profileList"]
    assert _offered(profiles) == ["gpu-ml", "pangeo"]
    assert _spawn(profiles, {}).image == f"{namespace}/pangeo:{_tag('pangeo')}"
    left_out = sorted(set(WITH_HUB) - {"gpu-ml", "pangeo"})
    assert sorted(ln.split(":")[0] for ln in err.splitlines()) == left_out
    assert all("not published" in ln and "--all" in ln for ln in err.splitlines())
    # pangeo's record answered for it: the registry was asked about the others only
    assert not any("/pangeo/" in path for path in fake_registry.asked)

    code, out, err = run_cli("profiles", "--registry", namespace, "--all", root=root)
    assert code == 0, err
    assert _offered(yaml.safe_load(out)["singleuser"]["profileList"]) == WITH_HUB
    marked = [ln for ln in err.splitlines() if ": not published" in ln]
    assert sorted(ln.split(":")[0] for ln in marked) == left_out


def test_nothing_published_is_one_line(run_cli, tmp_path, fake_registry):
    root = _copy(tmp_path / "proj", published=False)
    out_file = tmp_path / "profiles.yaml"
    code, out, err = run_cli(
        "profiles", "--registry", f"{fake_registry.host}/org", "-o", out_file, root=root
    )
    assert code == 1 and out == "" and not out_file.exists()
    assert err.strip().splitlines()[-1].startswith("error: none of ")
    assert "--all" in err.strip().splitlines()[-1]


def test_a_registry_that_does_not_answer(run_cli, tmp_path):
    root = _copy(tmp_path / "proj", published=False)
    down = f"127.0.0.1:{free_port()}/org"  # nothing listens there
    code, out, err = run_cli("profiles", "--registry", down, root=root)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "does not answer" in err and "--all" in err
    code, out, err = run_cli("profiles", "--registry", down, "--all", root=root)
    assert code == 0, err
    assert _offered(yaml.safe_load(out)["singleuser"]["profileList"]) == WITH_HUB
    assert len([ln for ln in err.splitlines() if ": not published" in ln]) == len(WITH_HUB)


def test_the_namespace_is_lowercased(run_cli, tmp_path, fake_registry):
    root = _copy(tmp_path / "proj", published=False)
    for name in WITH_HUB:
        fake_registry.present.add((f"myorg/team/{name}", _tag(name)))
    code, out, err = run_cli(
        "profiles", "--registry", f"{fake_registry.host}/MyOrg/Team", root=root
    )
    assert code == 0, err
    images = re.findall(r"image: (\S+)", out)
    assert len(images) == len(WITH_HUB)
    assert all(i.startswith(f"{fake_registry.host}/myorg/team/") for i in images)
    assert _spawn(yaml.safe_load(out)["singleuser"]["profileList"], {}).image == (
        f"{fake_registry.host}/myorg/team/pangeo:{_tag('pangeo')}"
    )

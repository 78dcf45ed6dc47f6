"""The repo2docker engine, checked with repo2docker's own code.

Every committed context is rendered by repo2docker itself (buildpack detection and
Dockerfile rendering, as ``repo2docker --no-build`` does); the real build needs conda-forge
and a registry, so only its refusals are run here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import rattler
from repo2docker.__main__ import make_r2d
from repo2docker.app import Repo2Docker
from repo2docker.buildpacks import CondaBuildPack
from repo2docker.utils import chdir

from builder.errors import BuildError
from builder.image.repo2docker import (
    build_env_for,
    build_with_repo2docker,
    derive_base_image,
    render_dockerfile,
    repo2docker_argv,
)

REPO = Path(__file__).resolve().parents[2]
CONTEXTS = sorted(p.parent for p in (REPO / "images").glob("*/*/environment.yml"))
OCI = {"linux-64": "linux/amd64", "linux-aarch64": "linux/arm64"}
DEBIAN = {
    "linux/amd64": "scistacks/debian:bookworm-amd64",
    "linux/arm64": "scistacks/debian:bookworm-arm64",
}
LABELS = {
    "org.opencontainers.image.title": "base",
    "io.scistacks.lock-hash": "0123abcd",
}


def context_id(folder: Path) -> str:
    return f"{folder.parent.name}/{folder.name}"


def locked_python(name: str, platform: str) -> str | None:
    env = rattler.LockFile.from_path(
        REPO / "lockfiles" / name / "conda-lock.yml"
    ).default_environment()
    plat = next(p for p in env.platforms() if p.name == platform)
    for record in env.conda_repodata_records_for_platform(plat) or []:
        if record.name.normalized == "python":
            return str(record.version)
    return None


def test_every_real_distribution_has_committed_contexts():
    found = {context_id(c) for c in CONTEXTS}
    for expected in (
        "base/linux-64",
        "base/linux-aarch64",
        "pangeo/linux-64",
        "pangeo/linux-aarch64",
        "r-edu/linux-64",
        "r-edu/linux-aarch64",
        "gpu-ml/linux-64",
    ):
        assert expected in found


@pytest.mark.parametrize("context", CONTEXTS, ids=context_id)
def test_repo2docker_renders_each_committed_context(context: Path):
    name, platform = context.parent.name, context.name
    dockerfile = render_dockerfile(context, platform, labels=LABELS)

    # the platform and repo2docker's default base image
    assert dockerfile.lstrip().startswith(f"FROM {Repo2Docker.base_image.default_value}\n")
    assert f"ENV CONDA_PLATFORM={platform}\n" in dockerfile

    # our environment file is the one installed, into the notebook env, by the conda buildpack
    if (context / "requirements.txt").is_file():
        # its pip: section reads requirements.txt: repo2docker copies the context first
        head = dockerfile.split("env update", 1)[0]
        assert "COPY --chown=1000:1000 src/ ${REPO_DIR}/\n" in head
    else:
        assert (
            "COPY --chown=1000:1000 src/environment.yml ${REPO_DIR}/environment.yml\n" in dockerfile
        )
    assert '${MAMBA_EXE} env update -p ${NB_PYTHON_PREFIX} --file "environment.yml"' in dockerfile
    assert "ENV NB_PYTHON_PREFIX=${CONDA_DIR}/envs/notebook\n" in dockerfile
    python = locked_python(name, platform)
    if python:  # repo2docker's base env is for the locked Python: no switch of Python
        with chdir(context):
            detected = CondaBuildPack(base_image="unused").python_version
        assert detected == ".".join(python.split(".")[:2])

    # the notebook user, uid 1000
    assert "ARG NB_UID\n" in dockerfile
    assert "--uid ${NB_UID}" in dockerfile
    assert "COPY --chown=1000:1000 src/ ${REPO_DIR}/\n" in dockerfile
    assert "USER ${NB_USER}\n" in dockerfile

    # the lock alone: no RStudio, no r-devtools added by repo2docker's R support
    assert "rstudio" not in dockerfile.lower()
    assert "r-devtools" not in dockerfile

    # the labels we pass
    for key, value in LABELS.items():
        assert f'LABEL {key}="{value}"\n' in dockerfile

    # the optional files, where the context has them
    assert ("RUN ./postBuild\n" in dockerfile) == (context / "postBuild").is_file()
    assert ('ENV R2D_ENTRYPOINT="${REPO_DIR}/start"' in dockerfile) == (context / "start").is_file()
    if (context / "apt.txt").is_file():
        packages = sorted((context / "apt.txt").read_text().split())
        assert f"apt-get install --yes --no-install-recommends {' '.join(packages)}" in dockerfile


def test_a_configured_base_image_is_the_from_line():
    context = REPO / "images/base/linux-aarch64"
    dockerfile = render_dockerfile(context, "linux/arm64", base_image="localhost:5000/ubuntu:24.04")
    assert dockerfile.lstrip().startswith("FROM localhost:5000/ubuntu:24.04\n")
    assert "ENV CONDA_PLATFORM=linux-aarch64\n" in dockerfile


def test_repo2docker_without_the_channel_qualified_r_pins_would_add_rstudio(tmp_path):
    """Why R packages are written ``conda-forge::r-...``: plain ``r-...`` lines make
    repo2docker's R support kick in, which cannot build linux/arm64 at all."""
    plain = tmp_path / "ctx"
    shutil.copytree(REPO / "images/r-edu/linux-aarch64", plain)
    env = plain / "environment.yml"
    env.write_text(env.read_text().replace("- conda-forge::r-", "- r-"))
    with pytest.raises(BuildError, match="RStudio is only available for linux/amd64"):
        render_dockerfile(plain, "linux-aarch64")


def test_argv_is_exact_and_repo2docker_reads_it_back():
    argv = repo2docker_argv(
        "images/base/linux-aarch64",
        "localhost:5000/base:abc-arm64",
        "linux/arm64",
        {"org.opencontainers.image.title": "base", "io.scistacks.distribution": "base"},
        base_image="localhost:5000/ubuntu:24.04",
    )
    assert argv == [
        "--no-run",
        "--image-name",
        "localhost:5000/base:abc-arm64",
        "--Repo2Docker.platform=linux/arm64",
        "--user-id",
        "1000",
        "--user-name",
        "jovyan",
        "--label",
        "io.scistacks.distribution=base",
        "--label",
        "org.opencontainers.image.title=base",
        "--Repo2Docker.base_image=localhost:5000/ubuntu:24.04",
        "--DockerEngine.extra_buildx_build_args=--load",
        "images/base/linux-aarch64",
    ]
    app = make_r2d(argv)  # repo2docker's own command-line parser
    assert app.platform == "linux/arm64"
    assert app.base_image == "localhost:5000/ubuntu:24.04"
    assert app.output_image_spec == "localhost:5000/base:abc-arm64"
    assert (app.user_id, app.user_name) == (1000, "jovyan")
    assert app.labels == {
        "org.opencontainers.image.title": "base",
        "io.scistacks.distribution": "base",
    }
    assert (app.run, app.push, app.dry_run) == (False, False, False)
    assert app.repo == "images/base/linux-aarch64"


def test_argv_defaults_and_platform_spellings():
    argv = repo2docker_argv("ctx", "img:1", "linux-64", {})
    assert "--Repo2Docker.platform=linux/amd64" in argv
    assert not any(a.startswith("--Repo2Docker.base_image") for a in argv)
    assert argv[-1] == "ctx"
    for bad in ("linux/ppc64le", "osx-arm64", "linux/s390x"):
        with pytest.raises(BuildError):
            repo2docker_argv("ctx", "img:1", bad, {})
    with pytest.raises(BuildError, match="invalid image label name"):
        repo2docker_argv("ctx", "img:1", "linux/amd64", {"bad key": "x"})


def test_the_readme_command_is_what_the_engine_runs():
    for context in CONTEXTS:
        readme = (context / "README.md").read_text()
        command = re.search(r"^repo2docker (.+)$", readme, re.M).group(1).split()
        folder = f"images/{context_id(context)}"
        expected = repo2docker_argv(folder, command[2], OCI[context.name], {})
        assert command == [a for a in expected if not a.startswith("--DockerEngine.")]


def test_build_env_for_virtual_packages():
    assert build_env_for({"__cuda": "12.0", "__glibc": "2.28"}) == {"CONDA_OVERRIDE_CUDA": "12.0"}
    assert build_env_for({"__glibc": "2.28"}) == {}


# ---------------------------------------------------------------- the real build's refusals


def test_no_docker_daemon_is_one_line(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(BuildError) as info:
        build_with_repo2docker(
            REPO / "images/base/linux-64", "scistacks-test/r2d:never", "linux/amd64", LABELS
        )
    message = str(info.value)
    assert "\n" not in message
    assert "docker daemon" in message


@pytest.mark.docker
def test_unreachable_base_image_registry_is_one_line():
    with pytest.raises(BuildError) as info:
        build_with_repo2docker(
            REPO / "images/base/linux-64",
            "scistacks-test/r2d:never",
            "linux/amd64",
            LABELS,
            base_image="127.0.0.1:9/nothing/base:1",
        )
    assert str(info.value).startswith(
        "cannot reach 127.0.0.1:9 (registry of the base image 127.0.0.1:9/nothing/base:1)"
    )
    assert "\n" not in str(info.value)


@pytest.mark.docker
def test_a_local_channel_cannot_be_built_by_repo2docker(tmp_path):
    context = tmp_path / "ctx"
    shutil.copytree(REPO / "images/base/linux-64", context)
    env = context / "environment.yml"
    env.write_text(env.read_text().replace("- conda-forge\n", "- file:///srv/channel\n", 1))
    with pytest.raises(BuildError, match="channel file:///srv/channel is a local folder"):
        build_with_repo2docker(
            context, "scistacks-test/r2d:never", "linux/amd64", LABELS, DEBIAN["linux/amd64"]
        )


@pytest.mark.docker
def test_derived_base_image_sets_the_build_env():
    oci = "linux/amd64"
    tag = derive_base_image(DEBIAN[oci], {"CONDA_OVERRIDE_CUDA": "12.0"}, oci)
    try:
        assert tag == derive_base_image(DEBIAN[oci], {"CONDA_OVERRIDE_CUDA": "12.0"}, oci)
        inspect = ["docker", "image", "inspect", tag]
        info = json.loads(subprocess.run(inspect, capture_output=True, check=True).stdout)[0]
        assert "CONDA_OVERRIDE_CUDA=12.0" in info["Config"]["Env"]
        assert f"{info['Os']}/{info['Architecture']}" == oci
        dockerfile = render_dockerfile(REPO / "images/gpu-ml/linux-64", oci, base_image=tag)
        assert dockerfile.lstrip().startswith(f"FROM {tag}\n")
    finally:
        subprocess.run(["docker", "image", "rm", tag], capture_output=True)


@pytest.mark.docker
def test_label_values_survive_the_dockerfile_parser(tmp_path):
    """repo2docker writes labels into its Dockerfile: quotes, ``$`` and backslashes must come
    out of docker's parser unchanged."""
    value = 'PyTorch "CUDA" on $HOME \\ 100%'
    dockerfile = render_dockerfile(
        REPO / "images/base/linux-64", "linux-64", labels={"x.test": value}
    )
    label = next(ln for ln in dockerfile.splitlines() if ln.startswith("LABEL x.test="))
    (tmp_path / "Dockerfile").write_text(f"FROM {DEBIAN['linux/amd64']}\n{label}\n")
    tag = "scistacks-test/label-escape:1"
    subprocess.run(
        [
            "docker",
            "buildx",
            "build",
            "--platform",
            "linux/amd64",
            "--load",
            "-t",
            tag,
            str(tmp_path),
        ],
        capture_output=True,
        check=True,
    )
    try:
        out = subprocess.run(
            ["docker", "image", "inspect", "--format", '{{index .Config.Labels "x.test"}}', tag],
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.rstrip("\n") == value
    finally:
        subprocess.run(["docker", "image", "rm", tag], capture_output=True)

"""The smoke stage, against real containers.

The images are built here, small: Debian's Jupyter (nbconvert, ipykernel, jupyter_server)
on the scistacks Debian base, with repo2docker's conventions (jovyan uid 1000, the env's
``bin`` first on PATH, a ``start`` entrypoint). They are tagged by the hash of their recipe
and kept, so a second run of the suite reuses them. They are amd64 only: an apt step under
qemu takes minutes (7 on a 2-core machine), and the demo's images, which the image stage
builds anyway, carry the arm64 test.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest
from conftest import run_scistacks, write_project
from docker_support import BASE_IMAGES, IN_CI
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from builder.smoke import RUN_LABEL, explain_failure

# ---------------------------------------------------------------- images

START = """\
#!/bin/sh
# repo2docker's start convention: set things up, then run the command
export SMOKE_TEST_STARTED=1
exec "$@"
"""

JUPYTER_DOCKERFILE = """\
ARG BASE
FROM ${BASE}
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      python3 python3-ipykernel python3-nbconvert jupyter-core jupyter-nbconvert \\
      python3-jupyter-server jupyter-server \\
 && rm -rf /var/lib/apt/lists/*
RUN useradd --uid 1000 --create-home --shell /bin/bash jovyan \\
 && mkdir -p /srv/conda/envs/notebook/bin \\
 && ln -s /usr/bin/python3 /srv/conda/envs/notebook/bin/python
COPY start /usr/local/bin/start
ENV NB_PYTHON_PREFIX=/srv/conda/envs/notebook \\
    PATH=/srv/conda/envs/notebook/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
USER 1000
WORKDIR /home/jovyan
ENTRYPOINT ["/usr/local/bin/start"]
"""

# Breaks what a hub needs, without another apt run: Debian's python ahead of the env's,
# a HOME the user cannot write, no entrypoint to run `start`.
BAD_HUB_DOCKERFILE = """\
ARG BASE
FROM ${BASE}
USER root
RUN ln -s python3 /usr/bin/python
ENV PATH=/usr/bin:/bin:/srv/conda/envs/notebook/bin HOME=/srv
USER 1000
ENTRYPOINT []
"""


def _build(recipe: str, files: dict[str, str], base: str, arch: str, name: str, tmp: Path) -> str:
    """Build once per recipe: the tag carries the recipe's hash."""
    digest = hashlib.sha256((recipe + json.dumps(files, sort_keys=True) + base).encode())
    ref = f"scistacks-test/smoke-{name}:{digest.hexdigest()[:12]}-{arch}"
    if subprocess.run(["docker", "image", "inspect", ref], capture_output=True).returncode == 0:
        return ref
    folder = tmp / f"{name}-{arch}"
    folder.mkdir(parents=True)
    (folder / "Dockerfile").write_text(recipe)
    for rel, text in files.items():
        (folder / rel).write_text(text)
        (folder / rel).chmod(0o755)
    proc = subprocess.run(
        [
            *("docker", "build", "--platform", f"linux/{arch}"),
            *("--build-arg", f"BASE={base}", "-t", ref, str(folder)),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return ref


@pytest.fixture(scope="session")
def jupyter_image(tmp_path_factory) -> str:
    """Debian's Jupyter on amd64 (arm64 is covered by the demo's images, built anyway)."""
    tmp = tmp_path_factory.mktemp("smoke-images")
    return _build(
        JUPYTER_DOCKERFILE, {"start": START}, BASE_IMAGES["amd64"], "amd64", "jupyter", tmp
    )


@pytest.fixture(scope="session")
def bad_hub_image(jupyter_image, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad-hub")
    return _build(BAD_HUB_DOCKERFILE, {}, jupyter_image, "amd64", "bad-hub", tmp)


# ---------------------------------------------------------------- projects


def notebook(*sources: str, kernel: str = "python3") -> str:
    cells = [new_markdown_cell("# a test notebook")] + [new_code_cell(s) for s in sources]
    nb = new_notebook(
        cells=cells,
        metadata={"kernelspec": {"name": kernel, "display_name": "Python 3", "language": "python"}},
    )
    return nbformat.writes(nb)


OK_NB = notebook(
    "import os, platform\nprint('machine', platform.machine())\nprint('started', os.environ.get('SMOKE_TEST_STARTED'))",
    # mounted read-only; no network but loopback
    "try:\n    open('written-by-notebook.txt', 'w')\nexcept OSError as exc:\n    print('read-only:', exc.errno)\nelse:\n    raise AssertionError('the notebooks folder is writable')",
    "print('interfaces', sorted(os.listdir('/sys/class/net')))\nassert os.listdir('/sys/class/net') == ['lo']",
)
RAISE_NB = notebook(
    "x = 41", "def check(v):\n    raise ValueError(f'boom: {v + 1}')\n\ncheck(x)", "print('never')"
)
HANG_NB = notebook("import time", "while True:\n    time.sleep(0.5)")
SLOW_CELL_NB = notebook("import time", "time.sleep(60)")
NETWORK_NB = notebook(
    "import os\nassert 'eth0' in os.listdir('/sys/class/net'), os.listdir('/sys/class/net')"
)

HUB = {"display_name": "Test"}


def smoke_project(
    root: Path, spec: dict, notebooks: dict[str, str], images: dict[str, str]
) -> Path:
    """A project with distributions/t and the image stage's record build/images/t.json."""
    files = {f"distributions/t/notebooks/{n}": text for n, text in notebooks.items()}
    files["distributions/t/start"] = START
    spec = {"name": "t", "channels": ["conda-forge"], "dependencies": ["python"], **spec}
    write_project(root, {"t": spec}, files)
    platforms = {}
    for plat, ref in images.items():
        image_id = subprocess.run(
            ["docker", "image", "inspect", "-f", "{{.Id}}", ref], capture_output=True, text=True
        ).stdout.strip()
        oci = {"linux-64": "linux/amd64", "linux-aarch64": "linux/arm64"}[plat]
        platforms[plat] = {
            "oci_platform": oci,
            "ref": ref,
            "image_id": image_id,
            "lock_hash": f"{plat}-hash",
            "engine": "native",
        }
    record = {"distribution": "t", "lock_hash": "0" * 64, "platforms": platforms}
    (root / "build" / "images").mkdir(parents=True)
    (root / "build" / "images" / "t.json").write_text(json.dumps(record))
    return root


def leftover_containers() -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label={RUN_LABEL}", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
    )
    return out.stdout.split()


def checks_of(results: dict, platform: str) -> dict[str, dict]:
    checks = results["platforms"][platform]["checks"]
    return {c["name"] if c["kind"] == "image" else f"{c['kind']}: {c['name']}": c for c in checks}


# ---------------------------------------------------------------- without docker


def test_explain_failure_reads_nbconverts_log():
    # nbconvert 6.5's --log-level=DEBUG output, shortened: two cells started, the second raised
    log = (
        "[NbConvertApp] Executing cell:\nx = 1\n[NbConvertApp] msg_type: status\n"
        "[NbConvertApp] Executing cell:\nf()\n[NbConvertApp] msg_type: error\n"
        'Traceback (most recent call last):\n  File "nbclient/client.py", line 915\n'
        "nbclient.exceptions.CellExecutionError: An error occurred while executing the following cell:\n"
        "------------------\nf()\n------------------\n\n"
        "\x1b[0;31mNameError\x1b[0m                                 Traceback (most recent call last)\n"
        "Cell \x1b[0;32mIn [2], line 1\x1b[0m\n----> 1 f()\n\n"
        "\x1b[0;31mNameError\x1b[0m: name 'f' is not defined\n"
        "NameError: name 'f' is not defined\n"
    )
    cells = [(2, "x = 1"), (4, "f()")]
    cell, source, message, details = explain_failure(log, cells)
    assert (cell, source) == (4, "f()")
    assert message == "NameError: name 'f' is not defined"
    assert "----> 1 f()" in details and "\x1b" not in details


def test_explain_failure_cell_timeout_and_unknown_error():
    log = (
        "[NbConvertApp] Executing cell:\nimport time\n[NbConvertApp] Executing cell:\ntime.sleep(9)\n"
        "nbclient.exceptions.CellTimeoutError: A cell timed out while it was being executed, "
        "after 3 seconds.\nThe message was: Cell execution timed out.\n"
    )
    cell, source, message, _ = explain_failure(log, [(1, "import time"), (2, "time.sleep(9)")])
    assert (cell, source) == (2, "time.sleep(9)")
    assert message == "cell timed out, after 3 seconds (cell_timeout)"
    cell, _, message, _ = explain_failure(
        "jupyter_client.kernelspec.NoSuchKernel: No such kernel named ir\n", [(1, "1")]
    )
    assert cell is None and message == "the notebook's kernel 'ir' is not installed in the image"


def test_no_image_record_is_one_line(make_project):
    root = make_project({"t": {"name": "t", "dependencies": ["python"]}})
    result = run_scistacks("smoke", "t", root=root)
    assert result.code == 1
    assert len(result.err_lines) == 1, result.stderr
    assert "build/images/t.json" in result.stderr and "scistacks build t" in result.stderr


# ---------------------------------------------------------------- amd64


@pytest.mark.docker
def test_notebooks_imports_and_hub_checks(tmp_path, jupyter_image):
    image = jupyter_image
    spec = {
        "platforms": ["linux-64"],
        "start": "start",
        "notebooks": [
            "notebooks/ok.ipynb",
            "notebooks/raise.ipynb",
            {"path": "notebooks/hang.ipynb", "timeout": 20, "cell_timeout": 600},
            {"path": "notebooks/slow-cell.ipynb", "cell_timeout": 3},
            {"path": "notebooks/network.ipynb", "network": True},
            "notebooks/missing.ipynb",
            {"path": "notebooks/arm-only.ipynb", "platforms": ["linux-aarch64"]},
        ],
        "imports": ["json", "nbformat", "no_such_module", "xml.dom.minidom"],
        "hub": HUB,
    }
    notebooks = {
        "ok.ipynb": OK_NB,
        "raise.ipynb": RAISE_NB,
        "hang.ipynb": HANG_NB,
        "slow-cell.ipynb": SLOW_CELL_NB,
        "network.ipynb": NETWORK_NB,
        "arm-only.ipynb": OK_NB,
    }
    root = smoke_project(tmp_path / "p", spec, notebooks, {"linux-64": image})
    (root / "distributions/t/notebooks").chmod(0o755)

    started = time.monotonic()
    result = run_scistacks("smoke", "t", "--jobs", "4", root=root, timeout=300)
    wall = time.monotonic() - started
    assert result.code == 1, result.stderr
    assert "t linux/amd64: FAILED" in result.stdout
    # the hanging notebook is killed at 20 s; everything else runs beside it
    assert wall < 75, wall
    assert leftover_containers() == []

    out = root / "build/smoke/t"
    results = json.loads((out / "results.json").read_text())
    assert results["distribution"] == "t" and results["passed"] is False
    plat = results["platforms"]["linux-64"]
    assert plat["passed"] is False
    assert plat["ref"] == image and plat["image_id"].startswith("sha256:")
    assert plat["lock_hash"] == "linux-64-hash"
    checks = checks_of(results, "linux-64")
    nb = "notebook: distributions/t/notebooks/"

    ok = checks[nb + "ok.ipynb"]
    assert ok["status"] == "pass", ok
    executed = nbformat.read(out / ok["output"], as_version=4)
    text = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "machine x86_64" in text
    assert "started 1" in text  # the image's start ran before the kernel
    assert "read-only: 30" in text  # EROFS
    assert "interfaces ['lo']" in text
    assert checks[nb + "network.ipynb"]["status"] == "pass"
    assert nb + "arm-only.ipynb" not in checks

    raised = checks[nb + "raise.ipynb"]
    assert raised["status"] == "fail"
    assert raised["cell"] == 3  # the markdown cell is cell 1
    assert raised["message"] == "cell 3: ValueError: boom: 42"
    assert "raise ValueError(f'boom: {v + 1}')" in raised["cell_source"]
    assert "ValueError: boom: 42" in raised["details"]
    assert "\x1b" not in raised["details"]

    hung = checks[nb + "hang.ipynb"]
    assert hung["status"] == "fail"
    assert hung["message"] == "notebook timed out after 20 s (timeout), killed while running cell 3"
    assert 19 < hung["duration"] < 35
    assert hung["cell_source"].startswith("while True")

    slow = checks[nb + "slow-cell.ipynb"]
    assert slow["status"] == "fail" and slow["cell"] == 3
    assert "timed out" in slow["message"] and "3 seconds" in slow["message"]
    assert slow["duration"] < 30

    missing = checks[nb + "missing.ipynb"]
    assert missing["status"] == "fail"
    assert "distributions/t/notebooks/missing.ipynb does not exist" in missing["message"]

    # imports: one process, a time per module, the failing one with its exception line
    assert checks["import: json"]["status"] == "pass"
    assert checks["import: xml.dom.minidom"]["status"] == "pass"
    bad = checks["import: no_such_module"]
    assert bad["status"] == "fail"
    assert bad["message"] == "ModuleNotFoundError: No module named 'no_such_module'"
    modules = plat["imports"]["modules"]
    assert list(modules) == ["json", "nbformat", "no_such_module", "xml.dom.minidom"]
    assert all(isinstance(m["seconds"], float) and m["seconds"] >= 0 for m in modules.values())
    assert re.fullmatch(r"5\.\d+\.\d+", modules["nbformat"]["version"])  # Debian 12's is 5.5
    assert plat["imports"]["python"] == "/srv/conda/envs/notebook/bin/python"

    # hub: a server, but no jupyterhub-singleuser in this image
    assert checks["hub: start"]["status"] == "pass"
    assert "/usr/local/bin/start" in checks["hub: start"]["message"]
    assert checks["hub: uid"]["status"] == "pass"
    assert checks["hub: home"]["status"] == "pass"
    assert checks["hub: python"]["status"] == "pass", checks["hub: python"]
    assert checks["hub: singleuser"]["status"] == "fail"
    assert "jupyterhub-singleuser not found" in checks["hub: singleuser"]["message"]
    server = checks["hub: server"]
    assert server["status"] == "pass", server
    assert "jupyter server (no jupyterhub-singleuser)" in server["message"]
    assert "/api -> 200" in server["message"]

    # the summary: per notebook result and duration, the failing cell and traceback end
    summary = (out / "summary.md").read_text()
    assert "## linux/amd64: FAILED" in summary
    assert "| notebook: distributions/t/notebooks/ok.ipynb | pass |" in summary
    assert "def check(v):\n    raise ValueError(f'boom: {v + 1}')" in summary
    assert "ValueError: boom: 42" in summary
    assert "killed while running cell 3" in summary
    assert "| `no_such_module` | **FAIL** |" in summary

    # JUnit: one testcase per check, failures carry the message
    junit = ET.parse(out / "junit.xml").getroot()
    cases = {c.get("name"): c for c in junit.iter("testcase")}
    assert len(cases) == len(checks)
    assert junit.get("failures") == str(sum(c["status"] == "fail" for c in checks.values()))
    failure = cases[nb + "raise.ipynb"].find("failure")
    assert failure.get("message") == "cell 3: ValueError: boom: 42"
    assert "check(x)" in failure.text
    assert cases[nb + "ok.ipynb"].find("failure") is None
    # outputs: executed notebooks and logs only, no scratch left behind
    assert sorted(p.name for p in out.iterdir()) == [
        "junit.xml",
        "outputs",
        "results.json",
        "summary.md",
    ]
    assert (out / "outputs/linux-64/t/notebooks/raise.log").is_file()


@pytest.mark.docker
def test_no_jupyter_and_a_missing_platform_image(tmp_path):
    bare = BASE_IMAGES["amd64"]  # Debian minbase: no python, no jupyter, root
    spec = {
        "platforms": ["linux-64", "linux-aarch64"],
        "notebooks": ["notebooks/ok.ipynb"],
        "imports": ["json"],
        "start": "start",
        "hub": HUB,
    }
    root = smoke_project(tmp_path / "p", spec, {"ok.ipynb": OK_NB}, {"linux-64": bare})
    started = time.monotonic()
    result = run_scistacks("smoke", "t", root=root, timeout=300)
    assert result.code == 1
    assert time.monotonic() - started < 90
    assert "t linux/amd64: FAILED" in result.stdout and "t linux/arm64: FAILED" in result.stdout

    results = json.loads((root / "build/smoke/t/results.json").read_text())
    arm = results["platforms"]["linux-aarch64"]
    assert arm["passed"] is False
    assert arm["problem"] == (
        "no linux/arm64 image in build/images/t.json "
        "(build it: scistacks build t --platform linux/arm64)"
    )
    assert [c["name"] for c in arm["checks"]] == ["image"]

    amd = checks_of(results, "linux-64")
    assert amd["image"]["status"] == "pass"
    nb = amd["notebook: distributions/t/notebooks/ok.ipynb"]
    assert nb["status"] == "fail"
    assert nb["message"].startswith(f"jupyter not found in image {bare} (linux/amd64)")
    assert amd["imports: imports"]["message"] == f"no python on PATH in image {bare} (linux/amd64)"
    assert amd["hub: uid"]["status"] == "fail"
    assert amd["hub: uid"]["message"] == "the default user is uid 0 (root), not 1000"
    assert amd["hub: start"]["status"] == "fail"
    assert "no entrypoint" in amd["hub: start"]["message"]
    assert "neither jupyterhub-singleuser nor jupyter server" in amd["hub: server"]["message"]
    summary = (root / "build/smoke/t/summary.md").read_text()
    assert "## linux/arm64: FAILED" in summary and "no linux/arm64 image" in summary


@pytest.mark.docker
def test_hub_checks_report_what_a_hub_would_trip_on(tmp_path, bad_hub_image):
    spec = {"platforms": ["linux-64"], "start": "start", "hub": HUB}
    root = smoke_project(tmp_path / "p", spec, {}, {})
    result = run_scistacks(
        "smoke", "t", "--image", bad_hub_image, "--results", tmp_path / "res", root=root
    )
    assert result.code == 1, result.stderr
    checks = checks_of(json.loads((tmp_path / "res/results.json").read_text()), "linux-64")
    assert checks["hub: uid"]["status"] == "pass"
    assert checks["hub: home"]["status"] == "fail"
    assert checks["hub: home"]["message"].startswith("HOME /srv is not writable by uid 1000")
    assert checks["hub: python"]["status"] == "fail"
    assert checks["hub: python"]["message"].startswith(
        "python on PATH is /usr/bin/python, not /srv/conda/envs/notebook/bin/python"
    )
    assert checks["hub: start"]["status"] == "fail"
    assert "start never runs" in checks["hub: start"]["message"]
    assert not (root / "build/smoke").exists()  # --results went elsewhere


@pytest.mark.docker
def test_a_cancelled_run_leaves_no_container_behind(tmp_path, jupyter_image):
    spec = {"platforms": ["linux-64"], "notebooks": ["notebooks/hang.ipynb"]}
    root = smoke_project(tmp_path / "p", spec, {"hang.ipynb": HANG_NB}, {"linux-64": jupyter_image})
    proc = subprocess.Popen(
        [sys.executable, "-m", "builder", "--root", root, "smoke", "t"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    # the run's second container is the notebook's (the first probes the image)
    while not any(n.endswith("-2") for n in leftover_containers()):
        assert time.monotonic() < deadline, "the notebook's container never started"
        time.sleep(0.2)
    time.sleep(2)
    proc.terminate()  # what a cancelled CI job gets
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "Traceback" not in err
    assert leftover_containers() == []
    # no half-written results and no scratch folder
    assert not (root / "build/smoke/t").exists() or not any((root / "build/smoke/t").iterdir())


@pytest.mark.docker
def test_image_option_with_the_wrong_platform(tmp_path, jupyter_image):
    root = smoke_project(tmp_path / "p", {"platforms": ["linux-64"]}, {}, {})
    result = run_scistacks(
        "smoke", "t", "--platform", "linux/arm64", "--image", jupyter_image, root=root
    )
    assert result.code == 1
    results = json.loads((root / "build/smoke/t/results.json").read_text())
    problem = results["platforms"]["linux-aarch64"]["problem"]
    assert problem == f"image {jupyter_image} is linux/amd64, not linux/arm64"


# ---------------------------------------------------------------- the demo, as CI runs it


@pytest.mark.docker
@pytest.mark.arm64
@pytest.mark.slow
def test_demo_passes_on_both_architectures(tmp_path, repo_root):
    """The issue's "done when": ``scistacks smoke demo`` on amd64 and arm64.

    The images come from the image stage; it skips platforms already built from the same
    lock, so this is quick once ``scistacks build demo`` has run on the machine."""
    root = tmp_path / "p"
    shutil.copytree(repo_root / "distributions/demo", root / "distributions/demo")
    # the channel map (scistacks-demo -> distributions/demo/channel) lives in pyproject.toml
    shutil.copy(repo_root / "pyproject.toml", root / "pyproject.toml")
    locked = run_scistacks("lock", "demo", root=root, timeout=300)  # offline, a second
    assert locked.code == 0, locked.stderr
    build = run_scistacks(
        "build",
        "demo",
        "--engine",
        "native",
        "--platform",
        "linux/amd64,linux/arm64",
        root=root,
        timeout=3600,
    )
    if build.code != 0 and not IN_CI:
        pytest.skip(f"demo images could not be built here: {build.err_lines[-1:]}")
    assert build.code == 0, build.stderr[-2000:]
    result = run_scistacks("smoke", "demo", root=root, timeout=1200)
    summary = (root / "build/smoke/demo/summary.md").read_text()
    assert result.code == 0, summary
    results = json.loads((root / "build/smoke/demo/results.json").read_text())
    record = json.loads((root / "build/images/demo.json").read_text())
    for plat in ("linux-64", "linux-aarch64"):
        entry = results["platforms"][plat]
        assert entry["passed"] is True
        assert entry["image_id"] == record["platforms"][plat]["image_id"]
        assert entry["lock_hash"] == record["platforms"][plat]["lock_hash"]
        checks = checks_of(results, plat)
        assert checks["hub: singleuser"]["status"] == "pass"
        assert re.search(
            r"jupyterhub-singleuser spawned by JupyterHub \S+ answered", checks["hub: server"]["message"]
        )
        assert checks["import: scistacks_demo"]["status"] == "pass"
        assert {n for n in entry["notebooks"]} == {
            "distributions/demo/notebooks/read-data.ipynb",
            "distributions/demo/notebooks/call-tool.ipynb",
        }
    print(
        "demo per-platform durations:",
        {p: e["duration"] for p, e in results["platforms"].items()},
        "wall",
        results["duration"],
        file=sys.stderr,
    )


@pytest.mark.docker
def test_a_retagged_image_is_not_tested_in_the_recorded_ones_name(tmp_path, jupyter_image):
    # publish trusts results.json's image_id: smoke must never test another image under it
    root = smoke_project(
        tmp_path / "p", {"platforms": ["linux-64"]}, {}, {"linux-64": jupyter_image}
    )
    record_file = root / "build/images/t.json"
    record = json.loads(record_file.read_text())
    record["platforms"]["linux-64"]["image_id"] = "sha256:" + "0" * 64
    record_file.write_text(json.dumps(record))
    result = run_scistacks("smoke", "t", root=root)
    assert result.code == 1
    entry = json.loads((root / "build/smoke/t/results.json").read_text())["platforms"]["linux-64"]
    assert entry["passed"] is False
    assert entry["problem"].startswith(f"{jupyter_image} is now sha256:")
    assert "not sha256:000000000000 as build/images/t.json says" in entry["problem"]

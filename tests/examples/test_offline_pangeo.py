"""The offline-pangeo example end to end: a conda CPython with JupyterLab, the single-user
server and the Pangeo stack, locked, built natively, smoke-tested, published and run.

``pipeline.py`` is what ``nox -s offline-pangeo`` runs; this test runs it as a whole
process, then looks inside the image it built for what only the real conda path has:
prefix rewriting, ``noarch: python`` packages and their entry points, compiled files,
kernel specs and server extensions shipped as data files, and no trace of the build host.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "offline-pangeo"
ENV = "/srv/conda/envs/notebook"
SP = f"{ENV}/lib/python3.11/site-packages"

# a cold machine builds the channel first (CPython from source: 10-15 min on 2 cores)
pytestmark = [
    pytest.mark.docker,
    pytest.mark.registry,
    pytest.mark.slow,
    pytest.mark.timeout(3600),
]

PROBE = f"""
set -e
echo "prefix=$(python -c 'import sys; print(sys.prefix)')"
echo "python=$(command -v python)"
echo "version=$(python -c 'import sys; print(sys.version.split()[0])')"
echo "lab_shebang=$(head -n1 {ENV}/bin/jupyter-lab)"
echo "singleuser=$(command -v jupyterhub-singleuser)"
echo "numpy_file=$(python -c 'import numpy; print(numpy.__file__)')"
echo "noarch=$(python -c 'import packaging; print(packaging.__file__)')"
echo "kernel=$(python -c 'import json; print(json.load(open("{ENV}/share/jupyter/kernels/python3/kernel.json"))["argv"][0])')"
echo "lab_ext=$(ls {ENV}/etc/jupyter/jupyter_server_config.d/ | tr '\\n' ' ')"
echo "labextensions=$(ls {ENV}/share/jupyter/labextensions 2>/dev/null | tr '\\n' ' ')"
echo "pyc=$(ls {SP}/numpy/__pycache__/ | grep -c 'cpython-311.pyc')"
echo "pyc_flags=$(python -c 'import glob, struct; f=sorted(glob.glob("{SP}/xarray/__pycache__/*.pyc"))[0]; print(struct.unpack("<I", open(f, "rb").read()[4:8])[0])')"
echo "placeholders=$(grep -rlI -e anaconda1anaconda2anaconda3 -e placehold_placehold {ENV}/bin {ENV}/lib/python3.11/site-packages {ENV}/share/jupyter 2>/dev/null | head -n 3 | tr '\\n' ' ')"
echo "ssl=$(python -c 'import ssl; print(ssl.OPENSSL_VERSION)')"
echo "compute=$(python -c 'import numpy, scipy.linalg; a=numpy.eye(3)*2; print(float(scipy.linalg.det(a)))')"
"""


def probe(ref: str) -> dict[str, str]:
    proc = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", ref, "sh", "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)


@pytest.fixture(scope="module")
def pipeline() -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE / "pipeline.py")],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


def test_every_step_passes(pipeline):
    out = pipeline.stdout
    for step in ("channel", "lock", "build", "smoke", "publish", "profiles", "run"):
        assert f"[offline-pangeo] {step}: done" in out, out
    assert "answers with its token, 403 without, /lab served" in out


def test_the_image_is_a_working_relocated_conda_environment(pipeline):
    record = json.loads((EXAMPLE / "build" / "images" / "pangeo.json").read_text())
    values = probe(record["platforms"]["linux-64"]["ref"])
    assert values["prefix"] == ENV and values["python"] == f"{ENV}/bin/python"
    assert values["version"] == "3.11.2"
    # entry points of noarch: python packages, with the image's prefix in their shebang
    # (rattler names the interpreter by its version, as conda does: bin/python3.11)
    assert values["lab_shebang"] in (f"#!{ENV}/bin/python", f"#!{ENV}/bin/python3.11")
    assert values["singleuser"] == f"{ENV}/bin/jupyterhub-singleuser"
    assert values["numpy_file"] == f"{SP}/numpy/__init__.py"
    assert values["noarch"].startswith(f"{SP}/packaging/")
    # data files of wheels: the kernel spec, server extension config, lab extensions
    assert values["kernel"] == "python"
    assert "jupyterlab.json" in values["lab_ext"].split()
    assert values["labextensions"].strip()
    # compiled at build time, deterministically (flags 3: checked-hash)
    assert int(values["pyc"]) > 10
    assert values["pyc_flags"] == "3"
    assert values["placeholders"].strip() == "", values["placeholders"]
    assert values["ssl"].startswith("OpenSSL 3")
    assert float(values["compute"]) == 8.0


def test_smoke_ran_the_real_notebooks_and_hub_checks(pipeline):
    results = json.loads((EXAMPLE / "build" / "smoke" / "pangeo" / "results.json").read_text())
    checks = results["checks"] if isinstance(results, dict) and "checks" in results else results
    text = json.dumps(checks)
    assert "xarray-dask-zarr" in text and "kernel-check" in text
    assert '"fail"' not in text

from builder.lock import pip_requirements
from builder.lock.model import LockedDistribution, PypiPackage

WHEEL = PypiPackage(
    name="demo-pylib",
    version="1.0",
    platform="linux-64",
    url="https://pypi.example.invalid/files/demo_pylib-1.0-py3-none-any.whl",
    sha256="a" * 64,
)


def test_lines_sorted_with_hash_and_install_comment():
    other = PypiPackage("attrs", "25.1.0", "linux-64", "https://x.invalid/attrs.whl", "b" * 64)
    text = pip_requirements.requirements_txt(
        [WHEEL, other], header=["PyPI packages of demo"], file="pip-linux-64.txt"
    )
    lines = text.splitlines()
    assert lines[0] == "# PyPI packages of demo"
    assert lines[1] == "# Install: pip install --no-deps --require-hashes -r pip-linux-64.txt"
    assert lines[2].startswith("attrs @ https://x.invalid/attrs.whl --hash=sha256:bbbb")
    assert pip_requirements.parse_requirements(text) == {
        ("attrs", "https://x.invalid/attrs.whl", "b" * 64),
        ("demo-pylib", WHEEL.url, "a" * 64),
    }


def test_url_override_for_a_build_context():
    text = pip_requirements.requirements_txt([WHEEL], url=lambda p: f"wheels/{p.file_name}")
    assert "demo-pylib @ wheels/demo_pylib-1.0-py3-none-any.whl --hash=" in text


def test_lock_hash_covers_wheels_and_keeps_conda_only_hashes():
    plain = LockedDistribution("d", ("linux-64",), (), {"linux-64": []}, "")
    with_pypi = LockedDistribution(
        "d", ("linux-64",), (), {"linux-64": []}, "", pypi={"linux-64": [WHEEL]}
    )
    moved = LockedDistribution(
        "d",
        ("linux-64",),
        (),
        {"linux-64": []},
        "",
        pypi={"linux-64": [PypiPackage(**{**WHEEL.__dict__, "sha256": "c" * 64})]},
    )
    assert (
        plain.lock_hash()
        == LockedDistribution("d", ("linux-64",), (), {"linux-64": []}, "", pypi={}).lock_hash()
    )
    assert len({plain.lock_hash(), with_pypi.lock_hash(), moved.lock_hash()}) == 3


def test_pip_takes_the_file_as_written(tmp_path):
    """pip itself reads the lines: hashes required and checked, dependencies not followed."""
    import hashlib
    import subprocess
    import sys

    from pypi_index import make_wheel

    wheel = make_wheel(tmp_path, "demo-pylib-extra", "0.1.0", ["not-on-any-index >=1"])
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    locked = PypiPackage("demo-pylib-extra", "0.1.0", "linux-64", wheel.as_uri(), digest)
    req = tmp_path / "pip-linux-64.txt"

    def download(package):
        req.write_text(pip_requirements.requirements_txt([package], file=req.name))
        argv = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--require-hashes"]
        argv += ["--no-index", "-d", str(tmp_path / "out"), "-r", str(req)]
        return subprocess.run(argv, capture_output=True, text=True)

    proc = download(locked)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / wheel.name).is_file()
    proc = download(PypiPackage(**{**locked.__dict__, "sha256": "0" * 64}))
    assert proc.returncode != 0 and "THESE PACKAGES DO NOT MATCH THE HASHES" in proc.stderr

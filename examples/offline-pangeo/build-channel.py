"""Build the offline-pangeo conda channel from upstream artifacts.

CPython from Debian's copy of its release tarball (rattler-build), every other
package from a PyPI wheel pinned in channel-src/wheels.lock (whl2conda), indexed
with rattler. The channel is cached under a key made from all inputs; the last
line of stdout is its path. See channel-src/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version as dist_version
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE / "channel-src"
sys.path.insert(0, str(SRC))

import condapkg  # noqa: E402  (channel-src/condapkg.py)

EPOCH = 1704067200  # the project's SOURCE_DATE_EPOCH
TARBALL = "python3.11_3.11.2.orig.tar.gz"
DEB_SRC = "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {} bookworm main"
BUILD_DEPS = [
    *("build-essential", "libssl-dev", "libffi-dev", "zlib1g-dev", "libbz2-dev", "liblzma-dev"),
    *("libsqlite3-dev", "libreadline-dev", "uuid-dev", "libncurses-dev", "libgdbm-dev"),
]
_GLIBC = range(36, 16, -1)  # manylinux_2_36 (bookworm) down to 2_17
PLATFORMS = {
    "linux-64": {
        "arch": "x86_64",
        "tags": [f"manylinux_2_{n}_x86_64" for n in _GLIBC]
        + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"],
        "python": True,
    },
    # wheels resolve for it; CPython for it is not built (see README)
    "linux-aarch64": {
        "arch": "aarch64",
        "tags": [f"manylinux_2_{n}_aarch64" for n in _GLIBC] + ["manylinux2014_aarch64"],
        "python": False,
    },
}
T0 = time.monotonic()


class Fail(Exception):
    """Bad input: reported as one line on stderr."""


def say(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run(cmd: list[str], log: Path | None = None, **kw) -> subprocess.CompletedProcess:
    if log is None:
        return subprocess.run(cmd, capture_output=True, text=True, **kw)
    with open(log, "w") as f:
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, text=True, **kw)


# ---- inputs ---------------------------------------------------------------


def read_lock(path: Path) -> dict[str, list[dict]]:
    """wheels.lock: `[platform]` sections of `name==version filename sha256:HEX`."""
    if not path.is_file():
        raise Fail(f"{path}: no such file")
    lock: dict[str, list[dict]] = {}
    section = None
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = lock.setdefault(line[1:-1], [])
            continue
        fields = line.split()
        if section is None or len(fields) != 3 or "==" not in fields[0]:
            raise Fail(f"{path}:{n}: expected `name==version filename sha256:HEX`")
        name, ver = fields[0].split("==", 1)
        section.append({"name": name, "version": ver, "file": fields[1], "sha256": fields[2][7:]})
    return lock


def load_yaml(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text()) or {}


def tool_versions() -> dict[str, str]:
    return {t: dist_version(t) for t in ("py-rattler-build", "whl2conda", "py-rattler")}


def cache_key(args, wheels: list[dict], tarball_sha: str) -> str:
    h = hashlib.sha256()
    files = sorted(
        p
        for p in args.src.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".md"  # docs: no input
    )
    for p in [*files, Path(__file__).resolve(), args.wheels, args.names]:
        h.update(f"{p.name}\0".encode() + p.read_bytes())
    extra = {"platform": args.platform, "wheels": wheels, "tarball": tarball_sha}
    extra |= {"python": not args.no_python, "tools": tool_versions()}
    h.update(json.dumps(extra, sort_keys=True).encode())
    return h.hexdigest()[:16]


# ---- downloads ------------------------------------------------------------


def fetch_tarball(cache: Path, pinned: str, mirror: str) -> Path:
    dest = cache / "downloads" / TARBALL
    if not dest.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
            t = Path(tmp)
            t.chmod(0o755)  # apt's _apt sandbox user writes there
            for d in ("lists/partial", "cache/archives/partial", "dl"):
                (t / d).mkdir(parents=True)
            (t / "sources.list").write_text(DEB_SRC.format(mirror) + "\n")
            opts = [f"-oDir::Etc::SourceList={t}/sources.list", "-oDir::Etc::SourceParts=/dev/null"]
            opts += [f"-oDir::State::Lists={t}/lists", f"-oDir::Cache={t}/cache"]
            for cmd in (["update"], ["source", "--download-only", "python3.11"]):
                r = run(["apt-get", *opts, *cmd], cwd=t / "dl")
                if r.returncode:
                    last = (r.stderr.strip() or r.stdout.strip()).splitlines()[-1:]
                    raise Fail(f"apt-get {cmd[0]} python3.11: {' '.join(last)}")
            got = t / "dl" / TARBALL
            if not got.is_file():
                raise Fail(f"apt-get source python3.11 gave no {TARBALL}")
            os.replace(got, dest)
        say(f"downloaded {TARBALL}")
    digest = sha256_file(dest)
    if digest != pinned:
        dest.unlink()
        raise Fail(
            f"{TARBALL}: sha256 {digest} does not match {pinned} pinned in python/recipe.yaml"
        )
    return dest


def pip_target(platform: str) -> list[str]:
    opts = ["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp"]
    opts += ["--abi", "cp311"]
    for tag in PLATFORMS[platform]["tags"]:
        opts += ["--platform", tag]
    return opts


def fetch_wheels(cache: Path, args, wheels: list[dict]) -> dict[str, Path]:
    store = cache / "downloads" / "wheels"
    store.mkdir(parents=True, exist_ok=True)
    where = f"{args.wheels.name} [{args.platform}]"
    todo = [w for w in wheels if not (store / w["file"]).is_file()]
    for batch in _rounds(todo):
        with tempfile.TemporaryDirectory(dir=store) as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp]
            cmd += pip_target(args.platform)
            if args.find_links:
                cmd += ["--no-index", "--find-links", str(args.find_links)]
            r = run(cmd + [f"{w['name']}=={w['version']}" for w in batch])
            if r.returncode:
                msg = [ln for ln in r.stderr.splitlines() if "ERROR" in ln][-1:] or ["pip failed"]
                raise Fail(f"{where}: wheel missing for {args.platform}: {msg[0]}")
            for w in batch:
                got = Path(tmp) / w["file"]
                if not got.is_file():
                    others = [p.name for p in Path(tmp).glob(f"*-{w['version']}-*.whl")]
                    raise Fail(
                        f"{where}: {w['file']} missing for {args.platform} (pip got {others})"
                    )
                check_sha(got, w, where)
                os.replace(got, store / w["file"])
    if todo:
        say(f"downloaded {len(todo)} wheels")
    for w in wheels:
        check_sha(store / w["file"], w, where)
    return {w["file"]: store / w["file"] for w in wheels}


def _rounds(todo: list[dict]) -> list[list[dict]]:
    """``todo`` split so that no pip call asks for two versions of one name (pip's resolver
    refuses ``numpy==A numpy==B`` even with --no-deps; previous.in keeps older releases)."""
    rounds: list[list[dict]] = []
    for w in todo:
        free = next((r for r in rounds if all(o["name"] != w["name"] for o in r)), None)
        if free is None:
            rounds.append(free := [])
        free.append(w)
    return rounds


def check_sha(path: Path, w: dict, where: str) -> None:
    digest = sha256_file(path)
    if digest != w["sha256"]:
        path.unlink()
        raise Fail(f"{where}: {w['file']}: sha256 {digest} does not match the pinned {w['sha256']}")


# ---- rattler-build --------------------------------------------------------


def rattler_build(
    recipe: Path, out: Path, logs: Path, platform: str, env: dict | None = None, label: str = ""
) -> list[Path]:
    """Build one recipe in a child process whose whole output goes to a log file."""
    logs.mkdir(parents=True, exist_ok=True)
    label = label or f"{recipe.parent.parent.name}/{recipe.parent.name}/{recipe.name}"
    log = logs / f"{label.replace('/', '_')}.log"
    empty = out / "empty-channel"
    empty.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, __file__, "--rattler-child", str(recipe), str(out / "build")]
    cmd += [empty.as_uri(), platform]
    r = run(cmd, log=log, env={**os.environ, **(env or {})})
    pkgs = sorted((out / "build").glob("*/*.conda"))
    if r.returncode or not pkgs:
        raise Fail(f"{label}: build failed, log: {log}")
    return pkgs


def rattler_child(recipe: str, out: str, channel: str, platform: str) -> None:
    """The child process of rattler_build(): its log events go to stdout, the log file."""
    import rattler_build as rb
    from rattler_build.progress import SimpleProgressCallback

    rb.Stage0Recipe.from_file(recipe).run_build(
        tool_config=rb.ToolConfiguration(),
        output_dir=out,
        channels=[channel],
        progress_callback=SimpleProgressCallback(),
        no_build_id=True,
        package_format="conda",
        no_include_recipe=True,
        render_config=rb.RenderConfig(rb.PlatformConfig(target_platform=platform)),
    )


def ensure_build_deps() -> None:
    r = run(["dpkg-query", "-W", "-f", "${Package} ${Status}\n", *BUILD_DEPS])
    ok = {ln.split()[0] for ln in r.stdout.splitlines() if ln.endswith(" installed")}
    missing = [p for p in BUILD_DEPS if p not in ok]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise Fail(f"CPython build needs these apt packages: {' '.join(missing)}")
    say(f"apt-get install {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    r = run(["apt-get", "install", "-y", "--no-install-recommends", *missing], env=env)
    if r.returncode:
        raise Fail(f"CPython build needs these apt packages: {' '.join(missing)} (apt-get failed)")


def build_python(cache: Path, recipe: Path, tarball: Path, logs: Path) -> Path:
    key = hashlib.sha256(recipe.read_bytes() + json.dumps(tool_versions()).encode()).hexdigest()
    done = cache / "built" / f"python-{key[:16]}"
    if not list(done.glob("*.conda")):
        ensure_build_deps()
        say("building CPython 3.11.2 with rattler-build (a few minutes)")
        # a fixed build root keeps build paths, and so the package, the same
        work = cache / "work" / "python"
        shutil.rmtree(work, ignore_errors=True)
        (work / "recipe").mkdir(parents=True)
        shutil.copy(recipe, work / "recipe" / "recipe.yaml")
        os.link(tarball, work / "recipe" / TARBALL)
        env = {"SOURCE_DATE_EPOCH": str(EPOCH), "CPU_COUNT": str(os.cpu_count() or 2)}
        label = f"{recipe.parent.parent.name}/python/recipe.yaml"
        (pkg,) = rattler_build(work / "recipe" / "recipe.yaml", work, logs, "linux-64", env, label)
        tmp = done.with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        condapkg.repack(pkg, tmp, EPOCH)
        os.replace(tmp, done)
        shutil.rmtree(work)
        say(f"built {next(done.glob('*.conda')).name}")
    return next(done.glob("*.conda"))


def metapackage_recipes(stage: Path, names: dict, versions: dict[str, str]) -> list[Path]:
    import yaml

    out = []
    for name, spec in (names.get("metapackages") or {}).items():
        ver = versions.get(condapkg.normalise(spec["version_of"]))
        if ver is None:
            continue  # its wheel is not in this lock
        recipe = {
            "package": {"name": name, "version": ver},
            "build": {"number": 0, "noarch": "generic"},
            "requirements": {"run": [d.format(version=ver) for d in spec["depends"]]},
        }
        path = stage / name / "recipe.yaml"
        path.parent.mkdir(parents=True)
        path.write_text(yaml.safe_dump(recipe, sort_keys=False))
        out.append(path)
    return out


# ---- whl2conda ------------------------------------------------------------


def convert(wheel: Path, w: dict, args, fixes: condapkg.Fixes, cache: Path) -> Path:
    entry = fixes.entry_key(wheel, w["name"])
    key = hashlib.sha256(
        json.dumps([w["sha256"], entry, args.platform, tool_versions(), condapkg.VERSION]).encode()
    ).hexdigest()[:24]
    done = cache / "converted" / key
    if list(done.glob("*.conda")):
        return next(done.glob("*.conda"))
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        # a tree, not a .conda: whl2conda's compression is most of its time, and
        # repack() compresses anyway
        cmd = ["whl2conda", "convert", str(wheel), "--allow-impure", "--format", "tree"]
        cmd += ["--out-dir", tmp, "--batch", "--yes", "--ignore-pyproject"]
        r = run([*cmd, "--no-update-stdrenames", "--quiet"], cwd=tmp)
        pkgs = [p for p in Path(tmp).iterdir() if (p / "info" / "index.json").is_file()]
        if r.returncode or len(pkgs) != 1:
            why = (r.stderr.strip() or r.stdout.strip() or "no package written").splitlines()[-1]
            raise Fail(
                f"{args.wheels.name} [{args.platform}]: {wheel.name}: whl2conda failed: {why}"
            )
        staged = Path(tmp) / "out"
        staged.mkdir()
        condapkg.repack(
            pkgs[0], staged, EPOCH, fix=fixes.for_wheel(wheel, PLATFORMS[args.platform])
        )
        done.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(done, ignore_errors=True)
        os.replace(staged, done)
    return next(done.glob("*.conda"))


# ---- main -----------------------------------------------------------------


def build(args) -> Path:
    import fcntl

    cache = args.cache / "offline-channel"
    cache.mkdir(parents=True, exist_ok=True)
    # one build at a time per cache: CPython's build folder is fixed (see build_python)
    lock_file = open(cache / ".lock", "w")  # noqa: SIM115  (held until exit)
    fcntl.flock(lock_file, fcntl.LOCK_EX)
    lock = read_lock(args.wheels)
    wheels = lock.get(args.platform)
    if not wheels:
        raise Fail(f"{args.wheels}: no wheels for platform {args.platform}")
    with_python = not args.no_python
    if with_python and not PLATFORMS[args.platform]["python"]:
        raise Fail(f"CPython for {args.platform} is not built here (use --no-python)")
    recipe = load_yaml(args.src / "python" / "recipe.yaml")
    pinned = recipe["source"]["sha256"]
    key = cache_key(args, wheels, pinned)
    channel = cache / key / "channel"
    if channel.is_dir():
        say(f"channel {key} is cached")
        return channel
    say(f"building channel {key} for {args.platform}: {len(wheels)} wheels")
    logs = cache / "logs" / key
    files = fetch_wheels(cache, args, wheels)
    pkgs: list[Path] = []
    if with_python:
        tarball = fetch_tarball(cache, pinned, args.mirror)
        pkgs.append(build_python(cache, args.src / "python" / "recipe.yaml", tarball, logs))
    fixes = condapkg.Fixes(load_yaml(args.names))
    t = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        jobs = [pool.submit(convert, files[w["file"]], w, args, fixes, cache) for w in wheels]
        try:
            pkgs += [j.result() for j in jobs]
        except BaseException:
            pool.shutdown(cancel_futures=True)  # stop at the first failure
            raise
    say(f"converted {len(wheels)} wheels with whl2conda in {time.monotonic() - t:.1f}s")
    (cache / key).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache / key) as tmp:
        stage = Path(tmp)
        versions = {condapkg.normalise(w["name"]): w["version"] for w in wheels}
        recipes = [args.src / "python_abi" / "recipe.yaml"]
        env = {"SOURCE_DATE_EPOCH": str(EPOCH)}
        if "jupyterhub" in versions:
            recipes.append(args.src / "jupyterhub-singleuser" / "recipe.yaml")
            env["JUPYTERHUB_VERSION"] = versions["jupyterhub"]
        recipes += metapackage_recipes(stage / "meta", load_yaml(args.names), versions)
        for r in recipes:
            for pkg in rattler_build(r, stage / "rb" / r.parent.name, logs, args.platform, env):
                pkgs.append(condapkg.repack(pkg, stage / "rb-out", EPOCH))
        say(f"built {len(recipes)} small recipes with rattler-build")
        indexes = {pkg: condapkg.index_json(pkg) for pkg in pkgs}
        elsewhere = ["python"] if args.no_python else []
        for name, dep in condapkg.unresolvable(list(indexes.values()), elsewhere):
            raise Fail(f"{args.names.name}: {name} depends on `{dep}`, not in the channel")
        new = stage / "channel"
        for pkg, index in indexes.items():
            subdir = index.get("subdir") or "noarch"
            (new / subdir).mkdir(parents=True, exist_ok=True)
            shutil.copy2(pkg, new / subdir / pkg.name)
        for subdir in ("noarch", args.platform):
            (new / subdir).mkdir(parents=True, exist_ok=True)
        condapkg.index(new)
        os.replace(new, channel)
    shutil.rmtree(logs, ignore_errors=True)
    say(f"channel built: {len(pkgs)} packages")
    return channel


def relink(link: Path, channel: Path) -> None:
    tmp = link.with_name(f".{link.name}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(channel)
    os.replace(tmp, link)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--rattler-child"]:
        rattler_child(*argv[1:])
        return 0
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--platform", default="linux-64", choices=sorted(PLATFORMS))
    p.add_argument("--cache", type=Path, default=cache_home / "scistacks", help="cache root")
    p.add_argument("--src", type=Path, default=SRC, help="recipes and pins (channel-src/)")
    p.add_argument("--wheels", type=Path, help="pinned wheels (default: SRC/wheels.lock)")
    p.add_argument("--names", type=Path, help="conda name fixes (default: SRC/conda-names.yml)")
    p.add_argument("--find-links", type=Path, help="take wheels from this folder, not PyPI")
    p.add_argument("--link", type=Path, default=HERE / "channel", help="symlink to the channel")
    p.add_argument("--no-python", action="store_true", help="leave CPython out (tests)")
    p.add_argument("--jobs", type=int, default=2, help="parallel whl2conda conversions")
    p.add_argument("--mirror", default="http://deb.debian.org/debian")
    p.add_argument("--relock", action="store_true", help="regenerate wheels.lock from PyPI")
    args = p.parse_args(argv)
    args.src = args.src.resolve()
    args.wheels = (args.wheels or args.src / "wheels.lock").resolve()
    args.names = (args.names or args.src / "conda-names.yml").resolve()
    try:
        if args.relock:
            import relock  # channel-src/relock.py

            relock.relock(args.src / "requirements.in", args.wheels, PLATFORMS, pip_target, say)
            return 0
        channel = build(args)
        relink(args.link, channel)
    except Fail as e:
        print(f"build-channel: {e}", file=sys.stderr)
        return 1
    say(f"done in {time.monotonic() - T0:.1f}s")
    print(channel)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Regenerate the demo distribution's bundled conda channel.

    python scripts/build-demo-channel.py            # rewrite distributions/demo/channel/
    python scripts/build-demo-channel.py --check    # fail if the committed channel is stale
    python scripts/build-demo-channel.py --out DIR  # write elsewhere
    python scripts/build-demo-channel.py --compile  # also recompile demo-stats

Reads distributions/demo/channel-src/packages.yml (see the comment at its top) and the
files it names. The output is byte-identical for the same inputs: run it twice, get the
same channel.

demo-stats (package demo-tool) is a static C program. Its binaries are committed under
channel-src/demo-tool/prebuilt/ with a BUILDINFO.json recording the source hash, so
regenerating the channel needs no compiler. When demo-stats.c changes (or with
--compile), they are rebuilt with Debian's ``gcc`` and ``aarch64-linux-gnu-gcc``
(``apt-get install gcc gcc-aarch64-linux-gnu``).
"""

from __future__ import annotations

import argparse
import datetime
import filecmp
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from devtools.conda_channel import build_package, index_channel  # noqa: E402

SRC = ROOT / "distributions" / "demo" / "channel-src"
OUT = ROOT / "distributions" / "demo" / "channel"
SUBDIRS = ("noarch", "linux-64", "linux-aarch64")

# subdir -> (C compiler, ELF e_machine)
COMPILERS = {"linux-64": ("gcc", 0x3E), "linux-aarch64": ("aarch64-linux-gnu-gcc", 0xB7)}
CFLAGS = [
    "-std=c11", "-Os", "-Wall", "-Wextra", "-Werror",
    "-static", "-nostdlib", "-ffreestanding", "-fno-builtin", "-fno-stack-protector",
    "-fno-pie", "-no-pie", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables", "-fno-ident",
    "-s", "-Wl,--build-id=none", "-Wl,-z,noexecstack", "-Wl,-z,norelro",
]  # fmt: skip
MAX_SHARE = 0.15  # of an environment's bytes, per package


class Error(Exception):
    pass


# ---- file generators -------------------------------------------------------------------


def random_bytes(size: int, seed: str) -> bytes:
    """Incompressible, deterministic bytes (stand-ins for fonts, tiles, model weights)."""
    return hashlib.shake_256(seed.encode()).digest(size)


_FIRST = ["Alder", "Birch", "Cedar", "Dune", "Elm", "Fjord", "Glen", "Heath", "Isle", "Juniper",
          "Kestrel", "Larch", "Moor", "North", "Oak", "Pine", "Quarry", "Rowan", "Sound", "Tor"]  # fmt: skip
_SECOND = ["Ridge", "Point", "Valley", "Harbour", "Field", "Summit", "Crossing", "Lake", "Bay",
           "Station", "Pass", "Flats", "Hill"]  # fmt: skip


def stations_csv(stations: int, days: int, seed: int) -> bytes:
    """A synthetic daily weather dataset, one row per station and day.

    Integer arithmetic on ``getrandbits`` only (stable across Python versions and
    machines). Each station has its own generator, so adding stations appends rows and
    keeps every earlier row.
    """
    start = datetime.date(2023, 1, 1)
    lines = ["station_id,name,latitude,longitude,elevation_m,date,temperature_c,precipitation_mm"]
    for i in range(stations):
        rng = random.Random(seed * 10_000 + i)
        bits = rng.getrandbits
        name = f"{_FIRST[bits(16) % len(_FIRST)]} {_SECOND[bits(16) % len(_SECOND)]}"
        lat = 350_000 + bits(20) % 300_000  # 35.0000 .. 64.9999, in 1e-4 degrees
        lon = -1_200_000 + bits(22) % 1_500_000  # -120.0000 .. 29.9999
        elevation = bits(12) % 2400
        # mean temperature in tenths of a degree: colder up north and up high
        mean = 260 - (lat - 350_000) // 1_000 - elevation // 15
        amplitude = 60 + bits(7)  # seasonal swing, tenths
        wet = 2 + bits(2)  # 1 day in `wet` has rain
        for d in range(days):
            day = start + datetime.timedelta(days=d)
            doy = day.timetuple().tm_yday
            dist = min(abs(doy - 200), 365 - abs(doy - 200))  # days from mid-July
            seasonal = amplitude * (182 - 2 * dist) // 182
            noise = (bits(6) + bits(6) + bits(6) + bits(6) - 126) // 2
            temp = mean + seasonal + noise
            rain = bits(8) * bits(4) // 12 if bits(8) % wet == 0 else 0
            t = "NA" if bits(8) == 0 else _tenths(temp)
            p = "NA" if bits(9) == 0 else _tenths(rain)
            lines.append(
                f"ST{i + 1:03d},{name},{_fixed(lat, 4)},{_fixed(lon, 4)},{elevation},"
                f"{day.isoformat()},{t},{p}"
            )
    return ("\n".join(lines) + "\n").encode()


def _tenths(v: int) -> str:
    return _fixed(v, 1)


def _fixed(v: int, decimals: int) -> str:
    scale = 10**decimals
    sign = "-" if v < 0 else ""
    return f"{sign}{abs(v) // scale}.{abs(v) % scale:0{decimals}d}"


def _elf_machine(data: bytes) -> int:
    if data[:4] != b"\x7fELF":
        raise Error("not an ELF file")
    return int.from_bytes(data[18:20], "little")


def _compiler_version(cc: str) -> str:
    out = subprocess.run([cc, "--version"], capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0]


def compiled(source: str, target_name: str, subdir: str, force: bool) -> bytes:
    """The binary of ``source`` for ``subdir``: the committed one, or freshly compiled."""
    src = SRC / source
    prebuilt = src.parent / "prebuilt"
    binary = prebuilt / subdir / target_name
    info_file = prebuilt / "BUILDINFO.json"
    info = json.loads(info_file.read_text()) if info_file.is_file() else {}
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    entry = info.get(f"{subdir}/{target_name}", {})
    fresh = entry.get("source_sha256") == digest and entry.get("cflags") == CFLAGS
    if fresh and binary.is_file() and not force:
        if hashlib.sha256(binary.read_bytes()).hexdigest() != entry.get("sha256"):
            raise Error(f"{binary} does not match {info_file}")
        return binary.read_bytes()

    cc, machine = COMPILERS[subdir]
    if shutil.which(cc) is None:
        raise Error(
            f"{source} changed since {binary.relative_to(ROOT)} was built and {cc} is not "
            "installed (apt-get install gcc gcc-aarch64-linux-gnu)"
        )
    binary.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / target_name
        # compile from inside the source folder with a relative path: nothing of this
        # machine's paths can end up in the binary
        subprocess.run([cc, *CFLAGS, "-o", str(out), src.name], cwd=src.parent, check=True)
        data = out.read_bytes()
    if _elf_machine(data) != machine:
        raise Error(
            f"{cc} built a binary for ELF machine {_elf_machine(data):#x}, not {machine:#x}"
        )
    binary.write_bytes(data)
    binary.chmod(0o755)
    info[f"{subdir}/{target_name}"] = {
        "source": source,
        "source_sha256": digest,
        "sha256": hashlib.sha256(data).hexdigest(),
        "compiler": _compiler_version(cc),
        "cflags": CFLAGS,
    }
    info_file.write_text(json.dumps(dict(sorted(info.items())), indent=2) + "\n")
    print(f"compiled {binary.relative_to(ROOT)} ({len(data)} bytes, {_compiler_version(cc)})")
    return data


def make_file(spec: dict, *, name: str, version: str, path: str, subdir: str, force_compile: bool):
    if not isinstance(spec, dict) or len(spec) != 1:
        raise Error(f"{name} {version}: {path}: expected one of src/random/stations/compile")
    kind, arg = next(iter(spec.items()))
    if kind == "src":
        return (SRC / arg).read_bytes()
    if kind == "random":
        return random_bytes(int(arg), f"{name}/{version}/{path}")
    if kind == "stations":
        return stations_csv(**arg)
    if kind == "compile":
        if subdir not in COMPILERS:
            raise Error(f"{name}: compile: needs an arch subdir, not {subdir}")
        return (compiled(arg, Path(path).name, subdir, force_compile), 0o755)
    raise Error(f"{name} {version}: {path}: unknown file kind {kind!r}")


# ---- channel ---------------------------------------------------------------------------


def build_string(name: str, version: str, subdir: str, depends: list[str], number: int) -> str:
    blob = json.dumps([name, version, subdir, depends], separators=(",", ":"))
    return f"h{hashlib.sha256(blob.encode()).hexdigest()[:7]}_{number}"


def build_channel(out: Path, *, force_compile: bool = False) -> list[dict]:
    """Build every package of packages.yml into ``out`` (an empty folder) and index it."""
    config = yaml.safe_load((SRC / "packages.yml").read_text())
    built = []
    for name, pkg in config["packages"].items():
        for version, over in (pkg.get("versions") or {}).items():
            over = over or {}
            depends = list(over.get("depends", pkg.get("depends", [])))
            files_spec = {**(pkg.get("files") or {}), **(over.get("files") or {})}
            number = int(over.get("build_number", 0))
            for subdir in pkg.get("subdirs", ["noarch"]):
                files = {
                    path: make_file(
                        spec,
                        name=name,
                        version=str(version),
                        path=path,
                        subdir=subdir,
                        force_compile=force_compile,
                    )
                    for path, spec in files_spec.items()
                }
                path = build_package(
                    out,
                    name,
                    str(version),
                    build_string(name, str(version), subdir, depends, number),
                    subdir,
                    files,
                    depends=depends,
                    license=pkg.get("license"),
                    build_number=number,
                    summary=pkg.get("summary"),
                    description=pkg.get("description"),
                )
                installed = sum(len(v[0] if isinstance(v, tuple) else v) for v in files.values())
                built.append(
                    {
                        "name": name,
                        "version": str(version),
                        "subdir": subdir,
                        "file": path.relative_to(out).as_posix(),
                        "archive": path.stat().st_size,
                        "installed": installed,
                    }
                )
    index_channel(out, SUBDIRS)
    return built


def _files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def differences(a: Path, b: Path) -> list[str]:
    fa, fb = _files(a), _files(b)
    out = [f"only in {a}: {k}" for k in sorted(fa.keys() - fb.keys())]
    out += [f"only in {b}: {k}" for k in sorted(fb.keys() - fa.keys())]
    out += [
        f"differs: {k}"
        for k in sorted(fa.keys() & fb.keys())
        if not filecmp.cmp(fa[k], fb[k], shallow=False)
    ]
    return out


def report(built: list[dict], out: Path) -> None:
    print(f"{'package':<44} {'archive':>9} {'installed':>10}")
    for b in built:
        print(f"{b['file']:<44} {b['archive']:>9,} {b['installed']:>10,}")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"channel total: {total:,} bytes in {out}")
    # share of the newest environment, per arch
    for subdir in ("linux-64", "linux-aarch64"):
        newest: dict[str, dict] = {}
        for b in built:
            if b["subdir"] in ("noarch", subdir):
                newest[b["name"]] = b  # versions are listed oldest first
        env = sum(b["installed"] for b in newest.values())
        top = max(newest.values(), key=lambda b: b["installed"])
        share = top["installed"] / env
        flag = "" if share <= MAX_SHARE + 0.01 else "  WARNING: above the ~15% target"
        print(
            f"{subdir}: newest environment {env:,} bytes; largest {top['name']} {share:.1%}{flag}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=OUT, help=f"channel folder (default: {OUT.relative_to(ROOT)})"
    )
    parser.add_argument(
        "--check", action="store_true", help="compare with --out instead of writing it"
    )
    parser.add_argument(
        "--compile", action="store_true", help="recompile demo-stats even if unchanged"
    )
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)

    try:
        with tempfile.TemporaryDirectory(prefix=".demo-channel.", dir=out.parent) as tmp:
            new = Path(tmp) / "channel"
            built = build_channel(new, force_compile=args.compile)
            if args.check:
                diff = differences(out, new) if out.is_dir() else [f"{out} does not exist"]
                if diff:
                    print(
                        "the demo channel is stale; run scripts/build-demo-channel.py",
                        file=sys.stderr,
                    )
                    print("\n".join(diff), file=sys.stderr)
                    return 1
                if not args.quiet:
                    print(f"{out} is up to date")
                return 0
            if out.exists():
                shutil.rmtree(out)
            os.replace(new, out)
    except (Error, subprocess.CalledProcessError, OSError, KeyError, TypeError, ValueError) as exc:
        print(f"build-demo-channel: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        report(built, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

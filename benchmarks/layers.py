"""How much of an environment a one-package bump re-ships, and whether a rebuild of the
same lock gives the same image. Runs offline, on the demo and on the offline-pangeo example:

    python benchmarks/layers.py [--platform linux/amd64] [--only demo|offline-pangeo]

1. builds the demo (native engine) from a temporary copy of the project;
2. bumps one package (demo-data 1.0 -> 1.1) in the copy's spec, relocks, builds again, and
   prints the fraction of environment bytes that sit in layers the first image did not
   have (the issue's goal: <= 0.15);
3. rebuilds the bumped lock from a second copy at another path and prints whether the
   environment layer digests and the image ID match.

offline-pangeo (a real conda environment of about 150 packages, built by
``nox -s offline-pangeo`` first, which builds its channel): locks pangeo with xarray and
numpy pinned to the older releases its channel keeps (``channel-src/previous.in``), builds,
then moves xarray (a leaf; goal <= 0.05) and then numpy (what half the stack depends on;
goal <= 0.20) to the newest, and prints the fraction of environment bytes in new layers.

Layers and their sizes are read from ``docker save`` (the image's own config and layer
files), not from scistacks' records. Needs docker with buildx and the base image
``scistacks/debian:bookworm-{arch}`` (``scripts/setup-host.sh``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL = 0.15
ENV_LAYER = "scistacks env:"  # history comment of the native engine's environment layers


def scistacks(root: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("SCISTACKS_ROOT",)}
    proc = subprocess.run(
        [sys.executable, "-m", "builder", "--root", str(root), *args],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        sys.exit(f"scistacks {' '.join(args)} failed:\n{proc.stderr}")


def demo_copy(dest: Path) -> Path:
    shutil.copytree(
        REPO / "distributions" / "demo",
        dest / "distributions" / "demo",
        ignore=shutil.ignore_patterns(".tmp"),
    )
    mapping = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["scistacks"][
        "channel-map"
    ]
    (dest / "pyproject.toml").write_text(
        "[tool.scistacks.channel-map]\n" + "".join(f'{k} = "{v}"\n' for k, v in mapping.items())
    )
    if (REPO / "lockfiles" / "demo").is_dir():
        shutil.copytree(REPO / "lockfiles" / "demo", dest / "lockfiles" / "demo")
    else:
        scistacks(dest, "lock", "demo")
    return dest


def env_layers(ref: str) -> tuple[str, list[tuple[str, int]]]:
    """(image ID, [(diff_id, bytes)] of the environment layers), from ``docker save``."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "image.tar"
        with open(archive, "wb") as fh:
            subprocess.run(["docker", "save", ref], stdout=fh, check=True)
        with tarfile.open(archive) as tar:
            manifest = json.load(tar.extractfile("manifest.json"))[0]
            config_bytes = tar.extractfile(manifest["Config"]).read()
            sizes = [tar.getmember(path).size for path in manifest["Layers"]]
    config = json.loads(config_bytes)
    history = [h for h in config["history"] if not h.get("empty_layer")]
    diff_ids = config["rootfs"]["diff_ids"]
    assert len(history) == len(diff_ids) == len(sizes)
    image_id = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", ref],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    layers = [
        (d, s)
        for h, d, s in zip(history, diff_ids, sizes, strict=True)
        if h.get("created_by", "").startswith(ENV_LAYER)
    ]
    return image_id, layers


def build(root: Path, platform: str, tag: str) -> float:
    started = time.monotonic()
    scistacks(root, "build", "demo", "--platform", platform, "--tag", tag, "--rebuild")
    return time.monotonic() - started


EXAMPLE = REPO / "examples" / "offline-pangeo"
PANGEO_GOALS = {"xarray": 0.05, "numpy": 0.20}
PREVIOUS = {"xarray": "2026.7.0", "numpy": "2.4.5"}  # channel-src/previous.in


def changed_fraction(before: list[tuple[str, int]], after: list[tuple[str, int]]) -> float:
    old = {digest for digest, _ in before}
    return sum(s for d, s in after if d not in old) / sum(s for _, s in after)


def offline_pangeo(platform: str) -> int:
    channel = EXAMPLE / "channel"
    if not channel.is_dir():
        print("offline-pangeo: skipped (no channel: run `nox -s offline-pangeo` first)")
        return 0
    arch = platform.split("/")[-1]
    work = Path(tempfile.mkdtemp(prefix="scistacks-layers-pangeo-"))
    tags = [f"scistacks-bench/pangeo:{s}-{arch}" for s in ("pinned", "xarray", "numpy")]
    ok = True
    try:
        root = work / "offline-pangeo"
        # notebooks are symlinks into the repository: copy what they point to
        shutil.copytree(EXAMPLE / "distributions", root / "distributions", symlinks=False)
        shutil.copy(EXAMPLE / "pyproject.toml", root / "pyproject.toml")
        os.symlink(channel.resolve(), root / "channel")
        spec = root / "distributions" / "pangeo" / "distribution.yml"
        original = spec.read_text()
        pinned = original.replace("  - xarray\n", f"  - xarray =={PREVIOUS['xarray']}\n", 1)
        pinned = pinned.replace("  - numpy >=2\n", f"  - numpy =={PREVIOUS['numpy']}\n", 1)
        if pinned.count(PREVIOUS["xarray"]) != 1 or pinned.count(PREVIOUS["numpy"]) != 1:
            sys.exit("benchmark expects `- xarray` and `- numpy >=2` in the pangeo spec")
        images = []
        for tag, text in zip(
            tags,
            [pinned, pinned.replace(f" =={PREVIOUS['xarray']}\n", "\n", 1), original],
            strict=True,
        ):
            spec.write_text(text)
            scistacks(root, "lock", "pangeo")
            started = time.monotonic()
            scistacks(root, "build", "pangeo", "--platform", platform, "--tag", tag)
            images.append(env_layers(tag))
            print(
                f"offline-pangeo build ({tag.split(':')[1]}): {time.monotonic() - started:6.1f} s"
            )
        total = sum(s for _, s in images[0][1])
        print(f"offline-pangeo environment:  {len(images[0][1])} layers, {total / 1e6:.0f} MB")
        for (name, goal), before, after in zip(
            PANGEO_GOALS.items(), images[:-1], images[1:], strict=True
        ):
            fraction = changed_fraction(before[1], after[1])
            ok &= fraction <= goal
            print(
                f"bump {name:<7} re-pushes:   {fraction:.3f} of the environment "
                f"(goal <= {goal}: {'met' if fraction <= goal else 'NOT met'})"
            )
    finally:
        for tag in tags:
            subprocess.run(["docker", "image", "rm", "--no-prune", tag], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", default="linux/amd64")
    parser.add_argument("--only", choices=["demo", "offline-pangeo"])
    args = parser.parse_args()
    demo_code = demo(args.platform) if args.only in (None, "demo") else 0
    pangeo_code = offline_pangeo(args.platform) if args.only in (None, "offline-pangeo") else 0
    return demo_code or pangeo_code


def demo(platform: str) -> int:
    args = argparse.Namespace(platform=platform)
    arch = args.platform.split("/")[-1]
    tags = [f"scistacks-bench/demo:{step}-{arch}" for step in ("before", "after", "again")]
    work = Path(tempfile.mkdtemp(prefix="scistacks-layers-"))
    try:
        one = demo_copy(work / "one")
        seconds = build(one, args.platform, tags[0])
        print(f"build (lock as committed):   {seconds:6.1f} s")
        _, before = env_layers(tags[0])

        spec = one / "distributions" / "demo" / "distribution.yml"
        text = spec.read_text()
        if "demo-data 1.0.*" not in text:
            sys.exit("benchmark expects `demo-data 1.0.*` in the demo spec")
        spec.write_text(text.replace("demo-data 1.0.*", "demo-data 1.1.*"))
        scistacks(one, "lock", "demo")
        seconds = build(one, args.platform, tags[1])
        print(f"build (demo-data bumped):    {seconds:6.1f} s")
        after_id, after = env_layers(tags[1])

        old = {digest for digest, _ in before}
        total = sum(size for _, size in after)
        changed = [(d, s) for d, s in after if d not in old]
        fraction = sum(s for _, s in changed) / total
        print(f"environment layers:          {len(after)} ({total} bytes)")
        print(
            f"changed by the bump:         {len(changed)} layer(s), {sum(s for _, s in changed)} bytes"
        )
        print(
            f"changed fraction:            {fraction:.3f}  (goal <= {GOAL}: {'met' if fraction <= GOAL else 'NOT met'})"
        )

        two = work / "elsewhere" / "two"
        two.mkdir(parents=True)
        shutil.copytree(one / "distributions", two / "distributions")
        shutil.copytree(one / "lockfiles", two / "lockfiles")
        shutil.copy(one / "pyproject.toml", two / "pyproject.toml")
        seconds = build(two, args.platform, tags[2])
        again_id, again = env_layers(tags[2])
        print(f"rebuild, same lock elsewhere: {seconds:6.1f} s")
        print(f"same environment layer digests: {[d for d, _ in again] == [d for d, _ in after]}")
        print(f"same image ID:                  {again_id == after_id}  ({after_id[:19]})")
        return 0 if fraction <= GOAL else 1
    finally:
        for tag in tags:
            subprocess.run(["docker", "image", "rm", "--no-prune", tag], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

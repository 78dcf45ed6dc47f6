"""How much of the demo's environment a one-package bump re-ships, and whether a rebuild of
the same lock gives the same image. Runs offline against the bundled demo channel:

    python benchmarks/layers.py [--platform linux/amd64]

1. builds the demo (native engine) from a temporary copy of the project;
2. bumps one package (demo-data 1.0 -> 1.1) in the copy's spec, relocks, builds again, and
   prints the fraction of environment bytes that sit in layers the first image did not
   have (the issue's goal: <= 0.15);
3. rebuilds the bumped lock from a second copy at another path and prints whether the
   environment layer digests and the image ID match.

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", default="linux/amd64")
    args = parser.parse_args()
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

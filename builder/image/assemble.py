"""Put layers we wrote ourselves on top of a local image, through ``docker save`` / ``docker load``.

``docker build`` cannot add a layer whose bytes we chose: it re-creates every layer from a
filesystem diff, with its own timestamps. Going through the image archive instead keeps
each environment layer byte for byte as ``builder.image.layers`` wrote it, so its digest
only depends on the lock. Layers ``docker build`` made on top of the base image (apt, the
user, postBuild) are normalised on the way (``builder.image.normalise``). The new image
config is written here too, without wall-clock times; docker's image ID is the sha256 of
that config.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from builder import docker
from builder.errors import BuildError
from builder.image import normalise as normalise_
from builder.image.layers import LayerFile

# Archive members that describe the saved image; we write our own manifest instead.
_INDEX_FILES = {"manifest.json", "repositories", "index.json", "oci-layout"}
_SMALL = 4 << 20
MAX_LAYERS = 125  # overlay2 stacks at most 128 lower directories


@dataclass(frozen=True)
class NewLayer:
    layer: LayerFile
    created_by: str  # shown by `docker history`


def _epoch_iso(epoch: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_config(
    base: dict,
    layers: list[NewLayer],
    config: dict,
    epoch: int,
    replaced: dict[str, str] | None = None,
) -> bytes:
    """The new image's config: the base's (its normalised layers' ``replaced`` diff_ids),
    plus our layers, runtime ``config`` and a fixed creation time everywhere. Serialised
    canonically, so the same inputs give the same image ID."""
    created = _epoch_iso(epoch)
    replaced = replaced or {}
    out = {
        "architecture": base["architecture"],
        "os": base["os"],
        "config": config,
        "created": created,
        "history": [
            *({**h, "created": created} for h in base.get("history", [])),
            *(
                {"created": created, "created_by": n.created_by, "comment": "scistacks"}
                for n in layers
            ),
        ],
        "rootfs": {
            "type": "layers",
            "diff_ids": [
                *(replaced.get(d, d) for d in base["rootfs"]["diff_ids"]),
                *(n.layer.diff_id for n in layers),
            ],
        },
    }
    if base.get("variant"):
        out["variant"] = base["variant"]
    return json.dumps(out, sort_keys=True, separators=(",", ":")).encode()


def append_layers(
    image: str,
    layers: list[NewLayer],
    make_config,
    epoch: int,
    normalise: frozenset[str] = frozenset(),
) -> str:
    """Load ``image`` + ``layers`` into docker as a new, untagged image; return its ID.

    ``make_config(base_config) -> dict`` gives the runtime config (Env, User, Labels...);
    the layers of ``image`` whose diff_id is in ``normalise`` are rewritten reproducibly."""
    config_bytes, output = docker.save_load(
        image,
        lambda saved, to_load: _rewrite(saved, to_load, layers, make_config, epoch, normalise),
        error=BuildError,
    )
    # docker's classic store names an image by its config digest; ask docker when it says
    loaded = re.search(r"Loaded image ID: (sha256:[0-9a-f]{64})", output)
    return loaded.group(1) if loaded else "sha256:" + hashlib.sha256(config_bytes).hexdigest()


def _rewrite(
    src_stream, dst_stream, layers: list[NewLayer], make_config, epoch: int, normalise
) -> bytes:
    small: dict[str, bytes] = {}
    renamed: dict[str, str] = {}  # archive member -> the normalised layer's member
    replaced: dict[str, str] = {}  # diff_id -> the normalised layer's diff_id
    with (
        tempfile.TemporaryDirectory(prefix="scistacks-layers-") as spool_dir,
        tarfile.open(fileobj=src_stream, mode="r|") as src,
        tarfile.open(fileobj=dst_stream, mode="w|", format=tarfile.PAX_FORMAT) as dst,
    ):
        for member in src:
            to_check = bool(normalise) and _maybe_layer(member.name)
            if member.isfile() and member.size <= _SMALL and not to_check:
                data = src.extractfile(member).read()
                small[member.name] = data
                if member.name not in _INDEX_FILES:
                    dst.addfile(member, io.BytesIO(data))
            elif member.isfile() and to_check:
                spooled = Path(spool_dir) / "spool"
                with open(spooled, "wb") as fh:
                    diff_id = normalise_.spool(src.extractfile(member), fh)
                if member.size <= _SMALL:  # an OCI archive's config or manifest blob
                    small[member.name] = spooled.read_bytes()
                if diff_id not in normalise:
                    with open(spooled, "rb") as fh:
                        dst.addfile(member, fh)
                    continue
                with open(spooled, "rb") as fh:
                    new = normalise_.normalise_layer(
                        fh, Path(spool_dir) / f"{len(renamed)}.tar", epoch
                    )
                name = f"scistacks/{new.diff_id.split(':', 1)[1]}.tar"
                dst.add(str(new.path), arcname=name, recursive=False)
                Path(new.path).unlink()
                renamed[member.name] = name
                replaced[diff_id] = new.diff_id
            elif member.isfile():
                dst.addfile(member, src.extractfile(member))
            elif member.name not in _INDEX_FILES:
                dst.addfile(member)
        manifest = json.loads(small["manifest.json"])[0]
        base = json.loads(small[manifest["Config"]])
        if len(replaced) != len(normalise):
            raise BuildError(f"docker save did not hold the {len(normalise)} layer(s) to normalise")
        total = len(base["rootfs"]["diff_ids"]) + len(layers)
        if total > MAX_LAYERS:
            raise BuildError(
                f"the image would have {total} layers (docker allows about {MAX_LAYERS})"
            )
        names = []
        for new_layer in layers:
            name = f"scistacks/{new_layer.layer.diff_id.split(':', 1)[1]}.tar"
            if name not in names:
                dst.add(str(new_layer.layer.path), arcname=name, recursive=False)
            names.append(name)
        config_bytes = image_config(base, layers, make_config(base), epoch, replaced)
        config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
        _add_bytes(dst, config_name, config_bytes)
        kept = [renamed.get(n, n) for n in manifest["Layers"]]
        new_manifest = [{"Config": config_name, "RepoTags": None, "Layers": [*kept, *names]}]
        _add_bytes(dst, "manifest.json", json.dumps(new_manifest).encode())
    return config_bytes


def _maybe_layer(name: str) -> bool:
    """Layer tars in docker's archive: ``ID/layer.tar`` (classic) or ``blobs/sha256/HEX``."""
    return name.endswith("/layer.tar") or name.startswith("blobs/sha256/")


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))

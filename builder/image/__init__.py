"""Stage 4: image. Reads ``lockfiles/NAME/`` and the build context ``images/NAME/PLATFORM/``,
leaves one tagged local image per platform and writes ``build/images/NAME.json``.

Two engines build from the same context, chosen from ``builder.image.engine.ENGINES``:
``native`` (``builder.image.native``: the lock, exactly, with reproducible layers) and
``repo2docker`` (``builder.image.repo2docker``: the reference tool, needs conda-forge
online). Both get the same labels (``builder.image.labels``) and the same local name::

    scistacks/NAME:<platform lock hash[:12]>-<arch>

A platform whose image already exists with the same platform lock hash and engine is
skipped, unless ``rebuild``. The record file lists what is there now, for ``smoke`` and
``publish``.

The run is ``builder.image.stage``; the record is ``builder.records.ImageRecord``, written
and merged by ``builder.image.record``.
"""

from builder.image.engine import ENGINES, BuildJob, Engine
from builder.image.record import merge_records
from builder.image.stage import BuiltImage, arch_of, build, image_ref

__all__ = [
    "ENGINES",
    "BuildJob",
    "BuiltImage",
    "Engine",
    "arch_of",
    "build",
    "image_ref",
    "merge_records",
]

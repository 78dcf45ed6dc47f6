"""Stage 2: lock. Reads the effective specs, writes ``lockfiles/NAME/`` (``conda-lock.yml``,
``conda-PLATFORM.lock``, ``packages.md``). The stage is ``builder.lock.stage``; reading and
checking a lock back, ``builder.lock.read``.
"""

from builder.lock.channels import ChannelMap
from builder.lock.model import LockedDistribution, LockedPackage
from builder.lock.read import Staleness, check, inputs_hash, read_lock, verify
from builder.lock.stage import LockResult, lock, write_lock

__all__ = [
    "ChannelMap",
    "LockResult",
    "LockedDistribution",
    "LockedPackage",
    "Staleness",
    "check",
    "inputs_hash",
    "lock",
    "read_lock",
    "verify",
    "write_lock",
]

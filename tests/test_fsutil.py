"""Atomic writes: an interrupted write leaves the old file whole and no temp files."""

from __future__ import annotations

import os

import pytest

from builder.fsutil import write_atomic


def test_write_reports_change_and_keeps_unchanged_files(tmp_path):
    target = tmp_path / "sub" / "conda-lock.yml"
    assert write_atomic(target, "a: 1\n") is True
    mtime = target.stat().st_mtime_ns
    assert write_atomic(target, "a: 1\n") is False
    assert target.stat().st_mtime_ns == mtime
    assert write_atomic(target, b"a: 2\n") is True
    assert target.read_text() == "a: 2\n"


def test_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "conda-lock.yml"
    target.write_text("old\n")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "new\n" * 1000)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["conda-lock.yml"]


def test_mode_is_applied(tmp_path):
    script = tmp_path / "start"
    write_atomic(script, "#!/bin/sh\n", mode=0o755)
    assert script.stat().st_mode & 0o777 == 0o755

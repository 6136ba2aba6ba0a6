"""`publish` writes a whole new record or leaves the old one: on a disk that fills up
mid-record, the record on disk is the old one, byte for byte, with nothing beside it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness._atomic import replace_files


def test_a_record_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    folder = tmp_path / "record"
    replace_files(folder, {"report.md": "old report", "runs.csv": "a,b\n1,2\n", "x.svg": "<svg/>"})
    real_write = os.fdopen
    opened = {"n": 0}

    def failing_fdopen(fd, *args, **kwargs):
        opened["n"] += 1
        if opened["n"] == 2:  # the second file: the disk is full
            raise OSError(28, "No space left on device")
        return real_write(fd, *args, **kwargs)

    monkeypatch.setattr("harness._atomic.os.fdopen", failing_fdopen)
    with pytest.raises(OSError, match="No space left"):
        replace_files(folder, {"report.md": "new", "runs.csv": "new"}, obsolete=("x.svg",))
    monkeypatch.undo()
    assert sorted(p.name for p in folder.iterdir()) == ["report.md", "runs.csv", "x.svg"]
    assert (folder / "report.md").read_text() == "old report"
    replace_files(folder, {"report.md": "new", "runs.csv": "new"}, obsolete=("x.svg",))
    assert sorted(p.name for p in folder.iterdir()) == ["report.md", "runs.csv"]


def _tmpfs_works(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.mkdir()
    try:
        done = subprocess.run(
            ["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {probe}"],
            capture_output=True,
        )
    except FileNotFoundError:
        return False
    return done.returncode == 0


@pytest.mark.e2e
def test_publish_on_a_full_disk_says_so_in_one_line_and_keeps_the_old_record(
    finished_study, tmp_path
):
    if not _tmpfs_works(tmp_path):
        pytest.skip("needs root and `unshare -m` to mount a small tmpfs")
    path, url = finished_study["path"], finished_study["storage"]
    old = tmp_path / "old"
    libkd = [sys.executable, "-m", "harness.cli", "publish", str(path), "--storage", str(url)]
    subprocess.run([*libkd, "--out", str(old)], check=True, capture_output=True, timeout=300)
    before = {p.name: p.read_bytes() for p in old.iterdir()}
    disk = tmp_path / "disk"
    disk.mkdir()
    record = disk / "record"
    script = (
        f"mount -t tmpfs -o size=96k tmpfs {disk} && cp -r {old} {record} && "
        # fill the disk, leaving less than the new record needs
        f"(dd if=/dev/zero of={disk}/filler bs=1k count=1000 2>/dev/null; true) && "
        f"rm -f {disk}/filler && dd if=/dev/zero of={disk}/filler bs=1k count="
        f"$(( $(df -k --output=avail {disk} | tail -1) - 4 )) 2>/dev/null; "
        f"{' '.join(libkd)} --out {record}; echo exit=$?; "
        f"for f in $(ls -A {record}); do echo file:$f; done; sha256sum {record}/*"
    )
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=300
    )
    out = done.stdout + done.stderr
    assert "exit=2" in out, out
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "the record there is unchanged" in errors[0], out
    for name, data in before.items():
        assert f"{hashlib.sha256(data).hexdigest()}  {record}/{name}" in out, (name, out)
    listed = {line[5:] for line in done.stdout.splitlines() if line.startswith("file:")}
    assert listed == set(before), out  # no temporary file left beside the record
    shutil.rmtree(old)


def test_report_md_shows_a_description_and_labels_as_typed_never_as_html(finished_study, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from harness.cli import app

    data = yaml.safe_load(Path(finished_study["path"]).read_text())
    data["description"] = "<script>alert(1)</script> & <b>bold</b>"
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "record"
    args = ["publish", str(path), "--storage", str(finished_study["storage"]), "--out", str(out)]
    assert CliRunner().invoke(app, args).exit_code == 0
    report = (out / "report.md").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in report
    assert "<script>" not in report and "<b>" not in report

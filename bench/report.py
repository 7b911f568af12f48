"""Shared by the benchmark scripts: each owns one marked section of docs/benchmarks.md."""

from __future__ import annotations

import os
from pathlib import Path


def write_section(path: Path, section: str, begin_mark: str, end_mark: str) -> None:
    """Replace the section between ``begin_mark`` and ``end_mark`` in ``path``, or append it.

    Other scripts' sections stay as they are.
    """
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    begin, end = text.find(begin_mark), text.find(end_mark)
    if begin != -1 and end > begin:
        text = text[:begin] + section.rstrip("\n") + text[end + len(end_mark) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text if text.endswith("\n") else text + "\n")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, all its threads, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")

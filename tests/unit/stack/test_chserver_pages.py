"""ClickHouse's cold library pages are handed back to the kernel (decision 0120): the
mechanism, on a file this test maps and reads itself."""

from __future__ import annotations

import mmap
from pathlib import Path

from stack.chserver import drop_cold_pages

SIZE = 16 * 2**20


def _resident_kib(name: str) -> int:
    """Rss of this process's mappings of the file ``name`` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and not fields[0].endswith(":"):
            inside = len(fields) > 5 and fields[5].endswith(name)
        elif inside and fields[0] == "Rss:":
            total += int(fields[1])
    return total


def test_the_read_pages_of_a_mapped_file_are_dropped_and_still_readable(tmp_path: Path) -> None:
    lib = tmp_path / "engine-like.so"
    lib.write_bytes(bytes(range(256)) * (SIZE // 256))
    with lib.open("rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as m:
        checksum = sum(m[i] for i in range(0, SIZE, 4096))  # every page read once
        assert _resident_kib(lib.name) > SIZE // 1024 * 0.9
        assert drop_cold_pages(lib.name) == SIZE
        assert _resident_kib(lib.name) < SIZE // 1024 * 0.1
        assert sum(m[i] for i in range(0, SIZE, 4096)) == checksum  # read again from the file


def test_other_mappings_are_left_alone(tmp_path: Path) -> None:
    lib = tmp_path / "other.so"
    lib.write_bytes(b"\1" * SIZE)
    with lib.open("rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as m:
        sum(m[i] for i in range(0, SIZE, 4096))
        assert drop_cold_pages("no-such-library.so") == 0
        assert _resident_kib(lib.name) > SIZE // 1024 * 0.9

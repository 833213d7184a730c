"""Face crops kept on disk and read batch by batch, so memory does not grow with the dataset."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class DiskCrops:
    """An (N, S, S, 3) uint8 .npy file read with positioned reads (no memory map).

    Pages read go to the OS file cache, not to this process's memory: peak RSS stays the
    size of one batch however many faces there are. Indexing returns plain arrays.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        with self.path.open("rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(f)
            self.offset = f.tell()
        if fortran or dtype != np.uint8:
            raise ValueError(f"{self.path}: expected a C-ordered uint8 array")
        self.shape, self.dtype = tuple(shape), np.dtype(np.uint8)
        self.row_bytes = int(np.prod(self.shape[1:]))
        self._fd = os.open(self.path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, int | np.integer):
            return self._read(np.array([key]))[0]
        return self._read(np.arange(len(self))[key])

    def __array__(self, dtype=None, copy=None):
        whole = self._read(np.arange(len(self)))
        return whole if dtype is None else whole.astype(dtype)

    def _read(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), *self.shape[1:]), np.uint8)
        flat = out.reshape(len(rows), -1)
        order = np.argsort(rows, kind="stable")
        start = 0
        while start < len(order):  # coalesce runs of consecutive rows into one read
            stop = start + 1
            while stop < len(order) and rows[order[stop]] == rows[order[stop - 1]] + 1:
                stop += 1
            first, count = int(rows[order[start]]), stop - start
            data = self._pread(count * self.row_bytes, self.offset + first * self.row_bytes)
            flat[order[start:stop]] = np.frombuffer(data, np.uint8).reshape(count, -1)
            start = stop
        return out

    def _pread(self, size: int, offset: int) -> bytes:
        """Read exactly `size` bytes (one pread returns at most ~2 GiB on Linux)."""
        parts = []
        while size > 0:
            chunk = os.pread(self._fd, min(size, 1 << 30), offset)
            if not chunk:
                raise OSError(f"{self.path}: file ends early; delete it to rebuild the cache")
            parts.append(chunk)
            size, offset = size - len(chunk), offset + len(chunk)
        return b"".join(parts)

    def __del__(self):
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)


def open_crops(path: str | os.PathLike, in_memory_mb: float) -> np.ndarray | DiskCrops:
    """The crops file in RAM when it is under `in_memory_mb`, else read from disk per batch."""
    if Path(path).stat().st_size <= in_memory_mb * 2**20:
        return np.load(path)
    return DiskCrops(path)

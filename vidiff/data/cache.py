"""Decoded clips, kept so that a file is decoded once and not again every epoch.

A clip is keyed by (file, modification time, byte size, short side): editing or
replacing the file misses the cache. With a folder, clips are stored there as
.npy and memory-mapped, so later runs skip decoding too and only the frames a
clip uses are read from disk; without one, an in-memory LRU bounded in bytes.
"""

import hashlib
import os
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..io.files import usual_permissions


class ClipCache:
    def __init__(self, folder=None, max_bytes=1 << 30):
        self.folder = None if folder is None else Path(folder)
        self.max_bytes = max_bytes
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        self._memory, self._bytes = OrderedDict(), 0

    def get(self, path, size, read):
        """(frames, times) of `path` at short side `size`, calling read(path, size) only on a miss."""
        st = os.stat(path)
        key = hashlib.sha1(f"{os.path.abspath(path)}|{st.st_mtime_ns}|{st.st_size}|{size}".encode()).hexdigest()
        if self.folder is None:
            return self._get_memory(key, path, size, read)
        frames_file, times_file = self.folder / f"{key}.npy", self.folder / f"{key}.times.npy"
        try:
            return np.load(frames_file, mmap_mode="r"), np.load(times_file)
        except (OSError, ValueError):
            pass
        frames, times = read(path, size)
        # Times first: a frames file on disk means the entry is complete.
        _save_atomic(times_file, times)
        _save_atomic(frames_file, frames)
        return frames, times

    def _get_memory(self, key, path, size, read):
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key]
        frames, times = read(path, size)
        if frames.nbytes <= self.max_bytes:
            self._memory[key] = frames, times
            self._bytes += frames.nbytes
            while self._bytes > self.max_bytes:
                self._bytes -= self._memory.popitem(last=False)[1][0].nbytes
        return frames, times

    def __getstate__(self):
        # Loader workers get an empty memory cache rather than a copy of up to max_bytes each.
        return {**self.__dict__, "_memory": OrderedDict(), "_bytes": 0}


def _save_atomic(path, array):
    # Loader workers may write the same entry at once; each rename is whole.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npy")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        usual_permissions(tmp)              # a cache folder may be shared by a team
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)

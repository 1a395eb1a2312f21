"""Folders of real videos or pictures as training data, interchangeable with the shapes world.

Every file under the folder is probed once when the dataset is built; files that
cannot give a clip (unreadable, empty, no video stream, too short, no caption)
are skipped, logged and counted, never fatal. A file that breaks later, while
training, is skipped the same way and another file serves in its place.

Item i is file i % len with a start (and random crop) drawn from rng(seed, i):
the same i is always the same clip, and each pass over the files starts clips
elsewhere. `batch(start, size)` matches ShapesWorld.batch, so the training loop
can take either (data/sources.py, which also runs it in DataLoader workers).
"""

import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import VidiffError
from .cache import ClipCache
from .decode import IMAGES, VIDEOS, UnusableFile, read_image, read_video
from .manifest import read_manifest, sidecar_caption

logger = logging.getLogger(__name__)
CROPS = ("center", "random")


class DataError(VidiffError, ValueError):
    """A data folder, or options for one, that gives no training clips."""


# --------------------------------------------------------------------------- clips from frames

def too_short(times, frames, fps, stride):
    """Why `frames` frames at this fps (or stride) don't fit in a clip with these frame times; '' if they do."""
    if fps is None:
        need = (frames - 1) * stride + 1
        return f"too short: {len(times)} frames, need {need}" if len(times) < need else ""
    step = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else 0.0   # mean frame interval
    need = (frames - 1) / fps
    # The last target time may fall up to half a frame past the last frame: its nearest frame is still the last.
    if times[-1] - times[0] + step / 2 < need - 1e-9:
        return f"too short: {times[-1] - times[0] + step:.2f} s, need {need + 1 / fps:.2f} s at {fps:g} fps"
    return ""


def frame_indices(times, frames, fps, stride, u):
    """Source frames of one clip, (F,); u in [0, 1) places its start anywhere the clip fits."""
    if fps is None:
        span = (frames - 1) * stride + 1
        return int(u * (len(times) - span + 1)) + stride * np.arange(frames)
    slack = max(times[-1] - times[0] - (frames - 1) / fps, 0.0)
    targets = times[0] + u * slack + np.arange(frames) / fps                 # (F,) seconds
    return np.abs(times[None, :] - targets[:, None]).argmin(axis=1)          # nearest source frame to each


def crop(frames, size, rng=None):
    """A size x size window of (F, H, W, 3): the centre one, or a random one when rng is given."""
    _, H, W, _ = frames.shape
    top, left = ((H - size) // 2, (W - size) // 2) if rng is None else \
        (rng.integers(H - size + 1), rng.integers(W - size + 1))
    return frames[:, top: top + size, left: left + size]                     # (F, size, size, 3)


def load_frames(path, cache, frames, size, fps=None, stride=1, images=False):
    """A file's frames at short side `size` and their times, or UnusableFile saying why not."""
    try:
        if os.stat(path).st_size == 0:
            raise UnusableFile("empty file")
        video, times = cache.get(path, size, read_image if images else read_video)
    except OSError as e:
        raise UnusableFile(f"unreadable: {e.strerror or e}") from None
    reason = too_short(times, frames, fps, stride)
    if reason:
        raise UnusableFile(reason)
    return video, times


# --------------------------------------------------------------------------- scanning a folder

def summarise(used, skipped):
    """'used 12 files, skipped 3: 2 unreadable, 1 too short'."""
    counts = Counter(reason.partition(":")[0] for _, reason in skipped)
    text = f"used {used} file{'s' if used != 1 else ''}, skipped {len(skipped)}"
    return text + (": " + ", ".join(f"{n} {why}" for why, n in counts.most_common()) if skipped else "")


@dataclass
class FolderReport:
    root: Path
    images: bool      # pictures rather than videos
    files: list       # usable files, sorted
    captions: list    # one per usable file
    skipped: list     # (path, reason) for every file left out

    def summary(self):
        return summarise(len(self.files), self.skipped)

    def require_files(self):
        if not self.files:
            kind = "pictures" if self.images else "videos"
            raise DataError(f"no usable {kind} in {self.root}: {self.summary()}")


def _caption(path, manifest):
    try:
        text = sidecar_caption(path) if manifest is None else manifest.get(path)
    except OSError as e:
        raise UnusableFile(f"unreadable caption: {e.strerror or e}") from None
    if text is None:
        raise UnusableFile(f"no caption: no {path.with_suffix('.txt').name} beside it" if manifest is None
                           else "no caption: not in the manifest")
    if not text:
        raise UnusableFile("empty caption")
    return text


def check_folder(root, frames=16, size=32, fps=None, stride=1, captions=None, images=False, cache=None):
    """Probe every video (or picture) under `root` as a dataset with these options would.

    captions: None for sidecar .txt files, else a .csv / .jsonl manifest. Hidden files
    and folders are ignored. Decoded files go to `cache`, so a dataset built on the same
    cache does not decode them again.
    """
    root = Path(os.path.abspath(root))
    if not root.is_dir():
        raise DataError(f"no such folder: {root}")
    if frames < 1 or size < 1 or stride < 1 or (fps is not None and fps <= 0):
        raise DataError(f"frames, size, stride and fps must be positive, got {frames}, {size}, {stride}, {fps}")
    if fps is not None and stride != 1:
        raise DataError("give a target fps or a frame stride, not both")
    cache = cache or ClipCache(max_bytes=0)
    manifest, skipped = read_manifest(captions, root) if captions else (None, [])
    extensions = IMAGES if images else VIDEOS
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in extensions and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    files, texts = [], []
    for path in paths:
        try:
            text = _caption(path, manifest)
            load_frames(path, cache, frames, size, fps, stride, images)
        except UnusableFile as e:
            skipped.append((path, str(e)))
            continue
        files.append(path)
        texts.append(text)
    for path in sorted((manifest or {}).keys() - set(paths)):
        skipped.append((path, "missing file: in the manifest, not in the folder"))
    return FolderReport(root, images, files, texts, skipped)


# --------------------------------------------------------------------------- datasets

class VideoFolder:
    """Clips of `frames` frames, size x size, from every video under `root`, with their captions.

    fps: sample at this frame rate (the source frame nearest each target time);
    None takes every `stride`-th source frame. Frames are resized so the short side
    is `size` (aspect kept), then cropped at the centre or at random. cache_dir keeps
    decoded frames on disk across runs; without it they are kept in memory, up to 1 GiB
    per process, so larger folders (or many loader workers) want a cache_dir.
    """
    images = False

    def __init__(self, root, frames, size, fps=None, stride=1, crop="center", captions=None,
                 cache_dir=None, seed=0):
        if crop not in CROPS:
            raise DataError(f"crop must be one of {', '.join(CROPS)}, got {crop!r}")
        self.frames, self.size, self.fps, self.stride = frames, size, fps, stride
        self.crop, self.seed = crop, seed
        self.cache = ClipCache(cache_dir)
        report = check_folder(root, frames, size, fps, stride, captions, self.images, self.cache)
        for path, reason in report.skipped:
            logger.warning("skipping %s: %s", path, reason)
        report.require_files()
        self.root, self.files, self.captions = report.root, report.files, report.captions
        self.skipped = report.skipped     # grows when a file breaks during training
        self._broken = set()              # indices of such files

    def __len__(self):
        return len(self.files)

    def summary(self):
        return summarise(len(self.files) - len(self._broken), self.skipped)

    def mark_broken(self, path, reason):
        """Leave out a file that broke during training (here, or in a loader worker's copy)."""
        j = self.files.index(path)
        if j not in self._broken:
            self._broken.add(j)
            self.skipped.append((path, reason))
            logger.warning("skipping %s: %s", path, reason)

    def item(self, i):
        """(video (C, F, H, W) float in [-1, 1], caption) of global index i >= 0."""
        rng = np.random.default_rng([self.seed, i])
        u = rng.random()
        for k in range(len(self.files)):
            j = (i + k) % len(self.files)      # a broken file's clip comes from the next good file
            if j in self._broken:
                continue
            try:
                video, times = load_frames(self.files[j], self.cache, self.frames, self.size, self.fps,
                                           self.stride, self.images)
            except UnusableFile as e:
                self.mark_broken(self.files[j], str(e))
                continue
            clip = video[frame_indices(times, self.frames, self.fps, self.stride, u)]     # (F, h, w, 3)
            clip = crop(clip, self.size, rng if self.crop == "random" else None)           # (F, H, W, 3)
            x = torch.from_numpy(np.ascontiguousarray(clip)).permute(3, 0, 1, 2)          # (C, F, H, W)
            return x.float() / 127.5 - 1, self.captions[j]
        raise DataError(f"every file in {self.root} has become unusable: {self.summary()}")

    __getitem__ = item

    def batch(self, start, size):
        """Clips start .. start + size - 1: x (B, C, F, H, W) in [-1, 1] and their captions."""
        return collate([self.item(start + k) for k in range(size)])


class ImageFolder(VideoFolder):
    """Every picture under `root` as a one-frame clip (C, 1, H, W), with its caption."""
    images = True

    def __init__(self, root, size, captions=None, crop="center", cache_dir=None, seed=0):
        super().__init__(root, 1, size, captions=captions, crop=crop, cache_dir=cache_dir, seed=seed)


# --------------------------------------------------------------------------- batches

def collate(items):
    videos, captions = zip(*items)
    return torch.stack(videos), list(captions)                                # (B, C, F, H, W)

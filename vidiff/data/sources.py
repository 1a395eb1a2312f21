"""What each training step trains on.

A step trains on a batch of video clips (the shapes world, or a folder of videos) or, in
joint image-video training, with probability `data.image_ratio` on a batch of pictures fed
as one-frame clips, for which the network skips its temporal layers (Ho et al. 2022: images
teach appearance, videos teach motion, with the same weights); and with probability
`data.long_ratio` on fewer, longer clips of `data.long_frames` frames (the same pixels a
step), so a model meant to continue and to make long videos sees more of each path than one
window holds. Batches are bucketed by length this way: every batch has one F.

Step k's batch is a function of (seed, k) alone, so a resumed run, any number of processes
and any number of loader workers all see the same data.
"""

import numpy as np
import torch

from ..config import ConfigError, DataConfig
from .shapes import COLOURS, DIRECTIONS, SHAPES, ShapesWorld


def holdout(data: DataConfig):
    """data.holdout as (colour, shape, direction) tuples; a misspelt name would hold out nothing."""
    names = (COLOURS, SHAPES, DIRECTIONS)
    for item in data.holdout:
        if not (isinstance(item, list) and len(item) == 3 and all(v in n for v, n in zip(item, names))):
            raise ConfigError(f"data.holdout entries must be [colour, shape, direction] from {list(COLOURS)}, "
                              f"{list(SHAPES)} and {list(DIRECTIONS)}; got {item!r}")
    return [tuple(item) for item in data.holdout]


def video_source(data: DataConfig, frames=None, seed_offset=0):
    frames = frames or data.frames
    if data.videos:
        from .folder import VideoFolder

        return VideoFolder(data.videos, frames, data.size, fps=data.fps or None, stride=data.stride,
                           crop=data.crop, captions=data.captions or None, cache_dir=data.cache_dir or None,
                           seed=data.seed + seed_offset)
    return ShapesWorld(data.seed + seed_offset, frames, data.size, data.size, caption_split=data.wording,
                       exclude=holdout(data), distinct=data.num_clips)


def image_source(data: DataConfig):
    if not data.images:
        return None
    if data.images == "shapes":     # stills of the shapes world, from a stream of their own
        return ShapesWorld(data.seed + 1_000_003, 1, data.size, data.size, exclude=holdout(data),
                           distinct=data.num_images, stills=True)
    from .folder import ImageFolder

    return ImageFolder(data.images, data.size, captions=data.image_captions or None, crop=data.crop,
                       cache_dir=data.cache_dir or None, seed=data.seed)


class StepBatches(torch.utils.data.Dataset):
    """Item k: this process's share of step k's global batch, (x (b, C, F, H, W), captions, kind)."""

    def __init__(self, data: DataConfig, batch_size, rank=0, world=1):
        self.data, self.rank, self.world = data, rank, world
        self.videos, self.images = video_source(data), image_source(data)
        # Long clips come from a stream of their own, so the usual clips stay what they were.
        self.long = video_source(data, data.long_frames, 2_000_003) if data.long_ratio > 0 else None
        self.sizes = {"clips": batch_size, "images": data.image_batch or batch_size * data.frames,   # global
                      "long": data.long_batch or batch_size * data.frames // max(data.long_frames, 1)}
        if data.image_ratio > 0 and self.images is None:
            raise ConfigError("data.image_ratio > 0 needs data.images ('shapes' or a folder of pictures)")
        for name in ("image_ratio", "long_ratio"):
            if not 0 <= getattr(data, name) <= 1:
                raise ConfigError(f"data.{name} must be in [0, 1], got {getattr(data, name)}")
        if data.image_ratio + data.long_ratio > 1:
            raise ConfigError("data.image_ratio + data.long_ratio are shares of the same steps: at most 1 together")
        if data.long_ratio > 0 and (data.long_frames <= data.frames or self.sizes["long"] < 1):
            raise ConfigError(f"data.long_ratio > 0 needs data.long_frames longer than data.frames = {data.frames} "
                              f"and a batch of at least one (data.long_batch); got {data.long_frames} frames, "
                              f"{self.sizes['long']} clips")

    def kind(self, step):
        """Images with probability image_ratio, long clips with long_ratio, else clips; one draw
        from (seed, step), so a run without long clips draws the images it drew before."""
        u = np.random.default_rng([self.data.seed, step, 1]).random()
        image, long = self.data.image_ratio, self.data.long_ratio
        return "images" if image >= 1 or u < image else "long" if u < image + long else "clips"

    def is_image(self, step):
        return self.kind(step) == "images"

    def source(self, kind):
        return {"clips": self.videos, "images": self.images, "long": self.long}[kind]

    def __getitem__(self, step):
        """(x, captions, kind, files that broke while making this batch as (path, reason))."""
        kind = self.kind(step)
        size = self.sizes[kind]
        b = size // self.world
        source = self.source(kind)
        before = len(getattr(source, "skipped", ()))
        x, captions = source.batch(step * size + self.rank * b, b)
        return x, captions, kind, list(getattr(source, "skipped", ())[before:])

    def __len__(self):
        return 2**62     # an endless stream, indexed by step


def step_loader(batches: StepBatches, start, stop, workers):
    """Steps start .. stop - 1 in order as (x, captions, kind), made ahead by `workers`
    processes (0: made on demand). A file a worker finds broken is also left out of this
    process's copy of the folder, so the end-of-run summary counts it."""
    if workers == 0:
        return (batches[k][:3] for k in range(start, stop))
    loader = torch.utils.data.DataLoader(batches, batch_size=None, sampler=range(start, stop),
                                         num_workers=workers, persistent_workers=False)
    return (_merge_broken(batches, item) for item in loader)


def _merge_broken(batches, item):
    x, captions, kind, broken = item
    for path, reason in broken:
        batches.source(kind).mark_broken(path, reason)
    return x, captions, kind

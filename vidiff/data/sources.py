"""What each training step trains on.

A step trains on a batch of video clips (the shapes world, or a folder of videos) or, in
joint image-video training, with probability `data.image_ratio` on a batch of pictures fed
as one-frame clips, for which the network skips its temporal layers (Ho et al. 2022: images
teach appearance, videos teach motion, with the same weights). Batches are bucketed by
length this way: every batch has one F.

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


def video_source(data: DataConfig):
    if data.videos:
        from .folder import VideoFolder

        return VideoFolder(data.videos, data.frames, data.size, fps=data.fps or None, stride=data.stride,
                           crop=data.crop, captions=data.captions or None, cache_dir=data.cache_dir or None,
                           seed=data.seed)
    return ShapesWorld(data.seed, data.frames, data.size, data.size, caption_split=data.wording,
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
    """Item k: this process's share of step k's global batch, (x (b, C, F, H, W), captions, is_image)."""

    def __init__(self, data: DataConfig, batch_size, rank=0, world=1):
        self.data, self.rank, self.world = data, rank, world
        self.videos, self.images = video_source(data), image_source(data)
        self.sizes = {False: batch_size, True: data.image_batch or batch_size * data.frames}   # global, by is_image
        if data.image_ratio > 0 and self.images is None:
            raise ConfigError("data.image_ratio > 0 needs data.images ('shapes' or a folder of pictures)")
        if not 0 <= data.image_ratio <= 1:
            raise ConfigError(f"data.image_ratio must be in [0, 1], got {data.image_ratio}")

    def is_image(self, step):
        ratio = self.data.image_ratio
        return ratio >= 1 or (ratio > 0 and np.random.default_rng([self.data.seed, step, 1]).random() < ratio)

    def __getitem__(self, step):
        """(x, captions, is_image, files that broke while making this batch as (path, reason))."""
        image = self.is_image(step)
        size = self.sizes[image]
        b = size // self.world
        source = self.images if image else self.videos
        before = len(getattr(source, "skipped", ()))
        x, captions = source.batch(step * size + self.rank * b, b)
        return x, captions, image, list(getattr(source, "skipped", ())[before:])

    def __len__(self):
        return 2**62     # an endless stream, indexed by step


def step_loader(batches: StepBatches, start, stop, workers):
    """Steps start .. stop - 1 in order as (x, captions, is_image), made ahead by `workers`
    processes (0: made on demand). A file a worker finds broken is also left out of this
    process's copy of the folder, so the end-of-run summary counts it."""
    if workers == 0:
        return (batches[k][:3] for k in range(start, stop))
    loader = torch.utils.data.DataLoader(batches, batch_size=None, sampler=range(start, stop),
                                         num_workers=workers, persistent_workers=False)
    return (_merge_broken(batches, item) for item in loader)


def _merge_broken(batches, item):
    x, captions, image, broken = item
    for path, reason in broken:
        (batches.images if image else batches.videos).mark_broken(path, reason)
    return x, captions, image

"""The shapes world: synthetic videos with exact ground truth.

One solid-coloured object (circle, square or triangle) moves in one of eight
directions at constant speed on a black canvas and bounces elastically off the
walls. Every length is given at 32 px and scales with H / 32. Clips are
deterministic functions of a seed, so the same module serves as an endless
training stream and as a fixed evaluation set.
"""

from dataclasses import dataclass, field

import numpy as np

COLOURS = {
    "red": (220, 40, 40),
    "orange": (245, 140, 30),
    "yellow": (240, 220, 40),
    "green": (40, 190, 70),
    "blue": (40, 100, 240),
    "purple": (150, 60, 210),
    "white": (235, 235, 235),
}
SHAPES = ("circle", "square", "triangle")
# Unit steps in image coordinates: x grows to the right, y grows downwards.
DIRECTIONS = {
    "right": (1, 0), "left": (-1, 0), "up": (0, -1), "down": (0, 1),
    "up-right": (1, -1), "up-left": (-1, -1), "down-right": (1, 1), "down-left": (-1, 1),
}
SIDE_RANGE = (7.0, 11.0)   # px at 32 px
SPEED_RANGE = (1.0, 2.0)   # px per frame at 32 px
CLEAR_FRAMES = 4           # no wall contact in the first frames, so the direction shows


@dataclass
class Clip:
    video: np.ndarray                  # (F, H, W, 3) uint8
    colour: str
    shape: str
    direction: str
    side: float                        # px, at this clip's size
    speed: float                       # px per frame, at this clip's size
    centres: np.ndarray                # (F, 2) float, (x, y) of the bounding-box centre
    caption: str
    meta: dict = field(default_factory=dict)


def trajectory(start, velocity, lo, hi, num_frames):
    """Centres under constant velocity with elastic bounces in [lo, hi] per axis.

    Unfold the straight path, then fold it back into the box: a triangle wave of
    period 2 (hi - lo) is exactly the path of a ball bouncing between two walls.
    """
    f = np.arange(num_frames, dtype=np.float64)[:, None]           # (F, 1)
    free = np.asarray(start)[None] + f * np.asarray(velocity)[None] - lo  # (F, 2)
    span = hi - lo
    folded = np.mod(free, 2 * span)
    return lo + np.where(folded > span, 2 * span - folded, folded)


def shape_mask(shape, centres, side, height, width):
    """Boolean (F, H, W) mask of the shape at each centre; pixels are tested at their centres."""
    ys = np.arange(height, dtype=np.float64)[None, :, None] + 0.5   # (1, H, 1)
    xs = np.arange(width, dtype=np.float64)[None, None, :] + 0.5    # (1, 1, W)
    dx = xs - centres[:, 0, None, None]                             # (F, 1, W)
    dy = ys - centres[:, 1, None, None]                             # (F, H, 1)
    r = side / 2
    if shape == "circle":
        return dx**2 + dy**2 <= r**2
    if shape == "square":
        return (np.abs(dx) <= r) & (np.abs(dy) <= r)
    if shape == "triangle":
        # Apex at the top centre, flat base at the bottom; width grows linearly downwards.
        depth = dy + r                                              # 0 at apex, side at base
        inside_y = (depth >= 0) & (depth <= side)
        return inside_y & (np.abs(dx) <= depth / 2)
    raise ValueError(f"unknown shape {shape!r}; choose from {SHAPES}")


def render(shape, colour, centres, side, height, width):
    """(F, H, W, 3) uint8 frames of one object on black."""
    mask = shape_mask(shape, centres, side, height, width)
    video = np.zeros(mask.shape + (3,), dtype=np.uint8)
    video[mask] = COLOURS[colour]
    return video


def sample_clip(rng, num_frames=16, height=32, width=32, colour=None, shape=None,
                direction=None, caption_split="train"):
    """Draw one clip; any of colour / shape / direction may be fixed by the caller."""
    from .captions import caption  # local import: captions depend on the names above

    scale = height / 32
    colour = colour or rng.choice(list(COLOURS))
    shape = shape or rng.choice(SHAPES)
    direction = direction or rng.choice(list(DIRECTIONS))
    side = rng.uniform(*SIDE_RANGE) * scale
    speed = rng.uniform(*SPEED_RANGE) * scale
    unit = np.asarray(DIRECTIONS[direction], dtype=np.float64)
    velocity = speed * unit / np.linalg.norm(unit)
    lo = np.array([side / 2, side / 2])
    hi = np.array([width - side / 2, height - side / 2])
    # Start so that the first CLEAR_FRAMES frames never touch a wall.
    travel = velocity * (CLEAR_FRAMES - 1)
    start_lo = lo + np.maximum(-travel, 0)
    start_hi = hi - np.maximum(travel, 0)
    start = rng.uniform(start_lo, start_hi)
    centres = trajectory(start, velocity, lo, hi, num_frames)
    video = render(shape, colour, centres, side, height, width)
    text = caption(rng, colour, shape, direction, split=caption_split)
    return Clip(video, str(colour), str(shape), str(direction), float(side), float(speed),
                centres, text)


class ShapesWorld:
    """Deterministic clips: item i of seed s is always the same clip."""

    def __init__(self, seed=0, num_frames=16, height=32, width=32, caption_split="train",
                 exclude=(), distinct=0, stills=False):
        self.seed, self.num_frames, self.height, self.width = seed, num_frames, height, width
        self.caption_split = caption_split
        self.exclude = {tuple(c) for c in exclude}   # held-out (colour, shape, direction)
        self.distinct = distinct                     # > 0: a finite set of clips, index % distinct
        self.stills = stills                         # one-frame pictures captioned by colour and shape

    def clip(self, index, **fixed):
        from .captions import still_caption

        if self.distinct:
            index %= self.distinct
        rng = np.random.default_rng([self.seed, index])
        while True:
            clip = sample_clip(rng, 1 if self.stills else self.num_frames, self.height, self.width,
                               caption_split=self.caption_split, **fixed)
            if (clip.colour, clip.shape, clip.direction) not in self.exclude:
                if self.stills:
                    clip.caption = still_caption(rng, clip.colour, clip.shape)
                return clip
            if all(combo in self.exclude for combo in all_combinations()
                   if all(fixed.get(k) in (None, v) for k, v in zip(("colour", "shape", "direction"), combo))):
                raise ValueError(f"every clip matching {fixed or 'any prompt'} is excluded")

    def batch(self, start, size):
        """Videos as float tensors in [-1, 1], (B, C, F, H, W), with their captions."""
        import torch

        clips = [self.clip(start + i) for i in range(size)]
        video = np.stack([c.video for c in clips])                       # (B, F, H, W, 3)
        x = torch.from_numpy(video).permute(0, 4, 1, 2, 3).float() / 127.5 - 1  # (B, C, F, H, W)
        return x, [c.caption for c in clips]


def all_combinations():
    return [(c, s, d) for c in COLOURS for s in SHAPES for d in DIRECTIONS]

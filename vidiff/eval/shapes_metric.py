"""A detector and scorer for shapes-world clips: is the motion *right*, not just pretty?

Per frame: find the object (bright pixels on black), its colour (nearest palette
entry), its shape (the ideal circle, square or triangle that overlaps it best),
its size and its bounding-box centre.
Per clip: colour and shape match the prompt; the first frames move in the asked
direction; the object stays one object of one colour, shape and size; and the
centres follow straight constant-velocity motion with elastic bounces off the
walls (fitted per axis, every frame within a tolerance).

All lengths are given at 32 px and scale with the frame height.
"""

from dataclasses import dataclass, field

import numpy as np

from ..data.shapes import CLEAR_FRAMES, COLOURS, DIRECTIONS

PALETTE = np.array(list(COLOURS.values()), dtype=np.float64)     # (7, 3)
COLOUR_NAMES = list(COLOURS)
FOREGROUND = 80          # a pixel is object if its brightest channel exceeds this
MIN_AREA = 12            # px at 32 px: smaller blobs are noise (the smallest object has ~24 px)
MAX_COLOUR_DIST = 90     # RGB distance beyond which a colour is "none of the palette"
SIZE_TOL = 1.6           # px at 32 px: allowed spread of the object's size over a clip
PATH_TOL = 1.0           # px at 32 px: allowed distance between a centre and the fitted physics
MIN_SPEED = 0.5          # px per frame at 32 px: slower than this is "not moving"
FILL = {"circle": np.pi / 4, "square": 1.0, "triangle": 0.5}   # area / side^2
# Least IoU with the best ideal shape to count as that shape. True frames fit at >= 0.93 (circles; squares
# and triangles at 1.0; benchmarks/shape_fit.py); a 2:1 ellipse or box, a cross or an L below it (tests/test_metric.py).
MIN_FIT = 0.85
CRITERIA = ("colour", "shape", "direction", "steady", "motion")
ANGLES = {name: np.arctan2(dy, dx) for name, (dx, dy) in DIRECTIONS.items()}   # image coordinates, y down


@dataclass
class FrameDetection:
    found: bool
    colour: str | None = None
    shape: str | None = None
    size: float = 0.0                 # side from the area: steadier than a pixelated bounding box
    extent: float = 0.0               # bounding-box side (max of width and height), for the walls
    centre: tuple = (np.nan, np.nan)  # (x, y) of the bounding-box centre
    extra_blobs: int = 0              # other sizeable blobs: the object split or duplicated


def _components(mask):
    """Connected components (4-neighbour) of a small boolean image; returns a label image."""
    labels = np.zeros(mask.shape, dtype=np.int32)
    current = 0
    for start in zip(*np.nonzero(mask)):
        if labels[start]:
            continue
        current += 1
        stack = [start]
        labels[start] = current
        while stack:
            y, x = stack.pop()
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = current
                    stack.append((ny, nx))
    return labels


def largest_blob(mask, scale=1.0):
    """The largest connected blob of a non-empty boolean (H, W) mask, and how many other sizeable ones there are."""
    labels = _components(mask)
    sizes = np.bincount(labels.ravel())[1:]
    main = int(np.argmax(sizes)) + 1
    extra = int(((sizes >= MIN_AREA * scale**2) & (np.arange(1, len(sizes) + 1) != main)).sum())
    return labels == main, extra


def template(shape, side, cx, cy, h, w):
    """Boolean (..., h, w) pixel-centre drawings of an ideal shape; side, cx, cy broadcast as (..., 1, 1).
    The detector's own drawing, so that evaluation never calls the shapes-world renderer."""
    dx = np.arange(w) + 0.5 - cx
    dy = (np.arange(h) + 0.5)[:, None] - cy
    r = side / 2
    if shape == "circle":
        return dx**2 + dy**2 <= r**2
    if shape == "square":
        return (np.abs(dx) <= r) & (np.abs(dy) <= r)
    depth = dy + r                                   # triangle: apex up, base width = height = side
    return (depth >= 0) & (depth <= side) & (np.abs(dx) <= depth / 2)


def classify_shape(obj):
    """circle / square / triangle for a boolean mask cropped to its bounding box (see fit_shape);
    None where even the best ideal shape overlaps it by less than MIN_FIT: a misshapen object."""
    shape, fit = fit_shape(obj)
    return shape if fit >= MIN_FIT else None


def fit_shape(obj):
    """(shape, IoU): the shape whose ideal drawing, at the best size and position, overlaps the
    mask most (intersection over union), and that overlap.

    A best fit rather than a threshold on one feature: a generated square whose edge row is only
    partly lit (its edge falls between pixels) still overlaps an ideal square far better than any
    circle, where "fills its bounding box" would call it a circle.
    """
    obj = np.pad(obj, int(0.35 * np.sqrt(obj.sum())) + 2)     # room for the largest drawing tried
    h, w = obj.shape
    area = obj.sum()
    cy = ((np.arange(h) + 0.5) * obj.sum(1)).sum() / area      # centroid
    cx = ((np.arange(w) + 0.5) * obj.sum(0)).sum() / area
    grid = np.linspace(-0.15, 0.15, 13)
    best = {}
    for shape in FILL:
        side0 = np.sqrt(area / FILL[shape])
        ty = cy - side0 / 6 if shape == "triangle" else cy    # a triangle's centroid sits below its box centre
        side, oy, ox = np.meshgrid(side0 * (1 + grid), side0 * grid, side0 * grid, indexing="ij")
        drawn = template(shape, side.ravel()[:, None, None], cx + ox.ravel()[:, None, None],
                         ty + oy.ravel()[:, None, None], h, w)
        best[shape] = ((drawn & obj).sum((1, 2)) / (drawn | obj).sum((1, 2))).max()
    shape = max(best, key=best.get)
    return shape, float(best[shape])


def fit_centre(frame, shape, step=0.05, reach=0.6):
    """Sub-pixel (x, y) centre of the object in a uint8 (H, W, 3) frame: where the ideal `shape`
    drawn with pixel-centre tests (as the world draws it) overlaps the object best, searched within
    `reach` px of the bounding-box centre and 1 px of its side; ties (every centre that draws the
    same pixels) are averaged. A bounding box is off by up to half a pixel per axis, and a triangle's
    more (its apex row is rarely lit); the fit recovers what the pixels say. None for no object.
    A square's pixels pin its centre no better than its box does."""
    mask = frame.max(-1) > FOREGROUND
    if not mask.any():
        return None
    obj, _ = largest_blob(mask)
    ys, xs = np.nonzero(obj)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    if shape not in FILL:
        return (x0 + x1) / 2, (y0 + y1) / 2
    pad = 3
    crop = np.pad(obj[y0:y1, x0:x1], pad)
    offsets = np.arange(-reach, reach + 1e-9, step)
    side, oy, ox = (v.ravel()[:, None, None] for v in np.meshgrid(
        max(x1 - x0, y1 - y0) + np.arange(-1.0, 1.0 + 1e-9, 0.1), offsets, offsets, indexing="ij"))
    cx, cy = pad + (x1 - x0) / 2 + ox, pad + (y1 - y0) / 2 + oy
    drawn = template(shape, side, cx, cy, *crop.shape)
    iou = (drawn & crop).sum((1, 2)) / (drawn | crop).sum((1, 2))
    best = iou >= iou.max() - 1e-9
    return float(cx[best].mean()) - pad + x0, float(cy[best].mean()) - pad + y0


def detect_frame(frame, scale=1.0):
    """Find the object in one uint8 (H, W, 3) frame."""
    mask = frame.max(-1) > FOREGROUND
    if mask.sum() < MIN_AREA * scale**2:
        return FrameDetection(False)
    obj, extra = largest_blob(mask, scale)
    if obj.sum() < MIN_AREA * scale**2:
        return FrameDetection(False)
    ys, xs = np.nonzero(obj)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    mean_rgb = frame[obj].astype(np.float64).mean(0)
    dist = np.linalg.norm(PALETTE - mean_rgb, axis=1)
    colour = COLOUR_NAMES[int(np.argmin(dist))] if dist.min() <= MAX_COLOUR_DIST else None
    shape = classify_shape(obj[y0:y1, x0:x1])
    side = float(np.sqrt(obj.sum() / FILL.get(shape, 1.0)))   # a misshapen blob: its area's square
    return FrameDetection(True, colour, shape, side, float(max(y1 - y0, x1 - x0)),
                          ((x0 + x1) / 2, (y0 + y1) / 2), extra)


def direction_of(displacement):
    """Nearest of the eight directions to a displacement (x right, y down)."""
    angle = np.arctan2(displacement[1], displacement[0])
    return min(ANGLES, key=lambda name: angle_between(ANGLES[name], angle))


def angle_between(a, b):
    """|a - b| wrapped to [0, pi]."""
    return abs(np.angle(np.exp(1j * (a - b))))


def fit_bouncing_path(centres, size, width, height, scale=1.0):
    """Best straight-line-with-elastic-bounces path through the centres, per axis.

    Searches start and velocity on a grid around the first frames' estimate, then on
    10x and 100x finer grids around the best (a long clip needs velocity to ~0.005 px/frame),
    with walls where an object of the detected size would touch them (size known to
    about a pixel, so the wall position is searched too). Returns the max distance of
    any centre from the fitted path and the fitted velocity.
    """
    F = len(centres)
    grid = np.arange(-1.0, 1.0001, 0.05) * scale
    wall_grid = np.arange(-1.0, 1.0001, 0.25) * scale
    f = np.arange(F, dtype=np.float64)
    worst, velocity = 0.0, np.zeros(2)
    for axis, extent in ((0, width), (1, height)):
        c = centres[:, axis]
        n0 = min(CLEAR_FRAMES, F)
        v, p0, wall = (np.polyfit(f[:n0], c[:n0], 1)[0] if n0 > 1 else 0.0), c[0], 0.0
        for zoom in (1.0, 0.1, 0.01):
            shifts = wall + wall_grid * min(1.0, 4 * zoom)
            vs = v + zoom * grid[:, None, None, None]                             # (V, 1, 1, 1)
            p0s = p0 + zoom * grid[None, :, None, None] * 0.5                     # (1, P, 1, 1)
            half = size / 2 + shifts[None, None, :, None]                         # (1, 1, S, 1)
            lo, hi = half, extent - half
            span = np.maximum(hi - lo, 1e-6)  # a blob as wide as the frame cannot move (not NaN)
            free = p0s + vs * f - lo                                              # (V, P, S, F)
            folded = np.mod(free, 2 * span)
            path = lo + np.where(folded > span, 2 * span - folded, folded)
            err = np.abs(path - c).max(-1)                                        # (V, P, S)
            best = np.unravel_index(np.argmin(err), err.shape)
            v, p0, wall = float(vs[best[0], 0, 0, 0]), float(p0s[0, best[1], 0, 0]), float(shifts[best[2]])
        worst = max(worst, float(err[best]))
        velocity[axis] = v
    return worst, velocity


@dataclass
class ClipScore:
    colour: bool
    shape: bool
    direction: bool
    steady: bool
    motion: bool
    detail: dict = field(default_factory=dict)

    @property
    def all(self):
        return all(getattr(self, c) for c in CRITERIA)


UNSTEADY_CAUSES = ("size spread", "shape flips", "second blob", "colour changes", "lost frame")


def unsteady_causes(dets, scale=1.0):
    """Why a clip's object (its per-frame detections) is not steady; empty if it is: one object
    of one colour and shape in every frame, its size within SIZE_TOL."""
    if not all(d.found for d in dets):
        return {"lost frame"}
    sizes = [d.size for d in dets]
    checks = {"size spread": max(sizes) - min(sizes) > SIZE_TOL * scale,
              "shape flips": len({d.shape for d in dets}) > 1,
              "second blob": any(d.extra_blobs for d in dets),
              "colour changes": len({d.colour for d in dets}) > 1}
    return {cause for cause, failed in checks.items() if failed}


def score_clip(video, colour, shape, direction):
    """Score one uint8 (F, H, W, 3) clip against the prompt's colour, shape and direction."""
    F, H, W, _ = video.shape
    scale = H / 32
    dets = [detect_frame(frame, scale) for frame in video]
    found = [d for d in dets if d.found]
    if len(found) < F:
        return ClipScore(False, False, False, False, False, {"missing_frames": F - len(found)})
    colours = [d.colour for d in dets]
    shapes = [d.shape for d in dets]
    sizes = np.array([d.size for d in dets])
    centres = np.array([d.centre for d in dets])                              # (F, 2)
    majority = lambda xs: max(set(xs), key=xs.count)
    steady = not unsteady_causes(dets, scale)
    n0 = min(CLEAR_FRAMES, F)
    first_move = centres[n0 - 1] - centres[0]
    moving = np.linalg.norm(first_move) / max(n0 - 1, 1) >= MIN_SPEED * scale
    detail = {"colour": majority(colours), "shape": majority(shapes), "size": float(np.median(sizes))}
    if F > 1:
        extent = float(np.median([d.extent for d in dets]))
        path_err, velocity = fit_bouncing_path(centres, extent, W, H, scale)
        detail.update(direction=direction_of(first_move) if moving else "still", path_error=path_err,
                      speed=float(np.linalg.norm(velocity)))
        motion = moving and path_err <= PATH_TOL * scale
    else:
        detail.update(direction="still", path_error=0.0, speed=0.0)
        motion = True
    detail["direction_off"] = direction_offset(detail["direction"], direction)
    return ClipScore(detail["colour"] == colour, detail["shape"] == shape, detail["direction"] == direction,
                     steady, motion, detail)


def direction_offset(found, asked):
    """How many 45-degree steps the found direction is from the asked one (0-4); None if still."""
    if found not in ANGLES or asked not in ANGLES:
        return None
    return int(round(angle_between(ANGLES[found], ANGLES[asked]) / (np.pi / 4)))


def summarise(scores):
    """Fraction of clips right on each criterion and on everything."""
    n = max(len(scores), 1)
    out = {c: sum(getattr(s, c) for s in scores) / n for c in CRITERIA}
    out["all"] = sum(s.all for s in scores) / n
    # A graded view of direction: chance is 3/8 (the asked direction or one of its two neighbours).
    out["direction_45"] = sum(s.detail.get("direction_off") in (0, 1) for s in scores) / n
    out["clips"] = len(scores)
    return out

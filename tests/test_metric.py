"""The shapes-world scorer: true clips pass, and each kind of broken clip fails where it should."""

import numpy as np
import pytest

from vidiff.data.shapes import COLOURS, DIRECTIONS, SHAPES, ShapesWorld, shape_mask
from vidiff.eval.shapes_metric import (FILL, classify_shape, detect_frame, direction_of, direction_offset, fit_centre,
                                      score_clip, summarise)

N = 40


def score(video, clip, **prompt):
    p = {"colour": clip.colour, "shape": clip.shape, "direction": clip.direction, **prompt}
    return score_clip(video, p["colour"], p["shape"], p["direction"])


def rate(scores, criterion):
    return summarise(scores)[criterion]


@pytest.fixture(scope="module")
def world():
    return ShapesWorld(seed=7)


@pytest.fixture(scope="module")
def clips(world):
    return [world.clip(i) for i in range(N)]


# --------------------------------------------------------------------------- true clips


def test_true_clips_score_right():
    world = ShapesWorld(seed=2024)
    scores = [score(c.video, c) for c in (world.clip(i) for i in range(60))]
    s = summarise(scores)
    assert s["clips"] == 60 and s["all"] >= 0.97
    assert s["colour"] == s["shape"] == s["direction"] == s["direction_45"] == 1.0


def test_true_clips_at_64px():
    world = ShapesWorld(seed=3, height=64, width=64)
    for c in (world.clip(i) for i in range(4)):
        s = score(c.video, c)
        assert s.all, s.detail
        assert s.detail["size"] == pytest.approx(c.side, abs=1.6 * 2)


def test_detected_speed_and_size(clips):
    for c in clips[:10]:
        s = score(c.video, c)
        assert s.detail["speed"] == pytest.approx(c.speed, abs=0.3)
        assert s.detail["size"] == pytest.approx(c.side, abs=1.6)


# --------------------------------------------------------------------------- broken clips


def test_shuffled_frames_fail_motion(clips):
    rng = np.random.default_rng(0)
    scores = []
    for c in clips:
        order = rng.permutation(len(c.video))
        while (order == np.arange(len(order))).all():
            order = rng.permutation(len(c.video))
        scores.append(score(c.video[order], c))
    assert rate(scores, "motion") <= 0.2 and rate(scores, "all") <= 0.2
    assert rate(scores, "colour") == rate(scores, "shape") == 1.0    # nothing else is wrong


def test_independent_frames_fail(world, clips):
    """Every frame from a different clip of the same colour and shape: no coherent object or motion."""
    scores = []
    for i, c in enumerate(clips):
        frames = [world.clip(1000 + 20 * i + f, colour=c.colour, shape=c.shape).video[f]
                  for f in range(len(c.video))]
        scores.append(score(np.stack(frames), c))
    assert rate(scores, "motion") <= 0.2 and rate(scores, "steady") <= 0.2 and rate(scores, "all") <= 0.1


def test_drifting_colour_fails_steady(clips):
    scores = []
    for k, c in enumerate(clips):
        video = c.video.copy()
        other = [n for n in COLOURS if n != c.colour][k % 6]
        half = len(video) // 2 + k % 4
        video[half:][video[half:].any(-1)] = COLOURS[other]
        scores.append(score(video, c))
    assert not any(s.steady or s.all for s in scores)


def test_changing_shape_fails_steady(clips):
    # From frame 8 on, the object is redrawn as another shape of the same area at the same centre.
    for k, c in enumerate(clips[:12]):
        other = [n for n in SHAPES if n != c.shape][k % 2]
        side = c.side * np.sqrt(FILL[c.shape] / FILL[other])
        video = c.video.copy()
        video[8:] = 0
        video[8:][shape_mask(other, c.centres[8:], side, *video.shape[1:3])] = COLOURS[c.colour]
        s = score(video, c)
        assert not s.steady and not s.all


def misshapen(kind, cx, cy, a, h=32, w=32):
    """Boolean (h, w) blobs that are none of the three shapes, about the objects' size."""
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    dx, dy = xx - cx, yy - cy
    bar = lambda ax, ay: (np.abs(dx - ax[0]) <= ax[1]) & (np.abs(dy - ay[0]) <= ay[1])
    return {"ellipse": (dx / a) ** 2 + (dy / (a / 2)) ** 2 <= 1,
            "wide box": bar((0, a), (0, a / 2)),
            "cross": bar((0, a), (0, a / 3)) | bar((0, a / 3), (0, a)),
            "L": bar((0, a), (0.6 * a, a / 3)) | bar((-0.6 * a, a / 3), (0, a))}[kind]


@pytest.mark.parametrize("kind", ["ellipse", "wide box", "cross", "L"])
def test_a_misshapen_object_is_no_shape(kind):
    # The best-fitting ideal shape must fit well: the best fit alone would call any blob something.
    rng = np.random.default_rng(5)
    for cx, cy, a in zip(rng.uniform(12, 20, 30), rng.uniform(12, 20, 30), rng.uniform(4, 6, 30)):
        mask = misshapen(kind, cx, cy, a)
        ys, xs = np.nonzero(mask)
        assert classify_shape(mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]) is None


def test_an_object_that_turns_misshapen_fails(clips):
    for c in clips[:8]:
        video = c.video.copy()
        video[8:] = 0
        for f in range(8, len(video)):
            cx, cy = c.centres[f]
            video[f][misshapen("ellipse", cx, cy, c.side / 2 * 1.2)] = COLOURS[c.colour]
        s = score(video, c)
        assert not s.steady and not s.all


def test_vanishing_object_fails(clips):
    for k, c in enumerate(clips[:10]):
        video = c.video.copy()
        video[[2 + k % 9, 13]] = 0
        s = score(video, c)
        assert not s.all and s.detail["missing_frames"] == 2


def test_duplicated_object_fails_steady(clips):
    for c in clips[:10]:
        video = c.video.copy()
        video[8:] = np.maximum(video[8:], np.flip(c.video[8:], axis=(1, 2)))   # a mirrored twin appears
        s = score(video, c)
        assert not s.steady and not s.all


def test_static_object_fails_motion_and_direction(clips):
    for c in clips[:10]:
        s = score(np.repeat(c.video[:1], len(c.video), 0), c)
        assert s.colour and s.shape and s.steady
        assert not s.direction and not s.motion and s.detail["direction"] == "still"


def test_wrong_prompt_fails_that_criterion():
    world = ShapesWorld(seed=1)
    c = world.clip(0, colour="red", shape="circle", direction="right")
    assert score(c.video, c).all
    wrong_colour = score(c.video, c, colour="blue")
    assert not wrong_colour.colour and not wrong_colour.all
    assert wrong_colour.shape and wrong_colour.direction and wrong_colour.steady and wrong_colour.motion
    for direction in DIRECTIONS:
        if direction != "right":
            s = score(c.video, c, direction=direction)
            assert not s.direction and not s.all and s.colour and s.shape
    for shape in ("square", "triangle"):
        assert not score(c.video, c, shape=shape).shape


# --------------------------------------------------------------------------- building blocks


@pytest.mark.parametrize("name,unit", list(DIRECTIONS.items()))
def test_direction_of(name, unit):
    unit = np.asarray(unit, float)
    assert direction_of(unit) == name
    assert direction_of(3.7 * unit) == name
    angle = np.arctan2(unit[1], unit[0])
    for tilt in (-0.3, 0.3):                                    # ~17 degrees off: still nearest
        assert direction_of((np.cos(angle + tilt), np.sin(angle + tilt))) == name


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("side", [7.0, 8.5, 11.0, 14.0, 18.0, 22.0])
def test_classify_shape(shape, side):
    rng = np.random.default_rng(int(side * 10))
    for centre in rng.uniform(16, 24, size=(15, 1, 2)):
        mask = shape_mask(shape, centre, side, 40, 40)[0]
        ys, xs = np.nonzero(mask)
        assert classify_shape(mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]) == shape


@pytest.mark.parametrize("side", [7.0, 9.0, 11.0])
def test_shape_survives_a_partly_lit_edge_row(side):
    # A generated object whose edge falls between pixels draws that row half lit: some of its
    # pixels pass the foreground threshold, some don't. The shape must not change with them.
    rng = np.random.default_rng(int(side))
    for shape in ("circle", "square"):
        for _ in range(20):
            mask = shape_mask(shape, rng.uniform(14, 18, size=(1, 2)), side, 32, 32)[0]
            ys, xs = np.nonzero(mask)
            row = ys.min() - 1 if rng.random() < 0.5 else ys.max() + 1
            lit = rng.random(xs.max() + 1 - xs.min()) < rng.uniform(0.2, 0.8)
            mask[row, xs.min():xs.max() + 1] |= lit & mask[ys.min() if row < ys.min() else ys.max(), xs.min():xs.max() + 1]
            ys, xs = np.nonzero(mask)
            assert classify_shape(mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]) == shape


def test_detect_frame():
    frame = np.zeros((32, 32, 3), np.uint8)
    assert not detect_frame(frame).found
    frame[10:19, 4:13] = COLOURS["purple"]
    d = detect_frame(frame)
    assert d.found and (d.colour, d.shape) == ("purple", "square")
    assert d.centre == (8.5, 14.5) and d.size == pytest.approx(9) and d.extra_blobs == 0
    frame[25:30, 25:30] = (128, 128, 128)        # a grey blob: off-palette, and a second object
    assert detect_frame(frame).extra_blobs == 1
    frame[10:19, 4:13] = (128, 128, 128)
    assert detect_frame(frame).colour is None


@pytest.mark.parametrize("shape, worst, vs_box", [("circle", 0.3, 0.5), ("triangle", 0.5, 0.75), ("square", 0.71, 1.05)])
def test_fitted_centres_are_nearer_the_truth_than_the_box(shape, worst, vs_box):
    # True frames at random sub-pixel positions: the fitted centre is within `worst` px of the true one
    # (a square's pixels pin it no closer than half a pixel per axis) and nearer on average than the box's.
    world = ShapesWorld(seed=3)
    box, fit = [], []
    for i in range(6):
        clip = world.clip(i, shape=shape)
        for frame, true in zip(clip.video, clip.centres):
            box.append(np.hypot(*(np.array(detect_frame(frame).centre) - true)))
            fit.append(np.hypot(*(np.array(fit_centre(frame, shape)) - true)))
    assert max(fit) <= worst
    assert np.mean(fit) <= vs_box * np.mean(box)


def test_fit_centre_of_an_empty_frame_and_a_misshapen_blob():
    frame = np.zeros((32, 32, 3), np.uint8)
    assert fit_centre(frame, "circle") is None
    frame[10:12, 4:13] = COLOURS["red"]              # no shape: its box centre
    assert fit_centre(frame, None) == (8.5, 11.0)


def test_frame_wide_blob_has_a_finite_path_error():
    # An object as wide as the frame has no room to move: its path error is the distance moved,
    # not NaN (which compares as "no error" and would pass the motion check).
    from vidiff.eval.shapes_metric import fit_bouncing_path

    centres = np.stack([16.0 + 0.5 * np.arange(8), np.full(8, 16.0)], 1)
    with np.errstate(all="raise"):
        err, _ = fit_bouncing_path(centres, 32.0, 32, 32)
    assert np.isfinite(err) and err > 1.0


def test_direction_offset_counts_45_degree_steps():
    assert direction_offset("right", "right") == 0
    assert direction_offset("up-right", "right") == direction_offset("down-right", "right") == 1
    assert direction_offset("up", "right") == 2 and direction_offset("down-left", "up") == 3
    assert direction_offset("left", "right") == 4 and direction_offset("still", "right") is None

"""The shapes world follows its spec exactly: palette, shapes, sizes, motion, bounces, captions."""

import itertools
import re

import numpy as np
import pytest

from vidiff.config import DataConfig
from vidiff.data.captions import (COLOUR_WORDS, DIRECTION_WORDS, SHAPE_WORDS, SPLITS, TEMPLATES,
                                  canonical, caption)
from vidiff.data.shapes import (COLOURS, DIRECTIONS, SHAPES, ShapesWorld, all_combinations,
                                render, sample_clip, shape_mask, trajectory)
from vidiff.data.sources import video_source
from vidiff.eval.evaluate import eval_prompts

SPEC_COLOURS = {"red": (220, 40, 40), "orange": (245, 140, 30), "yellow": (240, 220, 40),
                "green": (40, 190, 70), "blue": (40, 100, 240), "purple": (150, 60, 210),
                "white": (235, 235, 235)}
SPEC_DIRECTIONS = {"right": 0, "down-right": 45, "down": 90, "down-left": 135, "left": 180,
                   "up-left": -135, "up": -90, "up-right": -45}   # degrees, y grows downwards
SIZES = [(32, 32), (64, 64), (32, 48), (48, 32)]


def clips(n, seed=0, height=32, width=32, frames=16, **kw):
    world = ShapesWorld(seed=seed, height=height, width=width, num_frames=frames, **kw)
    return [world.clip(i) for i in range(n)]


@pytest.fixture(scope="module", params=SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def sized_clips(request):
    h, w = request.param
    return h, w, clips(40, seed=11, height=h, width=w, frames=20)


# --------------------------------------------------------------------------- constants


def test_palette_shapes_directions_match_spec():
    assert COLOURS == SPEC_COLOURS
    assert SHAPES == ("circle", "square", "triangle")
    assert set(DIRECTIONS) == set(SPEC_DIRECTIONS)
    for name, (dx, dy) in DIRECTIONS.items():
        assert np.degrees(np.arctan2(dy, dx)) == pytest.approx(SPEC_DIRECTIONS[name])


def test_all_combinations():
    combos = all_combinations()
    assert len(combos) == len(set(combos)) == 7 * 3 * 8
    assert set(combos) == set(itertools.product(SPEC_COLOURS, SHAPES, SPEC_DIRECTIONS))


# --------------------------------------------------------------------------- rendering


def test_pixels_are_black_or_the_exact_colour(sized_clips):
    h, w, cs = sized_clips
    for c in cs:
        assert c.video.shape == (20, h, w, 3) and c.video.dtype == np.uint8
        colour = np.array(COLOURS[c.colour], dtype=np.uint8)
        black = (c.video == 0).all(-1)
        painted = (c.video == colour).all(-1)
        assert (black | painted).all()
        assert painted.any(axis=(1, 2)).all()          # the object is in every frame


def test_side_and_speed_in_range_and_scaled(sized_clips):
    h, w, cs = sized_clips
    scale = h / 32
    sides = np.array([c.side for c in cs]) / scale
    speeds = np.array([c.speed for c in cs]) / scale
    assert ((sides >= 7) & (sides <= 11)).all() and ((speeds >= 1) & (speeds <= 2)).all()
    assert np.ptp(sides) > 2 and np.ptp(speeds) > 0.5   # actually drawn over the range, not fixed


def _bbox(mask):
    ys, xs = np.nonzero(mask)
    return xs.min(), xs.max() + 1, ys.min(), ys.max() + 1    # pixel edges


def test_bounding_box_matches_centre_and_side(sized_clips):
    _, _, cs = sized_clips
    for c in cs:
        # Pixels are painted when their centre is inside, so a box edge may lose up to a pixel;
        # a triangle's one-pixel-thin apex and base rows may both miss, hence 2 px short there.
        short = 2 if c.shape == "triangle" else 1
        for frame, (cx, cy) in zip(c.video, c.centres):
            x0, x1, y0, y1 = _bbox(frame.any(-1))
            assert abs((x0 + x1) / 2 - cx) <= 1 and abs((y0 + y1) / 2 - cy) <= 1
            for extent in (x1 - x0, y1 - y0):
                assert c.side - short <= extent <= c.side + 1


@pytest.mark.parametrize("side", [7.0, 9.3, 11.0, 14.0, 22.0])
def test_triangle_apex_up_flat_base_down(side):
    rng = np.random.default_rng(int(side * 10))
    for centre in rng.uniform(15, 25, size=(10, 1, 2)):
        mask = shape_mask("triangle", centre, side, 40, 40)[0]
        x0, x1, y0, y1 = _bbox(mask)
        widths = mask[y0:y1].sum(1)
        assert widths[0] < widths[-1] and widths[-1] >= side - 1
        assert (np.diff(widths) >= 0).all()            # widens monotonically downwards
        assert abs((y1 - y0) - side) <= 1 and abs((x1 - x0) - side) <= 1


def test_render_paints_the_mask():
    centres = np.array([[10.0, 12.0], [20.0, 15.0]])
    video = render("square", "green", centres, 8.0, 32, 32)
    mask = shape_mask("square", centres, 8.0, 32, 32)
    assert (video[mask] == COLOURS["green"]).all() and (video[~mask] == 0).all()
    with pytest.raises(ValueError, match="circle"):
        shape_mask("hexagon", centres, 8.0, 32, 32)


# --------------------------------------------------------------------------- motion


def _simulate(start, velocity, lo, hi, frames):
    """An independent oracle: step, and reflect off a wall by flipping that velocity component.

    Returns the centres (F, 2) and the velocity after each step (F - 1, 2).
    """
    pos, vel, out, vels = np.array(start, float), np.array(velocity, float), [], []
    for _ in range(frames):
        out.append(pos.copy())
        pos = pos + vel
        for a in range(2):
            if pos[a] > hi[a]:
                pos[a], vel[a] = 2 * hi[a] - pos[a], -vel[a]
            elif pos[a] < lo[a]:
                pos[a], vel[a] = 2 * lo[a] - pos[a], -vel[a]
        vels.append(vel.copy())
    return np.array(out), np.array(vels[:-1])


def test_trajectory_is_an_elastic_bounce():
    rng = np.random.default_rng(0)
    lo, hi = np.array([4.0, 5.0]), np.array([28.0, 26.0])
    for _ in range(50):
        start = rng.uniform(lo, hi)
        velocity = rng.uniform(-2.5, 2.5, size=2)
        got = trajectory(start, velocity, lo, hi, 60)
        np.testing.assert_allclose(got, _simulate(start, velocity, lo, hi, 60)[0], atol=1e-9)


def test_clip_motion_follows_the_spec(sized_clips):
    h, w, cs = sized_clips
    for c in cs:
        r = c.side / 2
        lo, hi = np.array([r, r]), np.array([w - r, h - r])
        assert (c.centres >= lo - 1e-9).all() and (c.centres <= hi + 1e-9).all()
        unit = np.array(DIRECTIONS[c.direction], float)
        velocity = c.speed * unit / np.linalg.norm(unit)
        # First 4 frames: exactly the stated direction and speed, no wall touched.
        head = c.centres[:4]                            # the spec says 4 clear frames
        np.testing.assert_allclose(np.diff(head, axis=0), np.tile(velocity, (3, 1)), atol=1e-9)
        assert ((head > lo) & (head < hi)).all()
        # Whole clip: the bouncing path. Per axis |step| is the speed's component except on the
        # steps where that component flips (a wall hit), and the speed never changes.
        expected, velocities = _simulate(c.centres[0], velocity, lo, hi, len(c.centres))
        np.testing.assert_allclose(c.centres, expected, atol=1e-9)
        np.testing.assert_allclose(np.abs(velocities), np.abs(velocity)[None].repeat(len(velocities), 0))
        steps = np.abs(np.diff(c.centres, axis=0))
        flipped = np.sign(velocities) != np.sign(velocity)[None]
        bounce = np.vstack([flipped[:1], flipped[1:] != flipped[:-1]])     # the step where a flip happens
        np.testing.assert_allclose(steps[~bounce], np.abs(velocity)[None].repeat(len(steps), 0)[~bounce],
                                   atol=1e-9)
        assert (steps[bounce] <= np.abs(velocity)[None].repeat(len(steps), 0)[bounce] + 1e-9).all()


def test_clips_do_bounce():
    cs = clips(30, seed=3, frames=40)
    flips = sum((np.diff(np.sign(np.diff(c.centres, axis=0)), axis=0) != 0).any() for c in cs)
    assert flips >= 25     # 40 frames at >= 1 px/frame in a ~22 px box: almost every clip bounces


# --------------------------------------------------------------------------- the world


def test_determinism():
    a, b = ShapesWorld(seed=5), ShapesWorld(seed=5)
    for i in range(5):
        x, y = a.clip(i), b.clip(i)
        assert (x.video == y.video).all() and x.caption == y.caption
        assert (x.colour, x.shape, x.direction, x.side, x.speed) == (y.colour, y.shape, y.direction, y.side, y.speed)
    assert not np.array_equal(a.clip(0).video, a.clip(1).video)
    assert not np.array_equal(a.clip(0).video, ShapesWorld(seed=6).clip(0).video)


def test_fixed_attributes():
    world = ShapesWorld(seed=1)
    for i in range(10):
        c = world.clip(i, colour="blue", shape="triangle", direction="up-left")
        assert (c.colour, c.shape, c.direction) == ("blue", "triangle", "up-left")


def test_exclude_never_yields_excluded():
    excluded = [c for c in all_combinations() if c[0] == "red" or c[2] == "up"] + [("blue", "square", "left")]
    world = ShapesWorld(seed=2, exclude=excluded)
    seen = {(c.colour, c.shape, c.direction) for c in (world.clip(i) for i in range(300))}
    assert not seen & set(excluded) and len(seen) > 50
    # Fixing a part of the prompt still avoids the rest of the excluded set.
    for i in range(20):
        c = world.clip(i, shape="square", colour="blue")
        assert (c.colour, c.shape, c.direction) not in set(excluded)


def test_exclude_everything_raises_instead_of_hanging():
    import signal

    def hang(*_):
        raise TimeoutError("ShapesWorld.clip kept redrawing excluded clips")

    signal.signal(signal.SIGALRM, hang)
    signal.alarm(20)
    try:
        _exclude_everything()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)


def _exclude_everything():
    with pytest.raises(ValueError, match="excluded"):
        ShapesWorld(exclude=all_combinations()).clip(0)
    world = ShapesWorld(exclude=[("red", "circle", d) for d in DIRECTIONS])
    with pytest.raises(ValueError, match="excluded"):
        world.clip(0, colour="red", shape="circle")
    assert world.clip(0, colour="red").shape != "circle"


def test_batch():
    import torch

    world = ShapesWorld(seed=4, num_frames=8)
    x, captions = world.batch(10, 3)
    assert x.shape == (3, 3, 8, 32, 32) and x.dtype == torch.float32 and len(captions) == 3
    assert x.min() >= -1 and x.max() <= 1 and x.min() == -1
    for k in range(3):
        c = world.clip(10 + k)
        assert captions[k] == c.caption
        expected = torch.from_numpy(c.video).permute(3, 0, 1, 2).float() / 127.5 - 1
        assert torch.equal(x[k], expected)


# --------------------------------------------------------------------------- captions


def _template_regex(template, split):
    pattern = re.escape(template)
    pattern = pattern.replace(re.escape("{a}") + r"\ ", r"(?:(?P<article>a|an|the|one)\ )?")
    pattern = pattern.replace(re.escape("{a}"), r"(?P<article>a|an|the|one)")
    for slot, vocab in (("colour", COLOUR_WORDS), ("shape", SHAPE_WORDS), ("direction", DIRECTION_WORDS)):
        words = sorted({w for ws in vocab[split].values() for w in ws}, key=len, reverse=True)
        pattern = pattern.replace(re.escape("{" + slot + "}"),
                                  f"(?P<{slot}>{'|'.join(map(re.escape, words))})")
    return re.compile(pattern + "$")


def _parse(text, split):
    """Match a caption against the split's templates; the slot words must be that split's words."""
    text = text[0].lower() + text[1:]
    matches = {t: m for t in TEMPLATES[split] if (m := _template_regex(t, split).match(text))}
    assert matches, f"{text!r} matches no {split} template"
    return set(matches), next(iter(matches.values())).groupdict()


def _class_of(word, vocab):
    classes = [k for k, words in vocab.items() if word in words]
    assert len(classes) == 1, word
    return classes[0]


@pytest.mark.parametrize("split", SPLITS)
def test_captions_name_the_right_class(split):
    rng = np.random.default_rng(0)
    templates = set()
    for colour, shape, direction in all_combinations():
        for _ in range(3):
            text = caption(rng, colour, shape, direction, split=split)
            matched, slots = _parse(text, split)
            templates |= matched
            assert _class_of(slots["colour"], COLOUR_WORDS[split]) == colour
            assert _class_of(slots["shape"], SHAPE_WORDS[split]) == shape
            assert _class_of(slots["direction"], DIRECTION_WORDS[split]) == direction
            article = slots.get("article")
            if article in ("a", "an"):
                following = text.lower().split(article + " ", 1)[1]
                assert article == ("an" if following[0] in "aeiou" else "a"), text
    assert templates == set(TEMPLATES[split])


def test_train_captions_mention_words_of_the_class():
    """Plain word check too, independent of the template parsing above."""
    for c in clips(300, seed=9):
        text = c.caption.lower()
        for vocab, name in ((COLOUR_WORDS, c.colour), (SHAPE_WORDS, c.shape), (DIRECTION_WORDS, c.direction)):
            assert any(re.search(rf"\b{re.escape(w)}\b", text) for w in vocab["train"][name]), (text, name)
        others = [w for k, ws in COLOUR_WORDS["train"].items() if k != c.colour for w in ws]
        assert not any(re.search(rf"\b{re.escape(w)}\b", text) for w in others), text


def test_captions_vary():
    rng = np.random.default_rng(1)
    fixed = [caption(rng, "red", "circle", "right") for _ in range(300)]
    assert len(set(fixed)) >= 60
    assert any(t[0].isupper() for t in fixed) and any(t[0].islower() for t in fixed)
    assert any(not re.match(r"(?i)(a|an|the|one) ", t) for t in fixed)   # article sometimes dropped
    assert len({c.caption for c in clips(300, seed=10)}) >= 250


@pytest.mark.parametrize("split", ["train", "wide"])
def test_heldout_vocabulary_is_disjoint_from_training(split):
    for vocab in (COLOUR_WORDS, SHAPE_WORDS, DIRECTION_WORDS):
        train = {w for ws in vocab[split].values() for w in ws}
        heldout = {w for ws in vocab["heldout"].values() for w in ws}
        assert vocab[split].keys() == vocab["heldout"].keys()
        assert all(vocab["heldout"].values()) and not train & heldout
        assert all(len(set(ws)) == len(ws) for ws in vocab[split].values())
    assert not set(TEMPLATES[split]) & set(TEMPLATES["heldout"])
    # the held-out split's distinctive words never appear in a training caption
    rng = np.random.default_rng(4)
    texts = " ".join(caption(rng, *combo, split=split).lower() for combo in all_combinations() for _ in range(4))
    for word in ("crimson", "scarlet", "tangerine", "lemon", "emerald", "azure", "plum", "lilac", "snow",
                 "dot", "disk", "block", "tile", "triangular", "pyramid", "east", "west", "top", "bottom",
                 "corner", "upper", "lower", "towards", "watch", "travel", "drifts", "heading", "there is"):
        assert not re.search(rf"\b{word}\b", texts), word


def test_wide_wording_extends_train_and_feeds_training():
    for vocab in (COLOUR_WORDS, SHAPE_WORDS, DIRECTION_WORDS, TEMPLATES):
        train, wide = vocab["train"], vocab["wide"]
        if isinstance(train, dict):
            assert all(set(train[k]) < set(wide[k]) for k in train)
        else:
            assert set(train) < set(wide)
    world = video_source(DataConfig(wording="wide", seed=5))
    texts = [world.clip(i).caption for i in range(200)]
    assert any(_parse(t, "wide")[0] - set(TEMPLATES["train"]) for t in texts)


def test_heldout_split_through_the_world():
    for c in clips(20, seed=3, caption_split="heldout"):
        _, slots = _parse(c.caption, "heldout")
        assert _class_of(slots["colour"], COLOUR_WORDS["heldout"]) == c.colour
    with pytest.raises(ValueError, match="train"):
        sample_clip(np.random.default_rng(0), caption_split="test")


def test_canonical():
    assert canonical("red", "circle", "right") == "a red circle moving right"
    assert canonical("orange", "square", "up-left") == "an orange square moving up and to the left"
    for colour, shape, direction in all_combinations():
        text = canonical(colour, shape, direction)
        assert text.startswith("an " if colour[0] in "aeiou" else "a ")
        _, slots = _parse(text, "train")
        assert (slots["colour"], slots["shape"]) == (colour, shape)
        assert _class_of(slots["direction"], DIRECTION_WORDS["train"]) == direction


@pytest.mark.parametrize("phrasing", ["train", "wide", "heldout"])
def test_eval_prompts_use_the_asked_vocabulary(phrasing):
    items = eval_prompts(phrasing, 1)
    assert len(items) == len(all_combinations())
    for it in items:
        _, slots = _parse(it.prompt, phrasing)
        assert _class_of(slots["colour"], COLOUR_WORDS[phrasing]) == it.colour
        assert _class_of(slots["direction"], DIRECTION_WORDS[phrasing]) == it.direction

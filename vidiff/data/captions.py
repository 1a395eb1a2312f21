"""Captions for shapes-world clips, worded the way people write.

Disjoint vocabularies: "train" wordings feed training, "heldout" wordings
(other synonyms and sentence shapes) are kept for evaluation only, so a score
on them measures whether the model follows meaning rather than one template.
"wide" is "train" plus more synonyms and word orders, none of them held out
(`data.wording`). A model reads an unseen word only through where the text
encoder puts it; more training words help only where that is near a word of
the same meaning (benchmarks/wording.py measures how often it is).
"""

import re

COLOUR_WORDS = {
    "train": {
        "red": ["red", "bright red", "cherry red", "ruby"], "orange": ["orange", "amber", "bright orange"],
        "yellow": ["yellow", "canary yellow", "sunny yellow"], "green": ["green", "lime green", "leaf green"],
        "blue": ["blue", "sky blue", "cobalt", "navy blue"], "purple": ["purple", "violet", "lavender"],
        "white": ["white", "ivory", "milky white"],
    },
    "heldout": {
        "red": ["crimson", "scarlet"], "orange": ["tangerine", "orange-coloured"],
        "yellow": ["golden yellow", "lemon"], "green": ["emerald", "grass-green"],
        "blue": ["azure", "deep blue"], "purple": ["lilac-purple", "plum"],
        "white": ["snow-white", "pale white"],
    },
}
SHAPE_WORDS = {
    "train": {"circle": ["circle", "ball", "disc", "orb"], "square": ["square", "box", "cube"],
              "triangle": ["triangle", "wedge"]},
    "heldout": {"circle": ["round dot", "disk"], "square": ["block", "square tile"],
                "triangle": ["triangular shape", "pyramid shape"]},
}
DIRECTION_WORDS = {
    "train": {
        "right": ["right", "to the right", "rightwards", "across to the right"],
        "left": ["left", "to the left", "leftwards", "across to the left"],
        "up": ["up", "upwards", "up the screen"], "down": ["down", "downwards", "down the screen"],
        "up-right": ["up and to the right", "diagonally up-right"],
        "up-left": ["up and to the left", "diagonally up-left"],
        "down-right": ["down and to the right", "diagonally down-right"],
        "down-left": ["down and to the left", "diagonally down-left"],
    },
    "heldout": {
        "right": ["towards the east", "rightward"],
        "left": ["towards the west", "leftward"],
        "up": ["towards the top", "upward"], "down": ["towards the bottom", "downward"],
        "up-right": ["towards the top right corner", "to the upper right"],
        "up-left": ["towards the top left corner", "to the upper left"],
        "down-right": ["towards the bottom right corner", "to the lower right"],
        "down-left": ["towards the bottom left corner", "to the lower left"],
    },
}
TEMPLATES = {
    "train": [
        "{a} {colour} {shape} moving {direction}",
        "{a} {colour} {shape} moves {direction}",
        "{colour} {shape} moving {direction}",
        "{a} {colour} {shape} going {direction}",
        "{a} {colour} {shape} that moves {direction}",
        "{a} {colour} {shape} sliding {direction} on a black background",
        "{a} {colour} {shape} is gliding {direction}",
        "{a} {colour} {shape} floating {direction}",
    ],
    "heldout": [
        "watch {a} {colour} {shape} travel {direction}",
        "{direction}, {a} {colour} {shape} drifts",
        "there is {a} {colour} {shape} heading {direction}",
    ],
}

# More of everything, still disjoint from the held-out words (no east/west, top/bottom, corners,
# "towards", "travel", "heading", "drifts").
_MORE_COLOURS = {
    "red": ["rose red", "blood red", "brick red", "tomato red", "reddish"],
    "orange": ["pumpkin orange", "apricot", "carrot orange", "marigold", "orangey"],
    "yellow": ["butter yellow", "mustard", "sunflower yellow", "banana yellow", "yellowish"],
    "green": ["forest green", "jade", "mint green", "olive green", "greenish"],
    "blue": ["royal blue", "sapphire", "ocean blue", "cerulean", "bluish"],
    "purple": ["mauve", "amethyst", "grape purple", "orchid", "purplish"],
    "white": ["pure white", "chalk white", "pearl white", "bone white", "whitish"],
}
_MORE_SHAPES = {"circle": ["sphere", "bubble", "coin", "puck"], "square": ["crate", "quad", "four-sided box"],
                "triangle": ["arrowhead", "delta", "three-sided figure"]}
_MORE_DIRECTIONS = {
    "right": ["from left to right", "off to the right", "sideways to the right"],
    "left": ["from right to left", "off to the left", "sideways to the left"],
    "up": ["straight up", "up the frame", "skywards"],
    "down": ["straight down", "down the frame", "groundwards"],
    "up-right": ["up and right", "right and up", "on a diagonal up and right"],
    "up-left": ["up and left", "left and up", "on a diagonal up and left"],
    "down-right": ["down and right", "right and down", "on a diagonal down and right"],
    "down-left": ["down and left", "left and down", "on a diagonal down and left"],
}
_MORE_TEMPLATES = [
    "{a} {shape} in {colour} moving {direction}",
    "{a} {colour} {shape} slides {direction}",
    "{a} {colour} {shape} shifting {direction}",
    "{colour} {shape}, going {direction}",
    "moving {direction}: {a} {colour} {shape}",
    "{a} {colour} {shape} which goes {direction}",
    "{a} {colour} {shape} on the move, going {direction}",
    "{a} {colour} {shape} zooms {direction}",
    "{a} {shape}, coloured {colour}, moving {direction}",
]
for _vocab, _more in ((COLOUR_WORDS, _MORE_COLOURS), (SHAPE_WORDS, _MORE_SHAPES),
                      (DIRECTION_WORDS, _MORE_DIRECTIONS)):
    _vocab["wide"] = {k: words + _more[k] for k, words in _vocab["train"].items()}
TEMPLATES["wide"] = TEMPLATES["train"] + _MORE_TEMPLATES
SPLITS = tuple(TEMPLATES)
# Stills show no motion, so their captions name only colour and shape.
STILL_TEMPLATES = ["{a} {colour} {shape}", "{a} {colour} {shape} on a black background",
                   "a picture of {a} {colour} {shape}", "{colour} {shape}"]


def caption(rng, colour, shape, direction, split="train"):
    """One random wording of (colour, shape, direction) from the given vocabulary split."""
    if split not in SPLITS:
        raise ValueError(f"caption split must be one of {SPLITS}, got {split!r}")
    colour_word = rng.choice(COLOUR_WORDS[split][colour])
    shape_word = rng.choice(SHAPE_WORDS[split][shape])
    direction_word = rng.choice(DIRECTION_WORDS[split][direction])
    template = rng.choice(TEMPLATES[split])
    article = rng.choice(["a", "the", "one"])
    text = template.format(a=article, colour=colour_word, shape=shape_word,
                           direction=direction_word)
    if template.startswith("{a}") and rng.random() < 0.25:
        text = text.split(" ", 1)[1]   # people often drop the article
    text = re.sub(r"\ba ([aeiou])", r"an \1", text)
    return text[0].upper() + text[1:] if rng.random() < 0.3 else text


def still_caption(rng, colour, shape):
    """One random training wording of (colour, shape) for a still image."""
    text = rng.choice(STILL_TEMPLATES).format(a=rng.choice(["a", "the", "one"]),
                                              colour=rng.choice(COLOUR_WORDS["train"][colour]),
                                              shape=rng.choice(SHAPE_WORDS["train"][shape]))
    return re.sub(r"\ba ([aeiou])", r"an \1", text)


def canonical(colour, shape, direction):
    """The plain wording used for default prompts: 'a red circle moving right'."""
    return re.sub(r"\ba ([aeiou])", r"an \1",
                  f"a {colour} {shape} moving {DIRECTION_WORDS['train'][direction][0]}")

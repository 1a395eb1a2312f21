"""Held-out combinations: a model records what it never trained on, and eval scores those apart."""

import numpy as np

from vidiff.config import DiffusionConfig, SampleConfig
from vidiff.data.shapes import ShapesWorld
from vidiff.eval.evaluate import eval_prompts, evaluate
from vidiff.models.unet import UNetConfig, VideoUNet
from vidiff.pipeline import VideoPipeline

HELD = [["red", "circle", "left"], ["red", "square", "up"]]


class Oracle:
    """True clips for combinations trained on, a still frame for held-out ones (test-only: reads the renderer)."""

    holdout = HELD

    def __init__(self, items):
        world = ShapesWorld(3, 16, 32, 32)
        self.clips = {it.prompt: world.clip(i, colour=it.colour, shape=it.shape, direction=it.direction).video
                      for i, it in enumerate(items)}
        self.held = {it.prompt for it in items if [it.colour, it.shape, it.direction] in HELD}

    def __call__(self, prompts, **_):
        out = []
        for p in prompts:
            video = self.clips[p]
            out.append(np.repeat(video[:1], len(video), 0) if p in self.held else video)
        return np.stack(out)


def test_eval_scores_held_out_combinations_apart():
    items = eval_prompts("canonical", 1)[:12]          # red circles, every direction; red squares, four
    summary, rows = evaluate(Oracle(items), items, batch_size=5, progress=False)
    assert summary["held_out"]["clips"] == 2 and summary["trained_on"]["clips"] == 10
    assert summary["held_out"]["all"] == 0 and summary["trained_on"]["all"] >= 0.9
    assert [r["prompt"] for r in rows if r["held_out"]] == ["a red circle moving left", "a red square moving up"]


def test_a_model_without_holdout_has_no_split():
    class Plain(Oracle):
        holdout = ()

    items = eval_prompts("canonical", 1)[:3]
    summary, rows = evaluate(Plain(items), items, progress=False)
    assert "held_out" not in summary and "held_out" not in rows[0]


def test_holdout_round_trips_through_a_model_directory(tmp_path, text_encoder):
    net = VideoUNet(UNetConfig(channels=[16, 32], attention_levels=[1], emb_dim=32, head_dim=8))
    VideoPipeline(net, DiffusionConfig(), SampleConfig(), 4, 16, text_encoder, holdout=HELD).save_pretrained(tmp_path / "m")
    pipe = VideoPipeline.from_pretrained(tmp_path / "m", text_encoder=text_encoder)
    assert pipe.holdout == HELD
    assert "holdout" not in VideoPipeline(net, DiffusionConfig(), SampleConfig(), 4, 16, text_encoder).config_dict()

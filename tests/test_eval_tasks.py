"""The known-frame task scorers: true clips score right, broken ones do not; a real model runs each task."""

import numpy as np
import pytest
import torch

from vidiff.cli import main
from vidiff.config import DiffusionConfig, SampleConfig
from vidiff.data.captions import canonical
from vidiff.data.shapes import ShapesWorld
from vidiff.eval.tasks import EVAL_SEED, LONG_FRAMES, run_task, task_items
from vidiff.models.unet import UNetConfig, VideoUNet
from vidiff.pipeline import VideoPipeline


class Oracle:
    """Answers every task with the true clip (test-only: it reads the renderer); `broken` spoils it."""
    frames, size = 16, 32

    def __init__(self, items, broken=False):
        self.broken = broken
        self.truth = {}
        for length in (16, 13):
            world = ShapesWorld(EVAL_SEED, length, 32, 32)
            for c, s, d, i in items:
                clip = world.clip(i, colour=c, shape=s, direction=d)
                self.truth[(length, clip.video[0].tobytes())] = clip.video
        self.long = {(c, s, d): ShapesWorld(5, LONG_FRAMES, 32, 32).clip(i, colour=c, shape=s, direction=d).video
                     for c, s, d, i in items}
        self.items = items

    def _spoil(self, video, keep):
        if not self.broken:
            return video[None]
        rest = np.random.default_rng(0).permutation(np.arange(keep, len(video)))
        return video[np.r_[np.arange(keep), rest]][None]           # given frames kept, the rest shuffled

    def __call__(self, prompt, image=None, num_frames=None, **_):
        if image is not None:
            return self._spoil(self.truth[(16, image.tobytes())], 1)
        combo = next(it[:3] for it in self.items if canonical(*it[:3]) == prompt)
        return self._spoil(self.long[combo], 0)

    def extend(self, video, prompt, num_frames, **_):
        return self._spoil(self.truth[(16, video[0].tobytes())], len(video))

    def interpolate(self, video, prompt="", factor=2, **_):
        return self._spoil(self.truth[(13, video[0].tobytes())], 1)


@pytest.mark.parametrize("task", ["i2v", "extend", "interp", "long"])
def test_true_clips_score_right_and_shuffled_ones_do_not(task):
    items = [it for it in task_items(1) if it[2] in ("right", "down-left")][:6]
    good, _ = run_task(Oracle(items), task, items, progress=False)
    bad, _ = run_task(Oracle(items, broken=True), task, items, progress=False)
    assert good["right"] >= 5 / 6 and bad["right"] <= 1 / 6, (good, bad)
    if task == "long":
        assert good["seam_jump_mean"] < 1.0 and bad["seam_jump_mean"] > good["seam_jump_mean"]
    elif task != "i2v":           # i2v's error is frame 0's, the given frame, in both
        assert good["median_error"] < 0.8 and bad["median_error"] > 2   # pixel grid: true centres err < 0.71


def test_every_task_runs_on_a_real_model(text_encoder):
    torch.manual_seed(0)
    net = VideoUNet(UNetConfig(channels=[16, 32], attention_levels=[1], emb_dim=32, head_dim=8,
                               frame_conditioning=True))
    pipe = VideoPipeline(net, DiffusionConfig(), SampleConfig(steps=2), frames=8, size=16, text_encoder=text_encoder)
    items = task_items(1)[:2]
    for task in ("i2v", "extend", "interp", "long"):
        summary, rows = run_task(pipe, task, items, progress=False)
        assert summary["clips"] == 2 and 0 <= summary["right"] <= 1 and len(rows) == 2


def test_tasks_need_a_frame_conditioned_model(capsys, tmp_path, text_encoder):
    net = VideoUNet(UNetConfig(channels=[16, 32], attention_levels=[1], emb_dim=32, head_dim=8))
    VideoPipeline(net, DiffusionConfig(), SampleConfig(), 4, 16, text_encoder).save_pretrained(tmp_path / "plain")
    assert main(["eval", "--task", "i2v", "--limit", "1", "--model", str(tmp_path / "plain")]) == 2
    assert "frame-conditioned" in capsys.readouterr().err

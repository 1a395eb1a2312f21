"""Joint image-video training, real-video training from the CLI, and inflation of image models."""

import json

import numpy as np
import pytest
import torch

from vidiff.cli import main
from vidiff.config import ConfigError, load_config
from vidiff.data.captions import DIRECTION_WORDS
from vidiff.data.sources import StepBatches
from vidiff.io.video import save_video
from vidiff.models.inflate import inflate
from vidiff.models.unet import UNetConfig, VideoUNet
from vidiff.pipeline import VideoPipeline
from vidiff.training.loop import train

TINY = ["model.channels=[16, 32]", "model.attention_levels=[1]", "model.emb_dim=32", "model.head_dim=8",
        "data.frames=4", "data.size=16", "optim.batch_size=4", "optim.warmup_steps=2",
        "sample_every=0", "log_every=1", "save_every=2"]


def log_of(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_image_steps_are_one_frame_batches_of_stills():
    cfg = load_config("configs/shapes-s.toml", TINY + ["data.images=shapes", "data.image_ratio=0.5"]).data
    data = StepBatches(cfg, batch_size=4)
    kinds = [data.is_image(k) for k in range(200)]
    assert 0.35 < np.mean(kinds) < 0.65 and kinds == [StepBatches(cfg, 4).is_image(k) for k in range(200)]
    k = kinds.index(True)
    x, captions, kind, _ = data[k]
    assert kind == "images" and x.shape == (16, 3, 1, 16, 16)   # batch_size * frames pictures: the same pixels
    words = {w for ws in DIRECTION_WORDS["train"].values() for phrase in ws for w in phrase.split()} - {"to", "the", "and"}
    assert not any(set(c.lower().split()) & words for c in captions)   # stills: colour and shape only
    x, captions, kind, _ = data[kinds.index(False)]
    assert kind == "clips" and x.shape == (4, 3, 4, 16, 16)


def test_long_steps_are_fewer_longer_clips_of_their_own_stream():
    cfg = load_config("configs/shapes-s.toml", TINY + ["data.long_frames=8", "data.long_ratio=0.3"]).data
    data = StepBatches(cfg, batch_size=4)
    kinds = [data.kind(k) for k in range(200)]
    assert 0.2 < kinds.count("long") / 200 < 0.4 and set(kinds) == {"clips", "long"}
    x, captions, kind, _ = data[kinds.index("long")]
    assert kind == "long" and x.shape == (2, 3, 8, 16, 16) and len(captions) == 2   # same pixels a step
    # The usual clips are the same stream as without long steps; long ones are not a copy of them.
    plain = StepBatches(load_config("configs/shapes-s.toml", TINY).data, batch_size=4)
    k = kinds.index("clips")
    assert torch.equal(data[k][0], plain[k][0])
    assert not torch.equal(x[:, :, :4], plain.videos.batch(kinds.index("long") * 2, 2)[0])
    # The clip's path is one path: frames 4..7 follow on from 0..3 (no cut in the middle).
    centres = [(f.float().sum(0) > 0).nonzero().float().mean(0) for f in x[0].unbind(1)]
    steps = torch.stack([b - a for a, b in zip(centres, centres[1:])]).norm(dim=1)
    assert steps.max() < 6


@pytest.mark.parametrize("extra, message", [(["data.long_frames=4"], "longer than"),
                                            (["data.long_frames=8", "data.image_ratio=0.8",
                                              "data.images=shapes"], "at most 1")])
def test_long_steps_are_checked(extra, message):
    cfg = load_config("configs/shapes-s.toml", TINY + ["data.long_ratio=0.5"] + extra).data
    with pytest.raises(ConfigError, match=message):
        StepBatches(cfg, batch_size=4)


def test_a_finite_set_of_clips_repeats():
    cfg = load_config("configs/shapes-s.toml", TINY + ["data.num_clips=6"]).data
    videos = StepBatches(cfg, batch_size=4).videos
    a, b = videos.batch(0, 12)[0], videos.batch(6, 6)[0]
    assert torch.equal(a[6:], b) and not torch.equal(a[:6], a[6:].flip(0))


def test_joint_training_runs_and_counts_both(tmp_path):
    cfg = load_config("configs/shapes-s.toml", TINY + [f"out_dir={tmp_path}", "optim.steps=6",
                                                       "data.images=shapes", "data.image_ratio=0.5"])
    losses = train(cfg, progress=False)
    assert len(losses) == 6 and all(np.isfinite(losses))
    last = log_of(tmp_path)[-1]
    assert last["images_seen"] > 0 and last["clips_seen"] > 0
    assert last["images_seen"] + 4 * last["clips_seen"] == 16 * 6    # each step is 16 pictures or 4 clips


def test_training_with_long_clips_runs(tmp_path):
    cfg = load_config("configs/shapes-s.toml", TINY + [
        f"out_dir={tmp_path}", "optim.steps=6", "data.known_frames=0.5", "model.frame_conditioning=true",
        "model.time_levels=[0]", "data.long_frames=8", "data.long_ratio=0.5"])
    losses = train(cfg, progress=False)
    assert len(losses) == 6 and all(np.isfinite(losses))
    kinds = [StepBatches(cfg.data, 4).kind(k) for k in range(6)]
    assert "long" in kinds and "clips" in kinds
    assert log_of(tmp_path)[-1]["clips_seen"] == sum(2 if k == "long" else 4 for k in kinds)


def test_long_steps_given_a_prefix_make_more_frames_than_a_window(tmp_path, loss_masks):
    train(load_config("configs/shapes-s.toml", TINY + [
        f"out_dir={tmp_path}", "optim.steps=6", "model.frame_conditioning=true", "model.time_levels=[0]",
        "data.known_frames=1.0", "data.known_half=1.0", "data.known_prefix=2",
        "data.long_frames=8", "data.long_ratio=0.5"]), progress=False)
    masks = [m for _, m in loss_masks]
    assert {m.shape[1] for m in masks} == {4, 8}                        # both kinds of step ran
    for m in masks:                                                     # each clip given its first 2 frames
        assert (m[:, :2] == 1).all() and (m[:, 2:] == 0).all()


def test_long_clips_must_fit_the_space_time_unet(tmp_path):
    cfg = load_config("configs/shapes-s.toml", TINY + [
        f"out_dir={tmp_path}", "model.time_levels=[0]", "data.long_frames=7", "data.long_ratio=0.5"])
    with pytest.raises(ConfigError, match="data.long_frames = 7 must divide by 2"):
        train(cfg, progress=False)
    assert not (tmp_path / "checkpoints").exists()


def test_trains_and_resumes_on_a_folder_of_real_videos(tmp_path, capsys):
    folder = tmp_path / "videos"
    rng = np.random.default_rng(0)
    for i in range(3):
        frames = rng.integers(0, 255, (10, 24, 32, 3), dtype=np.uint8)
        save_video(frames, folder / f"clip{i}.mp4")
        (folder / f"clip{i}.txt").write_text(f"clip number {i}")
    (folder / "broken.mp4").write_bytes(b"not a video at all")
    (folder / "broken.txt").write_text("a clip that will not decode")
    run = tmp_path / "run"
    args = ["train", "configs/shapes-s.toml", *TINY, f"out_dir={run}", f"data.videos={folder}", "optim.steps=4"]
    assert main(args + ["--max-steps", "2"]) in (0, None)
    assert main(args + ["--resume"]) in (0, None)
    assert [r["step"] for r in log_of(run)] == [1, 2, 3, 4]
    assert "used 3 files, skipped 1: 1 unreadable" in capsys.readouterr().out
    assert VideoPipeline.from_pretrained(run / "model").frames == 4


def test_a_folder_serving_both_clip_lengths_names_each_summary(tmp_path, capsys):
    folder = tmp_path / "videos"
    for i in range(2):
        save_video(np.random.default_rng(i).integers(0, 255, (10, 16, 16, 3), dtype=np.uint8), folder / f"c{i}.mp4")
        (folder / f"c{i}.txt").write_text(f"clip {i}")
    save_video(np.zeros((6, 16, 16, 3), np.uint8), folder / "short.mp4")   # enough for 4 frames, not 8
    (folder / "short.txt").write_text("a short clip")
    assert main(["train", "configs/shapes-s.toml", *TINY, f"out_dir={tmp_path / 'run'}", f"data.videos={folder}",
                 "model.time_levels=[0]", "data.long_frames=8", "data.long_ratio=0.5", "optim.steps=2"]) in (0, None)
    out = capsys.readouterr().out
    assert f"data {folder} (4-frame clips): used 3 files, skipped 0" in out
    assert f"data {folder} (8-frame clips): used 2 files, skipped 1: 1 too short" in out


def image_model():
    torch.manual_seed(0)
    net = VideoUNet(UNetConfig(channels=[16, 32], attention_levels=[1], joint_levels=[1], emb_dim=32,
                               head_dim=8, temporal=False))
    with torch.no_grad():                 # trained-looking weights: the zero-initialised outputs too
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net.eval()


def inputs(frames):
    g = torch.Generator().manual_seed(1)
    return (torch.randn(2, 3, frames, 16, 16, generator=g), torch.rand(2, generator=g),
            torch.randn(2, 5, 384, generator=g), torch.ones(2, 5), torch.randn(2, 384, generator=g))


@pytest.mark.parametrize("changes", [{}, {"conv3d_levels": [0, 1], "frame_index": True},
                                     {"stack_levels": [1], "max_frames": 8}])
def test_inflated_model_equals_the_image_model_on_every_frame(changes):
    image = image_model()
    assert not any("temporal" in k for k in image.state_dict())
    video = inflate(image, **changes).eval()
    assert any("temporal" in k for k in video.state_dict())
    x, t, text, mask, pooled = inputs(5)
    with torch.no_grad():
        out = video(x, t, text, mask, pooled)                                   # (B, C, F, H, W)
        for f in range(5):
            per_frame = image(x[:, :, f:f + 1], t, text, mask, pooled)         # the image model, one frame
            torch.testing.assert_close(out[:, :, f:f + 1], per_frame, rtol=0, atol=1e-6)


def test_inflation_refuses_a_video_model():
    video = inflate(image_model())
    with torch.no_grad():
        video.down[0].temporal.attn.out.weight.fill_(0.1)      # as if trained on clips
    with pytest.raises(ValueError, match="already"):
        inflate(video)
    with pytest.raises(ValueError, match="can only add"):
        inflate(image_model(), channels=[8, 16])


def test_inflate_command(tmp_path, text_encoder, capsys):
    from vidiff.config import DiffusionConfig, SampleConfig

    VideoPipeline(image_model(), DiffusionConfig(), SampleConfig(), frames=1, size=16,
                  text_encoder=text_encoder).save_pretrained(tmp_path / "image")
    assert main(["inflate", str(tmp_path / "image"), "-o", str(tmp_path / "video"), "--frames", "8",
                 "--conv3d-levels", "0", "1", "--stack-levels", "1"]) in (0, None)
    pipe = VideoPipeline.from_pretrained(tmp_path / "video")
    assert pipe.frames == 8 and pipe.net.cfg.temporal and pipe.net.cfg.conv3d_levels == [0, 1]
    assert pipe.net.cfg.stack_levels == [1] and pipe.net.cfg.max_frames == 8
    x, t, text, mask, pooled = inputs(3)
    with torch.no_grad():
        torch.testing.assert_close(pipe.net(x, t, text, mask, pooled)[:, :, 1:2],
                                   image_model()(x[:, :, 1:2], t, text, mask, pooled), rtol=0, atol=1e-6)
    assert main(["inflate", str(tmp_path / "image"), "-o", str(tmp_path / "video")]) == 2   # exists
    assert "exists" in capsys.readouterr().err

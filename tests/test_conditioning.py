"""Frame conditioning: masks, windows, the model's known-frame stem, and i2v / extend / interpolate / long."""

import hashlib

import numpy as np
import pytest
import torch

from vidiff.cli import main
from vidiff.data.masks import sample_frame_mask
from vidiff.errors import VidiffError
from vidiff.models.unet import UNetConfig, VideoUNet
from vidiff.pipeline import VideoPipeline, plan_windows
from vidiff.training.loop import train

from test_training import tiny_config


def test_windows_cover_every_unknown_frame_and_overlap_what_is_known():
    def windows(known, window=16, overlap=8):
        return list(plan_windows(torch.tensor(known), window, overlap))

    assert windows([False] * 40) == [0, 8, 16, 24]                      # long video
    assert windows([True] * 20 + [False] * 16) == [12, 20]             # continuation of 20 frames
    assert windows([True] + [False] * 15) == [0]                        # image-to-video
    assert windows([i % 4 == 0 for i in range(29)]) == [0, 9, 13]      # x4 interpolation of 8 frames
    assert windows([True] * 5) == []
    assert windows([False] * 10) == [0]                                 # shorter than a window
    # Every window after the first sees at least `overlap` frames before its first new one.
    known = torch.tensor([True] * 3 + [False] * 50)
    for start in plan_windows(known.clone(), 16, 8):
        first_new = int((~known[start:]).nonzero()[0]) + start
        assert first_new - start >= 8 or start == 0
        known[start:start + 16] = True
    assert known.all()


def test_training_masks_are_the_tasks_patterns():
    g = torch.Generator().manual_seed(0)
    assert not sample_frame_mask(64, 16, 0.0, g).any()
    m = sample_frame_mask(512, 16, 1.0, g)
    assert m.shape == (512, 16) and set(m.unique().tolist()) == {0.0, 1.0}
    assert (m.sum(1) >= 1).all() and (m.sum(1) <= 15).all()            # something given, something to make
    assert (m.sum(1) == 1).float().mean() > 0.2                         # image-to-video is common
    half = sample_frame_mask(2000, 16, 0.5, torch.Generator().manual_seed(1))
    assert abs(half.any(1).float().mean() - 0.5) < 0.05
    a = sample_frame_mask(8, 16, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(a, sample_frame_mask(8, 16, 0.5, torch.Generator().manual_seed(3)))


def test_half_masks_give_exactly_the_first_half_to_the_same_clips():
    m = sample_frame_mask(2000, 16, 0.5, torch.Generator().manual_seed(1), half=0.6)
    first_half = (m[:, :8] == 1).all(1) & (m[:, 8:] == 0).all(1)
    assert abs(first_half.float().mean() - 0.5 * (0.6 + 0.4 / 3 / 15)) < 0.03   # half, plus prefixes of 8
    old = sample_frame_mask(2000, 16, 0.5, torch.Generator().manual_seed(1))
    assert torch.equal(m.any(1), old.any(1))                            # the same clips get frames
    assert not torch.equal(m, old)


def test_a_prefix_gives_the_half_clips_that_many_frames_whatever_their_length():
    g = lambda: torch.Generator().manual_seed(1)
    assert torch.equal(sample_frame_mask(500, 16, 0.5, g(), half=0.6, prefix=8),
                       sample_frame_mask(500, 16, 0.5, g(), half=0.6))           # 8 is half of 16
    m = sample_frame_mask(2000, 24, 0.5, g(), half=0.6, prefix=8)
    halves = sample_frame_mask(2000, 24, 0.5, g(), half=0.6)
    first8 = (m[:, :8] == 1).all(1) & (m[:, 8:] == 0).all(1)
    first12 = (halves[:, :12] == 1).all(1) & (halves[:, 12:] == 0).all(1)
    changed = (m != halves).any(1)                                        # the same draws otherwise
    assert first8[changed].all() and first12[changed].all()              # 12 given became 8, 16 to make
    assert abs(changed.float().mean() - 0.5 * 0.6) < 0.03


def test_stride4_masks_give_exactly_every_fourth_frame_and_leave_half_masks_alone():
    g = lambda: torch.Generator().manual_seed(1)
    m = sample_frame_mask(4000, 16, 0.5, g(), half=0.6, stride4=0.3)
    every4 = torch.zeros(16)
    every4[::4] = 1
    share = (m == every4).all(1).float().mean()
    assert abs(share - 0.5 * 0.3) < 0.03                                 # (plus a rare stride draw)
    before = sample_frame_mask(4000, 16, 0.5, g(), half=0.6)            # the same draws without stride4
    assert torch.equal(m.any(1), before.any(1))                          # the same clips get frames
    assert torch.equal(sample_frame_mask(4000, 16, 0.5, g(), half=0.6, stride4=0.0), before)
    first_half = lambda x: ((x[:, :8] == 1).all(1) & (x[:, 8:] == 0).all(1)).float().mean()
    assert abs(first_half(m) - first_half(before)) < 0.01                # half masks keep their share


TINY_NET = dict(channels=[16, 32], attention_levels=[1], emb_dim=32, head_dim=8)


def test_the_known_frame_stem_starts_as_the_unconditioned_model_and_sees_only_known_frames():
    torch.manual_seed(0)
    plain = VideoUNet(UNetConfig(**TINY_NET))
    cond = VideoUNet(UNetConfig(**TINY_NET, frame_conditioning=True))
    for w in plain.parameters():                    # zero-initialised output layers would hide everything
        torch.nn.init.normal_(w, std=0.2)
    missing = set(cond.state_dict()) - set(plain.state_dict())
    assert missing == {"frame_stem.weight", "frame_stem.bias"}
    cond.load_state_dict(plain.state_dict(), strict=False)
    x, t = torch.randn(2, 3, 4, 16, 16), torch.rand(2)
    text = dict(text=torch.randn(2, 3, 384), text_mask=torch.ones(2, 3), pooled=torch.randn(2, 384))
    frames, mask = torch.randn(2, 3, 4, 16, 16), torch.tensor([[1.0, 0, 0, 0], [1, 1, 0, 0]])
    torch.testing.assert_close(cond(x, t, **text, frames=frames, frame_mask=mask), plain(x, t, **text))
    torch.nn.init.normal_(cond.frame_stem.weight)
    out = cond(x, t, **text, frames=frames, frame_mask=mask)
    changed = frames.clone()
    changed[:, :, 2:] = 0                                               # frames the mask hides
    torch.testing.assert_close(cond(x, t, **text, frames=changed, frame_mask=mask), out)
    changed[0, :, 0] += 1                                               # a frame it shows
    assert not torch.allclose(cond(x, t, **text, frames=changed, frame_mask=mask), out)
    with pytest.raises(ValueError, match="without frame conditioning"):
        plain(x, t, **text, frames=frames, frame_mask=mask)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny frame-conditioned model, trained (briefly) with known frames on half the clips."""
    out = tmp_path_factory.mktemp("cond")
    train(tiny_config(out, "model.frame_conditioning=true", "data.known_frames=0.5", "optim.steps=3",
                      "save_every=3"), progress=False)
    return out / "model"


@pytest.fixture(scope="module")
def pipe(model_dir):
    return VideoPipeline.from_pretrained(model_dir)


def clip(frames=4, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (frames, size, size, 3), dtype=np.uint8)


def g():
    return torch.Generator().manual_seed(0)


def test_image_to_video_keeps_the_picture_as_frame_0(pipe):
    image = clip(1)[0]
    before = image.copy()
    video = pipe("a red circle moving right", image=image, num_inference_steps=2, generator=g())
    assert video.shape == (1, 4, 16, 16, 3)
    assert np.array_equal(video[0, 0], image) and np.array_equal(image, before)


def test_a_sampler_function_stands_in_for_a_sampler_name(pipe):
    import functools
    from vidiff.diffusion.samplers import sample_ddim
    by_name = pipe("a red circle", num_inference_steps=3, sampler="ddpm", generator=g())
    as_function = pipe("a red circle", num_inference_steps=3, sampler=functools.partial(sample_ddim, eta=1.0),
                       generator=g())
    assert np.array_equal(by_name, as_function)                       # DDPM is DDIM at eta = 1
    more_noise = pipe("a red circle", num_inference_steps=3, sampler=functools.partial(sample_ddim, eta=1.3),
                      generator=g())
    assert not np.array_equal(by_name, more_noise)
    # sample.eta (vidiff --eta) is that function for the ddpm sampler.
    pipe.sample_defaults.eta = 1.3
    try:
        assert np.array_equal(pipe("a red circle", num_inference_steps=3, sampler="ddpm", generator=g()), more_noise)
    finally:
        pipe.sample_defaults.eta = 1.0


def test_extend_interpolate_and_long_videos_keep_the_given_frames(pipe):
    given = clip(3)
    video = pipe.extend(given, "a red circle moving right", 6, num_inference_steps=2, generator=g())
    assert video.shape == (1, 9, 16, 16, 3) and np.array_equal(video[0, :3], given)
    video = pipe.interpolate(given, factor=4, num_inference_steps=2, generator=g())
    assert video.shape == (1, 9, 16, 16, 3) and np.array_equal(video[0, ::4], given)
    long = pipe("a red circle moving right", num_frames=11, num_inference_steps=2, generator=g())
    assert long.shape == (1, 11, 16, 16, 3)                             # windows of 4, overlap 2
    # A long video's later windows are conditioned on the overlap: changing the first window changes them.
    other = pipe("a red circle moving right", num_frames=11, num_inference_steps=2,
                 generator=torch.Generator().manual_seed(1))
    assert not np.array_equal(long, other)


def test_sample_window_sets_the_frames_made_at_once(pipe, monkeypatch):
    """sample.window: a model trained on longer clips too (data.long_frames) makes them in one go."""
    lengths, denoiser = [], pipe.denoiser

    def spy(x, t, **cond):
        lengths.append(x.shape[2])
        return denoiser(x, t, **cond)

    monkeypatch.setattr(pipe, "denoiser", spy)
    pipe("a red circle", num_frames=10, num_inference_steps=1, guidance_min_t=0.0, generator=g())
    assert set(lengths) == {4}                                          # 0: the training length
    lengths.clear()
    monkeypatch.setattr(pipe.sample_defaults, "window", 8)
    video = pipe("a red circle", num_frames=10, num_inference_steps=1, guidance_min_t=0.0, generator=g())
    assert video.shape == (1, 10, 16, 16, 3) and lengths == [8, 8]       # frames 0-7, then 2-9 with 2-7 given
    monkeypatch.setattr(pipe.sample_defaults, "window", -4)
    with pytest.raises(VidiffError, match="sample.window"):
        pipe("a red circle", num_inference_steps=1)


def test_frame_guidance_adds_a_pass_without_the_frames(pipe, monkeypatch):
    """frame_guidance != 1: each guided call also predicts with neither prompt nor frames
    (cfg_frames_denoiser); a clip with no given frames is guided on the prompt alone."""
    calls, denoiser = [], pipe.denoiser

    def spy(x, t, **cond):
        calls.append((x.shape[0], cond["frame_mask"].sum(1).tolist()))
        return denoiser(x, t, **cond)

    monkeypatch.setattr(pipe, "denoiser", spy)
    image = clip(1)[0]
    video = pipe("a red circle", image=image, num_inference_steps=3, guidance_min_t=0.0, frame_guidance=2.0,
                 generator=g())
    assert np.array_equal(video[0, 0], image)
    assert [n for n, _ in calls] == [3, 3, 3]
    assert all(masks == [0.0, 1.0, 1.0] for _, masks in calls)          # nothing, frames only, both
    calls.clear()
    pipe("a red circle", num_inference_steps=3, guidance_min_t=0.0, frame_guidance=2.0, generator=g())
    assert [n for n, _ in calls] == [2, 2, 2]


def test_guidance_with_frames_guides_the_windows_that_have_given_frames(pipe, monkeypatch):
    """sample.guidance_with_frames sets the prompt guidance of every window with given frames
    (image-to-video, a long video's later windows); windows without any keep `guidance`."""
    import vidiff.pipeline as P

    scales, real = [], P.cfg_denoiser

    def spy(denoiser, cond, uncond, scale, min_t=0.0):
        scales.append((scale, bool(cond["frame_mask"].any())))
        return real(denoiser, cond, uncond, scale, min_t)

    monkeypatch.setattr(P, "cfg_denoiser", spy)
    monkeypatch.setattr(pipe.sample_defaults, "frame_guidance", 1.0)
    pipe("a red circle", num_frames=pipe.frames * 3 // 2, num_inference_steps=2, guidance_scale=4.0, generator=g())
    assert scales == [(4.0, False), (4.0, True)]                       # not set: `guidance` everywhere
    scales.clear()
    monkeypatch.setattr(pipe.sample_defaults, "guidance_with_frames", 1.5)
    pipe("a red circle", num_frames=pipe.frames * 3 // 2, num_inference_steps=2, guidance_scale=4.0, generator=g())
    assert scales == [(4.0, False), (1.5, True)]
    scales.clear()
    pipe("a red circle", image=clip(1)[0], num_inference_steps=2, generator=g())
    assert scales == [(1.5, True)]


def test_the_medoid_is_the_sample_nearest_the_others():
    from vidiff.diffusion.consensus import medoid
    # Per video n, K = 4 points on a line. Summed squared distances to the others: {0, 1, 3, 10} ->
    # 110, 86, 62, 230, so 3; {5, -1, 0, 2} -> 70, 46, 30, 22, so 2.
    samples = torch.tensor([[0.0, 5.0], [1.0, -1.0], [3.0, 0.0], [10.0, 2.0]])[:, :, None, None]
    assert medoid(samples).tolist() == [2, 3]
    assert medoid(samples.expand(-1, -1, 3, 5)).tolist() == [2, 3]    # the same over more pixels


def test_a_blurred_medoid_tells_near_from_far():
    """Dots that do not overlap are all equally far apart in pixels; blurred, the one between the
    others is nearest them."""
    from vidiff.diffusion.consensus import gaussian_blur, medoid
    frames = torch.zeros(3, 1, 1, 21)                                 # (K, N, H, W): one row each
    for k, x in enumerate([2, 18, 8]):
        frames[k, 0, 0, x] = 1.0
    assert medoid(frames).tolist() == [0]                             # a three-way tie: the first
    assert medoid(frames, blur=4.0).tolist() == [2]
    blurred = gaussian_blur(frames, 4.0)
    assert blurred.shape == frames.shape
    assert abs(float(blurred[2].sum()) - 1) < 0.05                    # the middle dot keeps its mass
    assert blurred[2, 0, 0].argmax() == 8                              # centred where it was


def test_candidates_keep_one_of_k_samples_where_frames_are_given(pipe, monkeypatch):
    """sample.candidates = K: each window with given frames is sampled K times in one batch and
    the medoid of the new frames kept; windows without given frames are sampled once."""
    import vidiff.pipeline as P

    batches, picked, blurs, real_medoid = [], [], [], P.medoid

    def spy(samples, blur):
        batches.append(samples)
        blurs.append(blur)
        picked.append(real_medoid(samples, blur))
        return picked[-1]

    monkeypatch.setattr(P, "medoid", spy)
    given = clip(2)
    two = np.stack([given, clip(2, seed=1)])
    video = pipe.extend(two, "a red circle moving right", 2, num_inference_steps=2, candidates=3, generator=g())
    assert np.array_equal(video[:, :2], two)
    samples, = batches                                                # (K, N, C, F, H, W), new frames only
    assert samples.shape == (3, 2, 3, 2, 16, 16)
    for n in range(2):
        kept = ((samples[picked[0][n], n].clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 3, 0)
        assert np.array_equal(video[n, 2:], kept.to(torch.uint8).numpy())
    batches.clear()
    monkeypatch.setattr(pipe.sample_defaults, "candidates", 3)
    pipe("a red circle", num_frames=pipe.frames * 3 // 2, num_inference_steps=2, generator=g())
    assert len(batches) == 1 and batches[0].shape[:2] == (3, 1)      # only the window with given frames
    one_window = pipe("a red circle", num_inference_steps=2, generator=g())
    assert len(batches) == 1                                          # text only: sampled once, as with K = 1
    assert np.array_equal(one_window, pipe("a red circle", num_inference_steps=2, candidates=1, generator=g()))
    with pytest.raises(VidiffError, match="candidates"):
        pipe.extend(given, "x", 2, candidates=0)
    assert set(blurs) == {0.0}                                        # the pixels as they are, by default
    monkeypatch.setattr(pipe.sample_defaults, "consensus_blur", 2.0)
    pipe.extend(given, "x", 2, num_inference_steps=2, generator=g())
    assert blurs[-1] == 2.0
    monkeypatch.setattr(pipe.sample_defaults, "consensus_blur", -1.0)
    with pytest.raises(VidiffError, match="consensus_blur"):
        pipe.extend(given, "x", 2)


def test_bad_inputs_are_clear_errors(pipe):
    with pytest.raises(VidiffError, match="at least 2 frames"):
        pipe.interpolate(clip(1))
    with pytest.raises(VidiffError, match="16x16"):
        pipe.extend(clip(3, size=32), "x", 2)
    with pytest.raises(VidiffError, match="uint8"):
        pipe.extend(clip(3).astype(np.float32), "x", 2)


def run(*args):
    return main([str(a) for a in args])


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_commands_end_to_end(model_dir, tmp_path, capsys):
    src = tmp_path / "in.npy"
    np.save(src, clip(3))
    image = tmp_path / "first.png"
    from PIL import Image

    Image.fromarray(clip(1)[0]).save(image)
    common = ["--model", model_dir, "--steps", "2"]
    assert run("generate", "a red circle moving right", "--image", image, "-o", tmp_path / "i2v.npy", *common) == 0
    i2v = np.load(tmp_path / "i2v.npy")
    assert i2v.shape == (4, 16, 16, 3) and np.array_equal(i2v[0], np.asarray(Image.open(image)))
    assert run("extend", src, "a red circle moving right", "--frames", 5, "-o", tmp_path / "ext.npy", *common) == 0
    assert np.load(tmp_path / "ext.npy").shape == (8, 16, 16, 3)
    assert run("interpolate", src, "--factor", 2, "-o", tmp_path / "x2.gif", *common) == 0
    assert (tmp_path / "x2.gif").stat().st_size > 0
    assert run("generate", "a red circle", "--frames", 10, "-o", tmp_path / "long.npy", *common) == 0
    assert np.load(tmp_path / "long.npy").shape == (10, 16, 16, 3)

    # Bad input: a clear line, exit 2, and the input file untouched.
    before = digest(src)
    np.save(tmp_path / "one.npy", clip(1))
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all")
    capsys.readouterr()
    for args, message in [(("interpolate", tmp_path / "one.npy"), "at least 2 frames"),
                          (("extend", tmp_path / "junk.mp4", "x"), "cannot decode"),
                          (("extend", tmp_path / "missing.mp4", "x"), "no such file"),
                          (("generate", "x", "--image", src), "must hold uint8 (H, W, 3)")]:
        assert run(*args, "-o", tmp_path / "out.npy", *common) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert digest(src) == before and not (tmp_path / "out.npy").exists()


def test_a_text_only_model_refuses_frames_clearly(tmp_path):
    train(tiny_config(tmp_path, "optim.steps=1", "save_every=1"), progress=False)
    pipe = VideoPipeline.from_pretrained(tmp_path / "model")
    with pytest.raises(VidiffError, match="without frame conditioning"):
        pipe("x", image=clip(1)[0])


def test_mask_settings_without_known_frames_are_refused(tmp_path):
    from vidiff.config import ConfigError, load_config
    from vidiff.training.loop import train

    run = load_config(None, [f"out_dir={tmp_path}", "model.frame_conditioning=true", "data.known_half=0.5"])
    with pytest.raises(ConfigError, match="data.known_half"):
        train(run)
    run = load_config(None, [f"out_dir={tmp_path}", "model.frame_conditioning=true", "data.known_frames=0.5",
                             "data.known_half=0.6", "data.known_stride4=0.6"])
    with pytest.raises(ConfigError, match="at most 1 together"):
        train(run)
    run = load_config(None, [f"out_dir={tmp_path}", "model.frame_conditioning=true", "data.known_frames=0.5",
                             "data.known_prefix=16"])
    with pytest.raises(ConfigError, match="data.known_prefix = 16"):
        train(run)
    run = load_config(None, [f"out_dir={tmp_path}", "model.frame_conditioning=true", "data.known_loss=false"])
    with pytest.raises(ConfigError, match="data.known_loss"):
        train(run)
    assert not any(tmp_path.iterdir())                                  # refused before anything is written


@pytest.mark.parametrize("known_loss", [True, False])
def test_data_known_loss_false_leaves_the_given_frames_out_of_the_loss(tmp_path, loss_masks, known_loss):
    train(tiny_config(tmp_path, "model.frame_conditioning=true", "data.known_frames=1.0", "data.known_half=1.0",
                      f"data.known_loss={str(known_loss).lower()}", "optim.steps=2", "save_every=2"), progress=False)
    assert loss_masks
    for weight, mask in loss_masks:
        assert mask is not None and mask.sum() > 0                      # every clip shows its first half
        if known_loss:
            assert weight is None
        else:
            torch.testing.assert_close(weight, 1 - mask)

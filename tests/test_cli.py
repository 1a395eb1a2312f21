"""The command line end to end: user mistakes end in one line, generate -> eval round trip."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vidiff.eval.shapes_metric import CRITERIA, score_clip
from vidiff.pipeline import DEFAULT_MODEL_DIR

CONFIG = str(Path(__file__).parents[1] / "configs" / "shapes-s.toml")


def vidiff(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "vidiff", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


@pytest.mark.parametrize("command", ["train", "generate", "extend", "interpolate", "eval", "export", "average", "inflate",
                                     "data"])
def test_every_subcommand_explains_itself(command):
    r = vidiff(command, "--help")
    assert r.returncode == 0 and "usage: vidiff " + command in r.stdout


@pytest.mark.parametrize("args, message", [
    (["generate", "x", "-o", "a.mp4", "--bogus"], "unrecognized arguments"),
    (["generate", "x", "-o", "a.avi"], "unsupported output type '.avi'"),
    (["generate", "x", "-o", "a.gif", "--model", "/no/such/model"], "not a vidiff model directory"),
    (["generate", "x", "-o", "a.gif", "--size", "30"], "multiples of 16"),
    (["generate", "x", "-o", "a.gif", "--frames", "0"], "--frames must be positive"),
    (["generate", "x", "-o", "a.gif", "--sampler", "euler"], "use them with the flow schedule"),
    (["generate", "x", "-o", "a.gif", "--guidance-min-t", "2"], "guidance_min_t is a diffusion time in [0, 1]"),
    (["generate", "x", "-o", "a.gif", "--time-power", "0"], "--time-power must be positive"),
    (["generate", "x", "-o", "a.gif", "--eta", "1.3", "--sampler", "ddim"], "--eta is the ddpm sampler's"),
    (["generate", "x", "-o", "a.gif", "--eta", "-1"], "at least 0"),
    (["generate", "x", "-o", "a.gif", "--candidates", "0"], "--candidates must be at least 1"),
    (["train", "no/such/config.toml"], "config file not found"),
    (["train", CONFIG, "optim.lr=fast"], "optim.lr must be a number"),
])
def test_user_mistakes_give_one_line_and_nonzero_exit(args, message, tmp_path):
    r = vidiff(*args, cwd=tmp_path)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert not list(tmp_path.iterdir())


def test_existing_output_is_not_overwritten(tmp_path):
    out = tmp_path / "mine.gif"
    out.write_bytes(b"precious")
    r = vidiff("generate", "a red circle moving right", "-o", str(out), "--steps", "1")
    assert r.returncode == 2 and "--force" in r.stderr
    assert out.read_bytes() == b"precious"


def test_corrupt_model_is_reported(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    r = vidiff("generate", "x", "-o", str(tmp_path / "a.gif"), "--model", str(tmp_path))
    assert r.returncode == 2 and "config.json" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.skipif(not (DEFAULT_MODEL_DIR / "model.safetensors").is_file(), reason="no shipped model")
def test_generate_then_eval_with_the_shipped_model(tmp_path):
    out = tmp_path / "clips.npy"
    r = vidiff("generate", "a red circle moving right", "--num", "2", "--steps", "10", "-o", str(out))
    assert r.returncode == 0, r.stderr
    clips = np.load(out)
    assert clips.shape == (2, 16, 32, 32, 3) and clips.dtype == np.uint8
    for clip in clips:                          # the detector reads every generated clip
        score = score_clip(clip, "red", "circle", "right")
        assert set(CRITERIA) <= set(vars(score))
    gif = tmp_path / "clip.gif"
    assert vidiff("generate", "a blue square moving down", "--steps", "4", "-o", str(gif)).returncode == 0
    assert gif.stat().st_size > 0
    r = vidiff("eval", "--limit", "4", "--seeds", "1", "--steps", "10", "-o", str(tmp_path / "eval.json"))
    assert r.returncode == 0, r.stderr
    assert "everything" in r.stdout and "clips" in r.stdout
    rows = json.loads((tmp_path / "eval.json").read_text())["clips"]
    assert len(rows) == 4 and rows[0]["asked"] == {"colour": "red", "shape": "circle", "direction": "right"}
    assert isinstance(rows[0]["direction"], bool)          # the verdict, kept apart from what was asked

"""Training survives crashes: kill -9 then --resume, SIGINT / SIGTERM, non-finite steps."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from vidiff.diffusion.denoiser import Denoiser
from vidiff.training.checkpoint import list_checkpoints
from vidiff.training.loop import TrainingStopped, train

from test_training import TINY, tiny_config


def start_training(out_dir, *extra):
    """`vidiff train` in a child process, as a user would run it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "vidiff", "train", "configs/shapes-s.toml", *TINY,
                             f"out_dir={out_dir}", *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, proc, timeout=180):
    deadline = time.time() + timeout
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "training made no progress"
        time.sleep(0.02)


def logged(run_dir):
    path = run_dir / "log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def test_kill_9_then_resume_matches_an_uninterrupted_run(tmp_path):
    run = ["optim.steps=500", "save_every=3", "log_every=1", "keep_checkpoints=2"]
    proc = start_training(tmp_path / "killed", *run)
    wait_for(lambda: any(int(p.name[5:]) >= 6 for p in list_checkpoints(tmp_path / "killed")), proc)
    proc.send_signal(signal.SIGKILL)                  # no handler, no cleanup: a real crash
    proc.communicate()
    resumed_at = int(list_checkpoints(tmp_path / "killed")[-1].name[5:])
    end = resumed_at + 4

    cfg = tiny_config(tmp_path / "killed", *run)
    train(cfg, resume=True, max_steps=end, progress=False)
    train(tiny_config(tmp_path / "straight", *run), max_steps=end, progress=False)
    killed, straight = logged(tmp_path / "killed"), logged(tmp_path / "straight")
    assert [r["step"] for r in killed] == list(range(1, end + 1))   # nothing logged twice after the kill
    assert [r["loss"] for r in killed] == [r["loss"] for r in straight]   # bit-exact
    a = load_file(str(tmp_path / f"killed/checkpoints/step_{end:07d}/model.safetensors"))
    b = load_file(str(tmp_path / f"straight/checkpoints/step_{end:07d}/model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_saves_a_checkpoint_before_exiting(tmp_path, sig, code):
    proc = start_training(tmp_path, "optim.steps=500", "save_every=1000", "log_every=1")
    wait_for(lambda: len(logged(tmp_path)) >= 3, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert f"stopped by {sig.name}" in err and "--resume" in err
    assert "Traceback" not in err
    saved = list_checkpoints(tmp_path)
    assert len(saved) == 1 and int(saved[0].name[5:]) >= 3
    step = int(saved[0].name[5:])
    losses = train(tiny_config(tmp_path, "optim.steps=500", "save_every=1000", "log_every=1"),
                   resume=True, max_steps=step + 2, progress=False)
    assert len(losses) == 2


def poison_loss(monkeypatch, bad_calls):
    """Make the training loss NaN on the given (0-based) calls."""
    original, calls = Denoiser.loss, []

    def loss(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        calls.append(1)
        return out * float("nan") if len(calls) - 1 in bad_calls else out

    monkeypatch.setattr(Denoiser, "loss", loss)


def test_non_finite_steps_are_skipped_and_counted(tmp_path, monkeypatch):
    poison_loss(monkeypatch, {2, 3})
    losses = train(tiny_config(tmp_path, "optim.steps=6", "save_every=6", "log_every=1"), progress=False)
    assert len(losses) == 6
    state = json.loads((tmp_path / "checkpoints/step_0000006/state.json").read_text())
    assert state["skipped_steps"] == 2 and logged(tmp_path)[-1]["skipped_steps"] == 2
    weights = load_file(str(tmp_path / "checkpoints/step_0000006/model.safetensors"))
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_many_non_finite_steps_stop_the_run_with_the_last_good_weights(tmp_path, monkeypatch):
    train(tiny_config(tmp_path / "good", "optim.steps=20", "save_every=2"), max_steps=2, progress=False)
    poison_loss(monkeypatch, set(range(2, 100)))
    with pytest.raises(TrainingStopped, match="3 steps in a row had a non-finite") as e:
        train(tiny_config(tmp_path / "bad", "optim.steps=20", "save_every=100", "optim.max_bad_steps=3"),
              progress=False)
    assert e.value.exit_code == 3
    # Steps 3-5 were skipped, so the checkpoint written at step 5 holds the weights of step 2.
    bad = load_file(str(tmp_path / "bad/checkpoints/step_0000005/model.safetensors"))
    good = load_file(str(tmp_path / "good/checkpoints/step_0000002/model.safetensors"))
    assert all(torch.equal(bad[k], good[k]) for k in good)


def test_asking_for_a_gpu_that_is_not_there_is_a_clear_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    from vidiff.config import ConfigError

    with pytest.raises(ConfigError, match="no GPU"):
        train(tiny_config(tmp_path, "device=cuda"), progress=False)


def test_a_json_write_that_fails_midway_leaves_the_old_file(tmp_path):
    from vidiff.training.checkpoint import save_json

    path = tmp_path / "results.json"
    save_json({"runs": [1, 2]}, path)
    with pytest.raises(TypeError):
        save_json({"runs": [1, 2, 3], "bad": object()}, path)  # json.dump fails after writing part of it
    assert json.loads(path.read_text()) == {"runs": [1, 2]}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_weights_files_get_the_usual_permissions(tmp_path):
    """safetensors writes 0600; a model copied to a shared machine must be readable like any file."""
    from vidiff.training.checkpoint import save_tensors

    path = tmp_path / "model.safetensors"
    save_tensors({"w": torch.ones(2, 3)}, path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    torch.testing.assert_close(load_file(str(path))["w"], torch.ones(2, 3))


def write_marker(text):
    return lambda tmp: (tmp / "marker.txt").write_text(text)


def test_a_folder_swap_killed_between_its_renames_is_recovered(tmp_path):
    """kill -9 after final -> .old but before .tmp -> final leaves only .old: it is put back first."""
    from vidiff.training.checkpoint import atomic_dir

    final = tmp_path / "model"
    atomic_dir(final, write_marker("first"))
    os.replace(final, tmp_path / "model.old")             # the crash: the first rename alone
    (tmp_path / "model.tmp").mkdir()                       # and a half-written new folder
    atomic_dir(final, write_marker("second"))
    assert (final / "marker.txt").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_stale_old_folder_from_a_crash_does_not_block_the_next_swap(tmp_path):
    """kill -9 after both renames but before .old is removed left `model.old` beside `model`."""
    from vidiff.training.checkpoint import atomic_dir

    final = tmp_path / "model"
    atomic_dir(final, write_marker("first"))
    (tmp_path / "model.old").mkdir()
    (tmp_path / "model.old" / "marker.txt").write_text("stale")
    atomic_dir(final, write_marker("second"))
    assert (final / "marker.txt").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]

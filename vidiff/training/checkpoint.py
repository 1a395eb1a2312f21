"""Checkpoints: safetensors for tensors, JSON for everything else; never pickle.

A training checkpoint is a folder `step_XXXXXXX/` holding model.safetensors,
ema.safetensors, optim.safetensors and state.json. It is written under a
temporary name, fsynced and renamed, so a crash mid-save leaves the previous
checkpoint intact and a half-written folder is never mistaken for one.
"""

import json
import os
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from ..errors import VidiffError
from ..io.files import usual_permissions


class CheckpointError(VidiffError, RuntimeError):
    """A checkpoint that cannot be loaded: missing, corrupt or of the wrong shape."""


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_tensors(tensors, path):
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(path))
    usual_permissions(path)
    _fsync(path)


def save_json(obj, path):
    """Write JSON through a temporary file and one rename: a crash leaves the old file or the new one."""
    tmp = Path(f"{path}.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_dir(final: Path, write):
    """Call write(tmp_dir), then move tmp_dir to `final` in one rename.

    Replacing a folder takes two renames (final -> .old, .tmp -> final). A crash
    between them leaves only `.old`, which is put back first; a crash after them
    leaves a stale `.old` beside `final`, which is dropped.
    """
    final = Path(final)
    tmp = final.with_name(final.name + ".tmp")
    old = final.with_name(final.name + ".old")
    if old.exists():
        if final.exists():
            shutil.rmtree(old)
        else:
            os.replace(old, final)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    _fsync(tmp)
    if final.exists():
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old)
    else:
        os.replace(tmp, final)
    _fsync(final.parent)


def load_weights(model, path, allow_missing=False):
    """Load safetensors weights, naming what is wrong instead of a raw traceback.

    With allow_missing, tensors the file lacks keep their initial values (a model
    grown by new layers); returns their names.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"missing weights file: {path}")
    try:
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises several types for corrupt headers
        raise CheckpointError(f"cannot read {path}: {e}") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    if missing and not allow_missing:
        raise CheckpointError(f"{path} lacks {len(missing)} tensors, e.g. {missing[0]}")
    unexpected = sorted(set(tensors) - set(own))
    if unexpected:
        raise CheckpointError(f"{path} has unexpected tensors, e.g. {unexpected[0]}")
    for k, v in tensors.items():
        if v.shape != own[k].shape:
            raise CheckpointError(f"{path}: {k} has shape {tuple(v.shape)}, the model expects {tuple(own[k].shape)}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in tensors.items()}, strict=not allow_missing)
    return missing


def list_checkpoints(run_dir):
    ckpt = Path(run_dir) / "checkpoints"
    if not ckpt.is_dir():
        return []
    return sorted(p for p in ckpt.iterdir() if p.is_dir() and p.name.startswith("step_")
                  and not p.name.endswith((".tmp", ".old")) and (p / "state.json").is_file())


def prune_checkpoints(run_dir, keep):
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old)

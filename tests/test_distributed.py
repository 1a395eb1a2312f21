"""torchrun with 2 CPU processes (gloo) trains as 1 process does with the same global batch."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from vidiff.training.loop import train

from test_training import TINY, tiny_config

RUN = ["optim.steps=4", "save_every=4", "log_every=1"]
# Gradients are averaged in another order, so results agree to rounding, not bit for bit;
# after 4 AdamW steps at lr 2e-3 the weights differ by ~1e-7 (measured).
LOSS_RTOL, WEIGHT_ATOL = 1e-5, 1e-5


def torchrun(out_dir, *extra, procs=2):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
           "-m", "vidiff", "train", "configs/shapes-s.toml", *TINY, f"out_dir={out_dir}", *RUN, *extra]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def losses(run_dir):
    return [json.loads(line)["loss"] for line in (run_dir / "log.jsonl").read_text().splitlines()]


def assert_same_run(a, b):
    assert losses(a) == pytest.approx(losses(b), rel=LOSS_RTOL)
    wa = load_file(str(a / "checkpoints/step_0000004/model.safetensors"))
    wb = load_file(str(b / "checkpoints/step_0000004/model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=WEIGHT_ATOL, rtol=0, msg=k)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    train(tiny_config(out, *RUN), progress=False)
    return out


@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_two_processes_match_one_with_the_same_global_batch(tmp_path, single, parallel):
    torchrun(tmp_path, f"optim.parallel={parallel}")
    assert_same_run(tmp_path, single)
    # Process 0 alone wrote the run: one log line per step, one checkpoint, a loadable model.
    assert len(losses(tmp_path)) == 4 and (tmp_path / "model/model.safetensors").is_file()


def test_gradient_accumulation_matches_one_big_batch(tmp_path, single):
    train(tiny_config(tmp_path, *RUN, "optim.grad_accum=2"), progress=False)
    assert_same_run(tmp_path, single)


def test_resume_on_another_process_count(tmp_path, single):
    """Checkpoints hold full tensors: a 2-process run resumes as 1 process and still matches."""
    torchrun(tmp_path, "optim.parallel=fsdp", "save_every=2", "--max-steps", "2")
    train(tiny_config(tmp_path, *RUN, "save_every=2"), resume=True, progress=False)
    assert_same_run(tmp_path, single)


def test_self_conditioning_on_two_processes_matches_one(tmp_path):
    """The guess pass runs on each process's own clips, drawn from the same global draw."""
    train(tiny_config(tmp_path / "one", *RUN, "model.self_condition=true"), progress=False)
    torchrun(tmp_path / "two", "optim.parallel=ddp", "model.self_condition=true")
    assert_same_run(tmp_path / "two", tmp_path / "one")

"""Swapping the pipeline's guidance constructors for a wrapped version, for sampling experiments."""

from contextlib import contextmanager

import torch

import vidiff.pipeline as pipeline
from vidiff.eval.tasks import run_task


@contextmanager
def wrapped_guidance(wrap):
    """Inside, the pipeline builds its denoisers with wrap(cfg_frames_denoiser) and wrap(cfg_denoiser)."""
    plain = pipeline.cfg_frames_denoiser, pipeline.cfg_denoiser
    pipeline.cfg_frames_denoiser, pipeline.cfg_denoiser = (wrap(f) for f in plain)
    try:
        yield
    finally:
        pipeline.cfg_frames_denoiser, pipeline.cfg_denoiser = plain


def score_variants(pipe, task, items, variants):
    """One result line per (label, wrap) in `variants`: `task` on `items` with the guidance wrapped,
    the same seeds for every variant. Printed as each finishes."""
    lines = []
    for label, wrap in variants:
        torch.manual_seed(0)
        with wrapped_guidance(wrap):
            summary, _ = run_task(pipe, task, items, progress=False)
        lines.append(f"  {label} right {summary['right'] * 100:5.1f}%   median error {summary['median_error']:.2f} px")
        print(lines[-1], flush=True)
    return lines

"""Swapping the pipeline's guidance constructors for a wrapped version, for sampling experiments."""

from contextlib import contextmanager

import vidiff.pipeline as pipeline


@contextmanager
def wrapped_guidance(wrap):
    """Inside, the pipeline builds its denoisers with wrap(cfg_frames_denoiser) and wrap(cfg_denoiser)."""
    plain = pipeline.cfg_frames_denoiser, pipeline.cfg_denoiser
    pipeline.cfg_frames_denoiser, pipeline.cfg_denoiser = (wrap(f) for f in plain)
    try:
        yield
    finally:
        pipeline.cfg_frames_denoiser, pipeline.cfg_denoiser = plain

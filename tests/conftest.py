import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def text_encoder():
    """MiniLM loaded once for the whole session (it takes a few seconds)."""
    from vidiff.text.encoders import TextEncoder

    return TextEncoder()


@pytest.fixture
def loss_masks(monkeypatch):
    """(frame_weight, frame_mask) of every training-loss call, recorded as the loss runs unchanged."""
    from vidiff.diffusion.denoiser import Denoiser

    seen, loss = [], Denoiser.loss

    def spy(self, x0, t, noise=None, self_cond=None, frame_weight=None, **cond):
        seen.append((frame_weight, cond.get("frame_mask")))
        return loss(self, x0, t, noise, self_cond, frame_weight, **cond)

    monkeypatch.setattr(Denoiser, "loss", spy)
    return seen

"""The bundled MiniLM encoder, loaded offline."""

import torch


def test_token_states_mask_and_pooled(text_encoder):
    out = text_encoder(["a red circle moving right", "", "the crimson ball heads up and to the left"])
    B, T, D = out["text"].shape
    assert (B, D) == (3, 384) and out["text_mask"].shape == (3, T) and out["pooled"].shape == (3, 384)
    assert out["text_mask"][1].sum() == 2                   # the empty prompt is [CLS] [SEP]
    assert out["text_mask"][2].sum() == T                   # the longest prompt fills the batch
    assert (out["text"][1, 2:] == 0).all()                  # padding is zero and masked
    torch.testing.assert_close(out["pooled"].norm(dim=-1), torch.ones(3))


def test_cache_returns_identical_states(text_encoder):
    a = text_encoder(["a blue square moving down"])
    b = text_encoder(["a blue square moving down", "a green triangle moving up"])
    assert torch.equal(a["text"][0], b["text"][0, : a["text"].shape[1]])


def test_token_states_tell_colours_apart(text_encoder):
    """Pooled MiniLM vectors barely separate colours; the colour token's state does."""
    out = text_encoder(["a red circle", "a blue circle", "a red circle"])
    colour = out["text"][:, 2]                              # [CLS] a <colour> circle [SEP]
    assert torch.equal(colour[0], colour[2])
    assert torch.cosine_similarity(colour[0], colour[1], dim=0) < 0.9

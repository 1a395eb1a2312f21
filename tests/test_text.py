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


def test_cache_is_bounded_and_evicts_the_least_recently_used(text_encoder):
    prompts = ["a red circle moving right", "a blue square moving down", "a green triangle moving up"]
    first = text_encoder(prompts)
    size = text_encoder.cache_size
    try:
        text_encoder.cache_size = 2
        text_encoder([prompts[0]])                         # now the most recently used
        text_encoder(["a white ball going left"])          # evicts the least recently used
        assert len(text_encoder._cache) == 2 and prompts[0] in text_encoder._cache
        again = text_encoder(prompts)                      # re-encoded after eviction: the same states
        assert torch.equal(first["text"], again["text"]) and torch.equal(first["pooled"], again["pooled"])
    finally:
        text_encoder.cache_size = size

"""The video U-Net: shapes, the image (F = 1) path, factorised attention, RoPE, text masking."""

import pytest
import torch

from vidiff.models.attention import CrossAttention, TemporalAttention
from vidiff.models.rope import apply_rope, rope_1d
from vidiff.models.unet import UNetConfig, VideoUNet

TINY = UNetConfig(channels=[16, 32], attention_levels=[1], emb_dim=32, text_dim=8, head_dim=8)


def inputs(B=2, F=4, H=16, T=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(x=torch.randn(B, 3, F, H, H, generator=g), t=torch.rand(B, generator=g),
                text=torch.randn(B, T, 8, generator=g), text_mask=torch.ones(B, T),
                pooled=torch.randn(B, 8, generator=g))


def randomise_temporal(net, seed=1):
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, TemporalAttention):
            for p in m.parameters():
                p.data = torch.randn(p.shape, generator=g) * 0.2


@pytest.fixture
def net():
    torch.manual_seed(0)
    net = VideoUNet(TINY)
    for p in net.parameters():   # the zero-initialised output layers would hide everything
        p.data += 0.05 * torch.randn_like(p)
    return net.eval()


def test_output_shape_matches_input(net):
    for F in (1, 4, 7):
        x = inputs(F=F)
        assert net(**x).shape == x["x"].shape


def test_single_frame_skips_temporal_layers(net):
    x = inputs(F=1)
    before = net(**x)
    randomise_temporal(net)
    assert torch.equal(net(**x), before)


def test_fresh_temporal_layers_leave_frames_independent(net):
    """Zero-initialised temporal output: a video is denoised exactly as F separate images."""
    for m in net.modules():
        if isinstance(m, TemporalAttention):
            torch.nn.init.zeros_(m.attn.out.weight)
            torch.nn.init.zeros_(m.attn.out.bias)
    x = inputs(F=3)
    video = net(**x)
    for f in range(3):
        frame = net(**{**x, "x": x["x"][:, :, f:f + 1]})
        torch.testing.assert_close(video[:, :, f:f + 1], frame, atol=1e-5, rtol=1e-5)


def test_temporal_layers_connect_frames(net):
    randomise_temporal(net)
    x = inputs(F=4)
    y = net(**x)
    x2 = x["x"].clone()
    x2[:, :, 0] += torch.randn_like(x2[:, :, 0])  # change only frame 0
    y2 = net(**{**x, "x": x2})
    assert (y2[:, :, 3] - y[:, :, 3]).abs().max() > 1e-4


def test_rope_scores_depend_only_on_offset():
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)
    angles = rope_1d(12, 16)
    qs, ks = apply_rope(q.expand(1, 1, 12, 16), angles), apply_rope(k.expand(1, 1, 12, 16), angles)
    scores = qs[0, 0] @ ks[0, 0].T                                   # (12, 12)
    for offset in (0, 1, 5):
        diag = torch.diagonal(scores, offset)
        torch.testing.assert_close(diag, diag[0].expand_as(diag), atol=1e-5, rtol=1e-5)


def test_rope_preserves_norm():
    x = torch.randn(3, 7, 16)
    torch.testing.assert_close(apply_rope(x, rope_1d(7, 16)).norm(dim=-1), x.norm(dim=-1))


def test_cross_attention_ignores_padding():
    torch.manual_seed(0)
    layer = CrossAttention(16, 8, head_dim=8)
    x = torch.randn(2, 16, 2, 4, 4)
    text = torch.randn(2, 6, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
    y = layer(x, text, mask)
    text2 = text.clone()
    text2[0, 3:] = 100.0                          # garbage in the padded slots of sample 0
    y2 = layer(x, text2, mask)
    torch.testing.assert_close(y[0], y2[0])


def test_rejects_sizes_it_cannot_downsample(net):
    x = inputs(H=16)
    x["x"] = torch.randn(2, 3, 4, 18, 18)
    with pytest.raises(ValueError, match="multiples of 4"):
        net(**x)


def test_gradients_reach_every_parameter(net):
    randomise_temporal(net)
    net.train()
    net(**inputs()).pow(2).mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing


def test_added_space_time_layers_start_as_identity(tmp_path, net):
    """init_from-style growth: a model with joint attention loaded from one without it is the same function."""
    from safetensors.torch import save_file

    from vidiff.training.checkpoint import load_weights

    path = tmp_path / "model.safetensors"
    save_file(net.state_dict(), str(path))
    grown = VideoUNet(UNetConfig(**{**vars(TINY), "joint_levels": [1]}))
    new = load_weights(grown, path, allow_missing=True)
    assert new and all(".joint." in name for name in new)
    x = inputs(F=3)
    torch.testing.assert_close(grown.eval()(**x), net(**x))


def test_space_time_attention_mixes_frames_and_positions():
    from vidiff.models.attention import SpaceTimeAttention

    torch.manual_seed(0)
    layer = SpaceTimeAttention(16, head_dim=8)
    for p in layer.parameters():
        p.data = torch.randn_like(p) * 0.3
    x = torch.randn(1, 16, 3, 4, 4)
    x2 = x.clone()
    x2[:, :, 0, 0, 0] += torch.randn(16)            # one token in frame 0 (not a uniform shift: LayerNorm removes those)
    assert (layer(x2) - layer(x))[:, :, 2, 3, 3].abs().max() > 1e-4   # reaches another frame and place


def test_gradient_checkpointing_changes_memory_not_gradients(net):
    randomise_temporal(net)
    net.train()
    x = inputs()
    net(**x).pow(2).mean().backward()
    plain = {n: p.grad.clone() for n, p in net.named_parameters()}
    net.zero_grad()
    net.grad_checkpointing = True
    net(**x).pow(2).mean().backward()
    for n, p in net.named_parameters():
        torch.testing.assert_close(p.grad, plain[n], msg=n)


def test_added_refine_head_starts_as_identity(tmp_path, net):
    """A full-resolution head added to a trained model (model.refine) changes nothing until trained."""
    from safetensors.torch import save_file

    from vidiff.training.checkpoint import load_weights

    path = tmp_path / "model.safetensors"
    save_file(net.state_dict(), str(path))
    grown = VideoUNet(UNetConfig(**{**vars(TINY), "refine": 8}))
    new = load_weights(grown, path, allow_missing=True)
    assert new and all(name.startswith("refine.") for name in new)
    x = inputs(F=3)
    torch.testing.assert_close(grown.eval()(**x), net(**x))


def test_refine_head_trains_on_videos_and_images():
    """The head runs on clips and on single frames, and its zero-initialised output layer learns."""
    torch.manual_seed(0)
    net = VideoUNet(UNetConfig(**{**vars(TINY), "refine": 8}))
    for F in (1, 4):
        net.zero_grad()
        x = inputs(F=F)
        out = net(**x)
        assert out.shape == x["x"].shape
        (out - x["x"]).pow(2).mean().backward()
        assert net.refine.out.weight.grad.abs().sum() > 0


def test_refine_head_needs_patches():
    with pytest.raises(ValueError, match="refine"):
        VideoUNet(UNetConfig(**{**vars(TINY), "patch": 1, "refine": 8}))

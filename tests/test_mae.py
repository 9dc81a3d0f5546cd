import math

import pytest
import torch

import adamask
from adamask.mae import MaskedVideoAutoencoder, create_mae
from adamask.tokens import sinusoid_embedding


def moving_square_clip(b=4, frames=4, size=32, seed=0):
    """A bright square moving over a smooth background: (B, 3, T, H, W)."""
    g = torch.Generator().manual_seed(seed)
    video = torch.rand(b, 3, 1, 1, 1, generator=g).expand(b, 3, frames, size, size).clone() * 0.2
    for t in range(frames):
        x = 2 + 5 * t
        video[:, :, t, 8:20, x : x + 12] += torch.rand(b, 3, 1, 1, generator=g) + 0.5
    return video


@pytest.mark.parametrize("masking", ["random", "tube", "frame", "adaptive"])
def test_forward_shapes_and_losses(masking):
    model = create_mae("nano", masking=masking, mask_ratio=0.75)
    out = model(torch.randn(2, *model.input_shape))
    n, nm = model.num_tokens, model.mask_sampler.num_masked
    assert out.pred.shape == out.target.shape == (2, nm, 2 * 8 * 8 * 3)
    assert out.token_error.shape == (2, nm)
    assert torch.allclose(out.reconstruction_loss, out.token_error.mean())
    assert out.masking.mask.shape == (2, n)
    if masking == "adaptive":
        assert out.sampling_loss is not None and out.sampling_loss.shape == ()
        assert torch.allclose(out.loss, out.reconstruction_loss + 1e-4 * out.sampling_loss)
        assert isinstance(model.mask_sampler, adamask.AdaptiveTokenSampler)
    else:
        assert out.sampling_loss is None and torch.equal(out.loss, out.reconstruction_loss)


def test_targets_come_from_the_masked_tokens():
    model = create_mae("nano", masking="random", mask_ratio=0.5)
    video = torch.randn(2, *model.input_shape)
    out = model(video)
    full = adamask.normalized_targets(video, model.tubelet)
    assert torch.equal(out.target, full.gather(1, out.masking.masked_idx[..., None].expand(-1, -1, full.shape[-1])))


def test_given_masking_is_used():
    model = create_mae("nano", masking="adaptive", mask_ratio=0.5)
    m = adamask.create_masking("tube", grid=model.grid, mask_ratio=0.5).sample(2)
    out = model(torch.randn(2, *model.input_shape), masking=m)
    assert out.masking is m and out.sampling_loss is None


def test_gradient_isolation():
    """L_S reaches the sampler only; the reconstruction loss never reaches the sampler."""
    torch.manual_seed(0)
    model = create_mae("nano", masking="adaptive", mask_ratio=0.75)
    out = model(torch.randn(2, *model.input_shape))
    sampler = list(model.mask_sampler.parameters())
    backbone = [p for n, p in model.named_parameters() if not n.startswith("mask_sampler.")]
    grads = torch.autograd.grad(out.reconstruction_loss, sampler + backbone, allow_unused=True)
    assert all(g is None for g in grads[: len(sampler)])
    assert sum(g.abs().sum() for g in grads[len(sampler) :] if g is not None) > 0
    grads = torch.autograd.grad(out.sampling_loss, sampler + backbone, allow_unused=True)
    assert all(g is None for g in grads[len(sampler) :])
    assert all(g is not None for g in grads[: len(sampler)])
    assert grads[len(sampler) - 2].abs().sum() > 0  # head.weight


def test_authors_mode_lets_sampling_loss_reach_the_tokenizer():
    model = create_mae("nano", masking="adaptive", mask_ratio=0.75)
    model.mask_sampler.detach_input = False
    out = model(torch.randn(2, *model.input_shape))
    g = torch.autograd.grad(
        out.sampling_loss, [model.patch_embed.weight, model.blocks[0].attn.qkv.weight], allow_unused=True
    )
    assert g[0] is not None and g[0].abs().sum() > 0 and g[1] is None


def test_short_training_run_learns():
    """Masked reconstruction loss falls and the sampler's probabilities move away from uniform."""
    torch.manual_seed(0)
    model = create_mae("nano", masking="adaptive", mask_ratio=0.75)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
    video = moving_square_clip()
    n = model.num_tokens
    rec, kl = [], []
    for _ in range(60):
        out = model(video)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        rec.append(out.reconstruction_loss.item())
        p = out.masking.probs.detach()
        kl.append((p * (p * n).log()).sum(1).mean().item())  # KL(P || uniform)
    first, last = sum(rec[:5]) / 5, sum(rec[-5:]) / 5
    assert last < 0.8 * first, (first, last)
    assert kl[0] < 1e-3 and kl[-1] > 20 * max(kl[0], 1e-5), (kl[0], kl[-1])


def test_autocast_bf16():
    model = create_mae("nano", masking="adaptive", mask_ratio=0.75)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, *model.input_shape))
    assert out.masking.probs.dtype == torch.float32 and out.sampling_loss.dtype == torch.float32
    out.loss.backward()
    assert model.mask_sampler.head.weight.grad is not None


def test_reproducible_with_seed():
    model = create_mae("nano", masking="adaptive", mask_ratio=0.75)
    video = torch.randn(2, *model.input_shape)
    a = model(video, generator=torch.Generator().manual_seed(3)).masking.mask
    b = model(video, generator=torch.Generator().manual_seed(3)).masking.mask
    assert torch.equal(a, b)


def test_input_and_config_errors():
    model = create_mae("nano", masking="random", mask_ratio=0.5)
    with pytest.raises(ValueError, match=r"\(B, 3, 4, 32, 32\)"):
        model(torch.randn(2, 3, 4, 32, 24))
    with pytest.raises(TypeError, match="video"):
        model([0.0])
    with pytest.raises(ValueError, match="not divisible"):
        MaskedVideoAutoencoder(
            img_size=30,
            num_frames=4,
            tubelet=(2, 8, 8),
            embed_dim=32,
            depth=1,
            num_heads=2,
            decoder_embed_dim=32,
            decoder_depth=1,
            decoder_num_heads=2,
            masking="random",
        )
    wrong = adamask.create_masking("random", grid=(2, 2, 2), mask_ratio=0.5)
    with pytest.raises(ValueError, match="grid"):
        create_mae("nano", masking=wrong)
    with pytest.raises(ValueError, match="unknown size"):
        create_mae("huge")


def test_state_dict_roundtrip_includes_sampler():
    a = create_mae("nano", masking="adaptive", mask_ratio=0.75)
    b = create_mae("nano", masking="adaptive", mask_ratio=0.75)
    sd = a.state_dict()
    assert any(k.startswith("mask_sampler.") for k in sd)
    b.load_state_dict(sd)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    assert "mask_sampler.pos_embed" in a.no_weight_decay()


def test_base_config_is_the_paper_setup():
    model = create_mae("base", masking="adaptive").to("meta")
    assert model.grid == (8, 14, 14) and model.num_tokens == 1568
    assert model.mask_sampler.num_visible == 78
    assert len(model.decoder_blocks) == 4 and model.decoder_head.in_features == 384
    out = model(torch.randn(1, 3, 16, 224, 224, device="meta"))
    assert out.pred.shape == (1, 1490, 1536)


def test_sinusoid_embedding():
    e = sinusoid_embedding(10, 6)
    assert e.shape == (1, 10, 6)
    assert torch.allclose(e[0, 3, 0], torch.tensor(math.sin(3.0)))
    assert torch.allclose(e[0, 3, 1], torch.tensor(math.cos(3.0)))


def test_features_shape():
    model = create_mae("nano", masking="random", mask_ratio=0.5)
    assert model.features(torch.randn(3, *model.input_shape)).shape == (3, 32)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(sampling_weight=-1.0), "sampling_weight"),
        (dict(sampling_weight=float("nan")), "sampling_weight"),
        (dict(sampling_estimator="plackett"), "sampling_estimator"),
        (dict(sampling_baseline="ema"), "sampling_baseline"),
    ],
)
def test_loss_options_are_checked_when_the_model_is_built(kw, match):
    with pytest.raises(ValueError, match=match):
        create_mae("nano", masking="adaptive", **kw)


def test_video_dtypes():
    model = create_mae("nano", masking="random", mask_ratio=0.5)
    video = torch.randn(2, *model.input_shape)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    want = model(video, generator=g()).loss
    for dtype in (torch.float64, torch.float16, torch.bfloat16):  # other float dtypes are cast to the weights'
        got = model(video.to(dtype), generator=g()).loss
        assert torch.isfinite(got) and abs(got.item() - want.item()) < 0.05, dtype
    with pytest.raises(TypeError, match=r"video must be a floating-point tensor.*uint8"):
        model((video * 50).clamp(0, 255).to(torch.uint8))


@pytest.mark.parametrize("masking", ["random", "tube", "frame", "adaptive"])
def test_empty_batch_is_refused_by_every_strategy(masking):
    model = create_mae("nano", masking=masking, mask_ratio=0.5)
    with pytest.raises(ValueError, match=r"B >= 1|batch_size must be a positive int"):
        model(torch.randn(0, *model.input_shape))


def test_the_tubelet_embedding_is_the_conv3d_it_replaces():
    """Same initialisation for the same seed, same state_dict, same output (a reshape and one matmul)."""
    from adamask.mae import TubeletEmbedding

    torch.manual_seed(3)
    embed = TubeletEmbedding(3, 32, (2, 8, 8))
    torch.manual_seed(3)
    conv = torch.nn.Conv3d(3, 32, kernel_size=(2, 8, 8), stride=(2, 8, 8))
    assert torch.equal(embed.weight, conv.weight) and torch.equal(embed.bias, conv.bias)
    assert {k: v.shape for k, v in embed.state_dict().items()} == {k: v.shape for k, v in conv.state_dict().items()}
    video = torch.randn(2, 3, 4, 32, 16)
    want = conv(video).flatten(2).transpose(1, 2)
    got = embed(video)
    assert got.shape == (2, 2 * 4 * 2, 32) and got.is_contiguous()
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5)
    conv.weight.data.normal_()
    embed.load_state_dict(conv.state_dict())  # a Conv3d checkpoint loads as it is
    assert torch.allclose(embed(video), conv(video).flatten(2).transpose(1, 2), atol=1e-4, rtol=1e-5)
    grads = torch.autograd.grad(embed(video).square().sum(), [embed.weight, embed.bias])
    want_grads = torch.autograd.grad(conv(video).square().sum(), [conv.weight, conv.bias])
    for g, w in zip(grads, want_grads, strict=True):
        assert torch.allclose(g, w, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("norm_pix_loss", [True, False])
def test_targets_of_some_tokens_are_those_of_all_gathered(norm_pix_loss):
    model = create_mae("nano", masking="random", mask_ratio=0.5, norm_pix_loss=norm_pix_loss)
    video = torch.randn(2, *model.input_shape)
    idx = torch.tensor([[0, 5, 9], [15, 1, 2]])
    every = model.targets(video)
    assert every.shape == (2, model.num_tokens, 2 * 8 * 8 * 3) and every.dtype == torch.float32
    assert torch.equal(model.targets(video, idx), every.gather(1, idx[..., None].expand(-1, -1, every.shape[-1])))
    want = adamask.normalized_targets(video, model.tubelet) if norm_pix_loss else adamask.patchify(video, model.tubelet)
    assert torch.allclose(every, want)


def test_a_strategy_of_the_video_draws_from_the_clip_in_the_model():
    torch.manual_seed(0)
    options = {"temperature": 0.0, "first_slice": "zero"}
    model = create_mae("nano", masking="motion_pixels", mask_ratio=0.75, masking_options=options)
    assert model.mask_sampler.tubelet == model.tubelet and model.grid == (2, 4, 4)
    video = torch.zeros(2, *model.input_shape)
    video[:, :, 2:, :, 16:] = 1.0  # the right half changes at the second time slice
    out = model(video)
    assert out.masking.num_visible == model.mask_sampler.num_visible == 8
    shown = out.masking.visible_idx
    assert bool(((shown % 4 >= 2) & (shown // 16 == 1)).all())  # the right half of time slice 1
    out.loss.backward()
    with pytest.raises(TypeError, match=r"needs='video'.*video=video"):
        model.sample_masking(model.tokenize(video))
    other = adamask.create_masking("motion_pixels", grid=model.grid, mask_ratio=0.75, tubelet=(1, 8, 8))
    with pytest.raises(ValueError, match=r"tubelets \(1, 8, 8\).*tubelet is \(2, 8, 8\)"):
        create_mae("nano", masking=other)


def test_loss_settings_a_strategy_cannot_apply_are_refused_when_the_model_is_built():
    with pytest.raises(ValueError, match="error_predictor.*sampling_entropy_weight must be 0"):
        create_mae("nano", masking="error_predictor", sampling_entropy_weight=1e-3)
    model = create_mae("nano", masking="adaptive", sampling_entropy_weight=1e-3)
    assert model.loss_settings.entropy_weight == 1e-3

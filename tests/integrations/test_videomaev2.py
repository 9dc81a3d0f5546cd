"""VideoMAEv2 integration against a real checkout given by ADAMASK_VIDEOMAEV2_ROOT (skipped without it).
The parts that need no checkout are tested in test_videomae.py."""

from __future__ import annotations

import importlib
import os
import types

import _strategy_checks as S
import _upstream_helpers as H
import _videomae_checks as C
import pytest
import torch
from _toy_strategies import ToyLearned
from einops import rearrange

from adamask.integrations import videomae as vm


@pytest.fixture(scope="module")
def v2():
    root = H.checkout("ADAMASK_VIDEOMAEV2_ROOT", "models/modeling_pretrain.py", "OpenGVLab/VideoMAEv2")
    with H.upstream_on_path([root]):
        mods = types.SimpleNamespace(
            root=root,
            **{
                n.replace(".", "_"): importlib.import_module(n)
                for n in ("models.modeling_pretrain", "optim_factory", "utils", "dataset.masking_generator")
            },
        )
        yield mods


def test_v2_generators_match_theirs(v2):
    gen = v2.dataset_masking_generator
    for theirs, ours in [
        (gen.TubeMaskingGenerator((8, 14, 14), 0.9), vm.TubeMaskingGeneratorV2((8, 14, 14), 0.9)),
        (gen.RandomMaskingGenerator((8, 14, 14), 0.9), vm.RandomMaskingGenerator((8, 14, 14), 0.9)),
    ]:
        a, b = theirs(), ours()
        assert a.dtype == b.dtype and a.shape == b.shape and a.sum() == b.sum()


def test_v2_running_cell_generator_matches_theirs(v2):
    """Our decoder-mask generator returns their shape and dtype, and every mask it draws is one of the
    masks theirs draws (the same four running-cell phases), for every ratio they accept."""
    gen = v2.dataset_masking_generator
    torch.manual_seed(0)
    for grid, ratio in [((8, 14, 14), 0.5), ((2, 4, 4), 0.25), ((4, 2, 6), 0.75)]:
        theirs, ours = gen.RunningCellMaskingGenerator(grid, ratio), vm.RunningCellMaskingGenerator(grid, ratio)
        phases = {m.tobytes() for m in theirs.all_mask_maps}
        draws = [ours() for _ in range(40)]
        assert all(d.dtype == theirs().dtype and d.shape == theirs().shape for d in draws)
        assert {d.tobytes() for d in draws} == phases


def test_v2_checkout_targets_and_training(v2):
    torch.manual_seed(0)
    model = vm.wrap(C.tiny_model(v2.models_modeling_pretrain, "v2"), mask_ratio=0.9)
    first = C.check_targets_from_sampled_mask(model)
    opt = C.optimizer_for(v2.optim_factory, model)
    before = C.snapshot(model)
    n = 32
    # their loader's batches without decoder masking: (video, encoder mask, 1 - encoder mask)
    loader = [(torch.randn(2, 3, 4, 32, 32), torch.zeros(2, 2, 16), torch.ones(2, 2, 16)) for _ in range(3)]
    stats = vm.train_one_epoch(
        model, loader, opt, "cpu", 0, v2.utils.NativeScalerWithGradNormCount(), patch_size=C.PATCH, start_steps=0
    )
    n_sampler = C.changed(before, model, "mask_sampler.")
    n_backbone = C.changed(before, model, "", exclude="mask_sampler.")
    assert n_sampler > 0 and n_backbone > 0 and n == model.mask_sampler.num_tokens
    C.write_log(
        os.environ.get("ADAMASK_CHECKOUT_LOG"),
        dict(
            test="videomaev2-tiny",
            steps=3,
            first=first,
            epoch=stats,
            sampler_tensors_changed=n_sampler,
            backbone_tensors_changed=n_backbone,
        ),
    )


def test_v2_checkout_decoder_mask(v2):
    """With their running-cell decoder mask: the model decodes ~decode_mask, and the loss is their
    masked mean over the decoded tokens that the *sampled* mask hid."""
    torch.manual_seed(0)
    model = vm.wrap(C.tiny_model(v2.models_modeling_pretrain, "v2"), mask_ratio=0.75)
    cell = v2.dataset_masking_generator.RunningCellMaskingGenerator((2, 4, 4), 0.5)
    decode_mask = torch.as_tensor(__import__("numpy").stack([cell(), cell()])).flatten(1).to(torch.bool)
    videos = torch.randn(2, 3, 4, 32, 32)
    out = vm.pretraining_losses(model, videos, decode_mask, patch_size=C.PATCH)
    # their recipe, given the sampled mask
    x = videos * C.STD + C.MEAN
    x = rearrange(x, "b c (t p0) (h p1) (w p2) -> b (t h w) (p0 p1 p2) c", p0=2, p1=C.PATCH, p2=C.PATCH)
    x = (x - x.mean(dim=-2, keepdim=True)) / (x.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6)
    x = rearrange(x, "b n p c -> b n (p c)")
    labels = x[~decode_mask].reshape(2, -1, x.shape[-1])
    cal = out.masking.mask[~decode_mask].reshape(2, -1)
    loss = ((out.pred - labels) ** 2).mean(-1)
    assert torch.allclose(out.target, labels, atol=1e-5)
    assert torch.allclose(out.reconstruction_loss, (loss * cal).sum() / cal.sum(), atol=1e-6)
    assert torch.allclose(out.loss, out.reconstruction_loss + model.sampling_weight * out.sampling_loss)
    opt = C.optimizer_for(v2.optim_factory, model)
    before = C.snapshot(model)
    loader = [(videos, torch.zeros(2, 2, 16), decode_mask.view(2, 2, 16).float()) for _ in range(3)]
    stats = vm.train_one_epoch(model, loader, opt, "cpu", 0, None, patch_size=C.PATCH, start_steps=0)
    assert C.changed(before, model, "mask_sampler.") > 0
    assert C.changed(before, model, "", exclude="mask_sampler.") > 0
    C.write_log(os.environ.get("ADAMASK_CHECKOUT_LOG"), dict(test="videomaev2-tiny-decoder-mask", steps=3, epoch=stats))


def test_v2_checkout_learned_strategy_from_user_code(v2):
    """The learned strategy registered only in the tests trains inside their model with their optimizer."""
    torch.manual_seed(0)
    model = vm.wrap(C.tiny_model(v2.models_modeling_pretrain, "v2"), mask_ratio=0.9, strategy="toy_learned")
    assert isinstance(model.mask_sampler, ToyLearned)
    C.check_targets_from_sampled_mask(model)
    opt = v2.optim_factory.create_optimizer(C.optimizer_args(), model)
    before = C.snapshot(model)
    loader = [(torch.randn(2, 3, 4, 32, 32), torch.zeros(2, 2, 16), torch.ones(2, 2, 16)) for _ in range(2)]
    stats = vm.train_one_epoch(model, loader, opt, "cpu", 0, None, patch_size=C.PATCH, start_steps=0)
    assert "loss_sampling" in stats and C.changed(before, model, "mask_sampler.") > 0


def test_v2_checkout_a_video_strategy_draws_from_their_videos(v2):
    torch.manual_seed(0)
    model = vm.wrap(C.tiny_model(v2.models_modeling_pretrain, "v2"), mask_ratio=0.75, strategy="motion_pixels")
    C.check_video_strategy_draws_from_the_videos(model)


@pytest.mark.parametrize("strategy", S.STRATEGIES)
def test_v2_checkout_motion_and_error_predictor_with_their_decoder_mask(v2, strategy):
    """Beyond AdaMAE, with their running-cell decoder mask: the term (none for motion) scores only the
    tokens both masked and reconstructed; every parameter gets a gradient; their optimizer trains."""
    torch.manual_seed(0)
    model = vm.wrap(
        C.tiny_model(v2.models_modeling_pretrain, "v2"), mask_ratio=0.75, strategy=strategy, sampling_weight=0.5
    )
    cell = v2.dataset_masking_generator.RunningCellMaskingGenerator((2, 4, 4), 0.5)
    decode_mask = torch.as_tensor(__import__("numpy").stack([cell(), cell()])).flatten(1).to(torch.bool)
    out = vm.pretraining_losses(model, torch.randn(2, 3, 4, 32, 32), decode_mask, patch_size=C.PATCH)
    assert torch.equal(out.masking.scored_mask, out.masking.mask & ~decode_mask)
    S.check_loss(
        model.mask_sampler,
        out.masking,
        out.token_error,
        out.loss,
        out.reconstruction_loss,
        out.sampling_loss,
        model.loss_settings,
    )
    out.loss.backward()
    S.check_gradients(model)
    model.zero_grad(set_to_none=True)
    opt = v2.optim_factory.create_optimizer(C.optimizer_args(), model)
    before = C.snapshot(model)
    loader = [(torch.randn(2, 3, 4, 32, 32), torch.zeros(2, 2, 16), decode_mask.view(2, 2, 16).float())] * 2
    stats = vm.train_one_epoch(model, loader, opt, "cpu", 0, None, patch_size=C.PATCH, start_steps=0)
    assert ("loss_sampling" in stats) == (strategy == "error_predictor")
    assert C.changed(before, model, "", exclude="mask_sampler.") > 0


def test_v2_checkout_grid_mismatch(v2):
    model = vm.wrap(C.tiny_model(v2.models_modeling_pretrain, "v2"), mask_ratio=0.9)
    with pytest.raises(ValueError, match="tokens"):
        model(torch.randn(1, 3, 8, 32, 32))


@pytest.mark.parametrize("decoder_ratio", ["0.0", "0.5"])
def test_v2_launcher_end_to_end(v2, tmp_path, decoder_ratio):
    clips = H.make_clips(tmp_path / "clips")
    (tmp_path / "train.csv").write_text("".join(f"{c.name} 0 -1\n" for c in clips))
    out = tmp_path / "out"
    r = H.run_module(
        "adamask.integrations.videomae",
        [
            "--repo",
            str(v2.root),
            "--no-compile",
            "--",
            "--data_root",
            str(tmp_path / "clips"),
            "--data_path",
            str(tmp_path / "train.csv"),
            "--mask_type",
            "adaptive",
            "--mask_ratio",
            "0.9",
            "--decoder_mask_ratio",
            decoder_ratio,
            "--model",
            "pretrain_videomae_small_patch16_224",
            "--num_frames",
            "4",
            "--sampling_rate",
            "2",
            "--batch_size",
            "2",
            "--num_workers",
            "1",
            "--epochs",
            "1",
            "--warmup_epochs",
            "0",
            "--device",
            "cpu",
            "--output_dir",
            str(out),
            "--no_auto_resume",
            "--save_ckpt_freq",
            "1",
        ],
        cwd=tmp_path,
    )
    C.check_launcher_run(r, out, "checkpoint-0.pth", f"videomaev2-launcher-decoder{decoder_ratio}")
    # with decoder masking their loader draws adamask's running-cell decoder masks
    ours = "Decoder Masking Generator = adamask running_cell masking generator" in r.stdout
    assert ours == (decoder_ratio != "0.0")

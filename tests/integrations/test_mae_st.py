"""mae_st integration: argument handling (run everywhere) and tests against a real checkout given by
ADAMASK_MAE_ST_ROOT (a folder named mae_st; skipped without it)."""

from __future__ import annotations

import importlib
import math
import os
import re
import shlex
import types
from typing import List

import _strategy_checks as S
import _upstream_helpers as H
import _videomae_checks as C
import pytest
import torch
from _toy_strategies import ToyLearned
from torch import nn

from adamask.integrations import mae_st as ms

# ---------------------------------------------------------------------------------------------
# no checkout needed


def test_wrap_rejects_other_models():
    with pytest.raises(TypeError, match="MaskedAutoencoderViT"):
        ms.wrap(nn.Linear(2, 2))


# ---------------------------------------------------------------------------------------------
# against a real mae_st checkout


@pytest.fixture(scope="module")
def st():
    root = H.checkout("ADAMASK_MAE_ST_ROOT", "models_mae.py", "facebookresearch/mae_st")
    if root.name != "mae_st":
        pytest.skip(f"ADAMASK_MAE_ST_ROOT={root} must be a folder named mae_st (it imports itself as mae_st)")
    with H.upstream_on_path([root.parent]):
        mods = types.SimpleNamespace(
            root=root,
            **{
                n.split(".")[-1]: importlib.import_module(n)
                for n in ("mae_st.models_mae", "mae_st.util.misc", "mae_st.engine_pretrain")
            },
        )
        yield mods


def tiny(st, **kw):
    torch.manual_seed(0)
    return st.models_mae.MaskedAutoencoderViT(
        img_size=32,
        patch_size=8,
        in_chans=3,
        embed_dim=32,
        depth=1,
        num_heads=2,
        decoder_embed_dim=16,
        decoder_depth=1,
        decoder_num_heads=2,
        num_frames=8,
        t_patch_size=2,
        pred_t_dim=8,
        **kw,
    )


@pytest.mark.parametrize(
    "kw",
    [
        dict(norm_pix_loss=True, cls_embed=True, sep_pos_embed=True),
        dict(norm_pix_loss=False, cls_embed=False, sep_pos_embed=False),
    ],
)
def test_random_masking_contract_and_loss(st, kw):
    model = ms.wrap(tiny(st, **kw), mask_ratio=0.9)
    base_forward_loss = st.models_mae.MaskedAutoencoderViT.forward_loss
    x = torch.randn(2, 64, 32)
    x_masked, mask, ids_restore, ids_keep = model.random_masking(x, 0.9)
    keep = int(64 * (1 - 0.9))
    assert x_masked.shape == (2, keep, 32) and mask.shape == (2, 64) and mask.dtype == torch.float32
    assert ids_keep.shape == (2, keep) and ids_restore.shape == (2, 64)
    assert torch.equal(x_masked, torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, 32)))
    assert (mask.sum(1) == 64 - keep).all() and (mask.gather(1, ids_keep) == 0).all()
    order = torch.cat([ids_keep, torch.argsort(mask, dim=1, stable=True)[:, keep:]], 1)
    assert torch.equal(torch.gather(order, 1, ids_restore), torch.arange(64).expand(2, -1))
    model.__dict__.pop("_adamask_masking", None)

    seen = {}
    model.mask_sampler.register_forward_hook(lambda m, a, out: seen.__setitem__("m", out))
    imgs = torch.randn(2, 3, 8, 32, 32)
    loss, pred, mask = model(imgs, mask_ratio=0.9)
    assert torch.equal(mask.bool(), seen["m"].mask)  # the loss is computed on the sampled mask
    rec, ls = model.adamask_losses
    assert torch.allclose(rec, base_forward_loss(model, imgs, pred, mask))  # their own L_R on that mask
    assert torch.allclose(loss, rec + model.sampling_weight * ls) and ls.item() != 0.0
    with pytest.raises(ValueError, match="mask_ratio"):
        model(imgs, mask_ratio=0.75)


def test_checkout_training_with_their_loop(st):
    model = ms.wrap(tiny(st, norm_pix_loss=True, cls_embed=True, sep_pos_embed=True), mask_ratio=0.9)
    groups = st.misc.add_weight_decay(model, 0.05, skip_list=model.no_weight_decay())
    assert any(p is model.mask_sampler.pos_embed for p in groups[0]["params"]) and groups[0]["weight_decay"] == 0
    opt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.95))
    args = types.SimpleNamespace(
        accum_iter=1,
        mask_ratio=0.9,
        clip_grad=None,
        lr=1e-3,
        min_lr=0.0,
        warmup_epochs=0,
        epochs=1,
        repeat_aug=1,
        num_checkpoint_del=0,
    )
    before = C.snapshot(model)
    loader = [(torch.randn(2, 3, 8, 32, 32), torch.zeros(2)) for _ in range(3)]
    seen = []
    model.register_forward_hook(lambda m, a, out: seen.append(m.adamask_losses.tolist()))
    stats = st.engine_pretrain.train_one_epoch(
        model,
        loader,
        opt,
        torch.device("cpu"),
        0,
        st.misc.NativeScalerWithGradNormCount(fp32=True),
        args=args,
        fp32=True,
    )
    n_sampler = C.changed(before, model, "mask_sampler.")
    n_backbone = C.changed(before, model, "", exclude="mask_sampler.")
    assert n_sampler > 0 and n_backbone > 0 and len(seen) == 3
    assert all(math.isfinite(r) and math.isfinite(s) and s != 0 for r, s in seen)
    C.write_log(
        os.environ.get("ADAMASK_CHECKOUT_LOG"),
        dict(
            test="mae_st-tiny-their-loop",
            steps=3,
            per_step_rec_sampling=seen,
            epoch=stats,
            sampler_tensors_changed=n_sampler,
            backbone_tensors_changed=n_backbone,
        ),
    )


def train_two_steps_with_their_loop(st, model: nn.Module) -> None:
    """Two steps of their engine_pretrain.train_one_epoch with their weight-decay groups, in fp32."""
    opt = torch.optim.AdamW(st.misc.add_weight_decay(model, 0.05, skip_list=model.no_weight_decay()), lr=1e-3)
    args = types.SimpleNamespace(
        accum_iter=1,
        mask_ratio=0.9,
        clip_grad=None,
        lr=1e-3,
        min_lr=0.0,
        warmup_epochs=0,
        epochs=1,
        repeat_aug=1,
        num_checkpoint_del=0,
    )
    loader = [(torch.randn(2, 3, 8, 32, 32), torch.zeros(2)) for _ in range(2)]
    st.engine_pretrain.train_one_epoch(
        model,
        loader,
        opt,
        torch.device("cpu"),
        0,
        st.misc.NativeScalerWithGradNormCount(fp32=True),
        args=args,
        fp32=True,
    )


def test_checkout_learned_strategy_from_user_code(st):
    """The learned strategy registered only in the tests, in their model, trained by their own loop;
    the estimator and baseline reach the loss."""
    model = ms.wrap(tiny(st, norm_pix_loss=True), mask_ratio=0.9, strategy="toy_learned")
    assert isinstance(model.mask_sampler, ToyLearned)
    before = C.snapshot(model)
    train_two_steps_with_their_loop(st, model)
    assert C.changed(before, model, "mask_sampler.") > 0


def test_checkout_estimator_and_baseline_reach_the_loss(st):
    from adamask import sampling_loss

    model = ms.wrap(
        tiny(st, norm_pix_loss=True),
        mask_ratio=0.9,
        sampling_weight=0.5,
        sampling_estimator="plackett_luce",
        sampling_baseline="mean",
    )
    seen = {}
    model.mask_sampler.register_forward_hook(lambda m, a, out: seen.__setitem__("m", out))
    imgs = torch.randn(2, 3, 8, 32, 32)
    loss, pred, _ = model(imgs, mask_ratio=0.9)
    m = seen["m"]
    want = sampling_loss(
        m.probs,
        m.mask,
        ms.token_error(model, imgs, pred),
        estimator="plackett_luce",
        baseline="mean",
        draw_order=m.draw_order,
    )
    rec, ls = model.adamask_losses
    torch.testing.assert_close(ls, want.detach())
    torch.testing.assert_close(loss, rec + 0.5 * want)


@pytest.mark.parametrize("strategy", S.STRATEGIES)
def test_checkout_motion_and_error_predictor_with_their_loop(st, strategy):
    """Beyond AdaMAE, in their model trained by their own loop: motion adds no term and leaves no
    parameter without a gradient; error_predictor adds its own term, weighted by lambda."""
    model = ms.wrap(tiny(st, norm_pix_loss=True), mask_ratio=0.9, strategy=strategy, sampling_weight=0.5)
    seen = {}
    model.mask_sampler.register_forward_hook(lambda m, a, out: seen.__setitem__("m", out))
    imgs = torch.randn(2, 3, 8, 32, 32)
    loss, pred, _ = model(imgs, mask_ratio=0.9)
    rec, ls = model.adamask_losses
    S.check_loss(model.mask_sampler, seen["m"], ms.token_error(model, imgs, pred), loss, rec, ls, model.loss_settings)
    loss.backward()
    S.check_gradients(model)
    model.zero_grad(set_to_none=True)
    before = C.snapshot(model)
    train_two_steps_with_their_loop(st, model)
    assert C.changed(before, model, "", exclude="mask_sampler.") > 0


def test_checkout_a_video_strategy_draws_from_the_clip_given_to_their_forward(st):
    """``motion_pixels`` in their model: built with its tubelet, it draws from the clip their forward is
    given (the same draw as its own on that clip, from the same seed), inside their random_masking."""
    model = ms.wrap(tiny(st, norm_pix_loss=True), mask_ratio=0.9, strategy="motion_pixels")
    assert model.mask_sampler.tubelet == (2, 8, 8)
    imgs = torch.randn(2, 3, 8, 32, 32)
    torch.manual_seed(3)
    loss, _, mask = model(imgs, mask_ratio=0.9)
    torch.manual_seed(3)
    want = model.mask_sampler(imgs)
    assert torch.equal(mask.bool(), want.mask) and torch.isfinite(loss)
    rec, ls = model.adamask_losses
    assert float(ls) == 0.0 and torch.equal(loss.detach(), rec)


def test_checkout_grid_mismatch(st):
    from adamask import AdaptiveTokenSampler

    with pytest.raises(ValueError, match="token grid"):
        ms.wrap(tiny(st), sampler=AdaptiveTokenSampler(32, num_heads=2, grid=(2, 4, 4), mask_ratio=0.9))
    with pytest.raises(ValueError, match="embed_dim"):
        ms.wrap(tiny(st), sampler=AdaptiveTokenSampler(16, num_heads=2, grid=(4, 4, 4), mask_ratio=0.9))


# the README example's options sized for a CPU run of seconds: every other option is used as written
CPU_SIZES = {
    "--model": "mae_vit_base_patch16",
    "--epochs": "1",
    "--num_frames": "4",
    "--pred_t_dim": "4",
    "--decoder_embed_dim": "64",
    "--decoder_depth": "1",
    "--num_workers": "1",
    "--repeat_aug": "1",
    "--warmup_epochs": "0",
}


def readme_example() -> List[str]:
    """Their arguments in the launcher example of integrations/mae_st/README.md (after ``--``)."""
    text = (H.REPO_ROOT / "integrations" / "mae_st" / "README.md").read_text()
    block = next(b for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S) if "--path_to_data_dir" in b)
    argv = shlex.split(block.replace("\\\n", " "))
    assert argv[:3] == ["python", "-m", "adamask.integrations.mae_st"] and "--" in argv
    return argv[argv.index("--") + 1 :]


def test_checkout_launcher_runs_the_readme_example_as_written(st, tmp_path):
    """The README's example, its sizes made small (`CPU_SIZES`), its data a folder of clips: every other
    option of theirs as written, on one machine, trains and logs both loss terms."""
    clips = H.make_clips(tmp_path / "data")
    (tmp_path / "data" / "train.csv").write_text("".join(f"{c} 0\n" for c in clips))
    theirs = readme_example()
    assert theirs[theirs.index("--path_to_data_dir") + 1] == "${KINETICS_DIR}"
    theirs[theirs.index("--path_to_data_dir") + 1] = str(tmp_path / "data")
    for flag, value in CPU_SIZES.items():
        theirs[theirs.index(flag) + 1] = value
    out = tmp_path / "out"
    more = ["--decoder_num_heads", "2", "--device", "cpu", "--output_dir", str(out), "--log_dir", str(out)]
    r = H.run_module("adamask.integrations.mae_st", ["--repo", str(st.root), "--", *theirs, *more], cwd=tmp_path)
    C.check_launcher_run(r, out, "checkpoint-00000.pth", "mae_st-launcher")
    assert "adamask: adaptive masking" in r.stdout and "Not using distributed mode" in r.stdout

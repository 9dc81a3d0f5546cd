"""VideoMAE (v1) integration against a real checkout given by ADAMASK_VIDEOMAE_ROOT (skipped without
it). The parts that need no checkout are tested in test_videomae_*.py on a stand-in model."""

from __future__ import annotations

import importlib
import os
import types
from pathlib import Path

import _strategy_checks as S
import _upstream_helpers as H
import _videomae_checks as C
import pytest
import torch
from _toy_strategies import ToyLearned

from adamask.integrations import videomae as vm

# ---------------------------------------------------------------------------------------------
# against a real VideoMAE checkout


@pytest.fixture(scope="module")
def v1():
    root = H.checkout("ADAMASK_VIDEOMAE_ROOT", "modeling_pretrain.py", "MCG-NJU/VideoMAE")
    if (root / "models" / "modeling_pretrain.py").is_file():
        pytest.skip("ADAMASK_VIDEOMAE_ROOT points at a VideoMAEv2 checkout")
    with H.upstream_on_path([root]):
        mods = types.SimpleNamespace(
            root=root,
            **{
                n: importlib.import_module(n)
                for n in ("modeling_pretrain", "optim_factory", "utils", "engine_for_pretraining", "masking_generator")
            },
        )
        yield mods


def test_v1_generator_matches_theirs(v1):
    theirs = v1.masking_generator.TubeMaskingGenerator((8, 14, 14), 0.9)()
    ours = vm.TubeMaskingGenerator((8, 14, 14), 0.9)()
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape and ours.sum() == theirs.sum()


def test_v1_checkout_training(v1):
    torch.manual_seed(0)
    model = vm.wrap(C.tiny_model(v1.modeling_pretrain, "v1"), mask_ratio=0.9)
    first = C.check_targets_from_sampled_mask(model)
    opt = C.optimizer_for(v1.optim_factory, model)
    scaler = v1.utils.NativeScalerWithGradNormCount()
    before = C.snapshot(model)
    loader = [(torch.randn(2, 3, 16, 32, 32), torch.zeros(2, 128)) for _ in range(3)]
    stats = vm.train_one_epoch(model, loader, opt, "cpu", 0, scaler, patch_size=C.PATCH, start_steps=0)
    n_sampler = C.changed(before, model, "mask_sampler.")
    n_backbone = C.changed(before, model, "", exclude="mask_sampler.")
    assert n_sampler > 0 and n_backbone > 0
    C.write_log(
        os.environ.get("ADAMASK_CHECKOUT_LOG"),
        dict(
            test="videomae-v1-tiny",
            steps=3,
            first=first,
            epoch=stats,
            sampler_tensors_changed=n_sampler,
            backbone_tensors_changed=n_backbone,
        ),
    )


def test_v1_checkout_learned_strategy_from_user_code(v1):
    """The learned strategy registered only in the tests trains inside their model with their optimizer."""
    torch.manual_seed(0)
    model = vm.wrap(C.tiny_model(v1.modeling_pretrain, "v1"), mask_ratio=0.9, strategy="toy_learned")
    assert isinstance(model.mask_sampler, ToyLearned)
    C.check_targets_from_sampled_mask(model)
    opt = v1.optim_factory.create_optimizer(C.optimizer_args(), model)
    before = C.snapshot(model)
    loader = [(torch.randn(2, 3, 16, 32, 32), torch.zeros(2, 128)) for _ in range(2)]
    stats = vm.train_one_epoch(
        model, loader, opt, "cpu", 0, v1.utils.NativeScalerWithGradNormCount(), patch_size=C.PATCH, start_steps=0
    )
    assert "loss_sampling" in stats and C.changed(before, model, "mask_sampler.") > 0


@pytest.mark.parametrize("strategy", S.STRATEGIES)
def test_v1_checkout_motion_and_error_predictor(v1, strategy):
    """Beyond AdaMAE, by name, in their model with their optimizer and scaler: motion adds no term and
    leaves no parameter without a gradient; error_predictor adds its own term and trains."""
    torch.manual_seed(0)
    model = vm.wrap(C.tiny_model(v1.modeling_pretrain, "v1"), mask_ratio=0.9, strategy=strategy, sampling_weight=0.5)
    out = vm.pretraining_losses(model, torch.randn(2, 3, 16, 32, 32), patch_size=C.PATCH)
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
    opt = v1.optim_factory.create_optimizer(C.optimizer_args(), model)
    before = C.snapshot(model)
    loader = [(torch.randn(2, 3, 16, 32, 32), torch.zeros(2, 128)) for _ in range(2)]
    stats = vm.train_one_epoch(
        model, loader, opt, "cpu", 0, v1.utils.NativeScalerWithGradNormCount(), patch_size=C.PATCH, start_steps=0
    )
    assert ("loss_sampling" in stats) == (strategy == "error_predictor")
    assert C.changed(before, model, "", exclude="mask_sampler.") > 0


def test_v1_checkout_a_video_strategy_draws_from_their_videos(v1):
    torch.manual_seed(0)
    model = vm.wrap(C.tiny_model(v1.modeling_pretrain, "v1"), mask_ratio=0.9, strategy="motion_pixels")
    C.check_video_strategy_draws_from_the_videos(model)


def test_v1_checkout_grid_mismatch(v1):
    from adamask import AdaptiveTokenSampler

    model = C.tiny_model(v1.modeling_pretrain, "v1")
    with pytest.raises(ValueError, match="token grid"):
        vm.wrap(model, sampler=AdaptiveTokenSampler(32, num_heads=2, grid=(4, 4, 4), mask_ratio=0.9))
    vm.wrap(model, mask_ratio=0.9)
    with pytest.raises(ValueError, match="tokens"):
        model(torch.randn(1, 3, 8, 32, 32))


def test_v1_launcher_end_to_end(v1, tmp_path):
    clips = H.make_clips(tmp_path / "clips")
    (tmp_path / "train.csv").write_text("".join(f"{c} 0\n" for c in clips))
    out = tmp_path / "out"
    r = H.run_module(
        "adamask.integrations.videomae",
        [
            "--repo",
            str(v1.root),
            "--",
            "--data_path",
            str(tmp_path / "train.csv"),
            "--mask_type",
            "adaptive",
            "--mask_ratio",
            "0.9",
            "--model",
            "pretrain_videomae_small_patch16_224",
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
    C.check_launcher_run(r, out, "checkpoint-0.pth", "videomae-v1-launcher")
    assert "adamask: adaptive masking" in r.stdout


DDP_SCRIPT = """
import os, sys, torch, torch.distributed as dist
from adamask.integrations.compat import install_compat_shims
install_compat_shims()
sys.path.insert(0, {root!r})
import modeling_pretrain
import _videomae_checks as C
from adamask.integrations import videomae as vm
torch.set_num_threads(1)
dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)
model = vm.wrap(C.tiny_model(modeling_pretrain, "v1"), mask_ratio=0.9)
ddp = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=False)
opt = torch.optim.AdamW(ddp.parameters(), lr=1e-3)
torch.manual_seed(100 + rank)
masks = []
model.mask_sampler.register_forward_hook(lambda m, a, o: masks.append(o.mask.clone()))
loader = [(torch.randn(2, 3, 16, 32, 32), torch.zeros(2, 128)) for _ in range(3)]
vm.train_one_epoch(ddp, loader, opt, "cpu", 0, None, patch_size=8, start_steps=0, print_freq=100)
w = torch.cat([p.detach().flatten() for p in model.mask_sampler.parameters()])
ws = [torch.zeros_like(w) for _ in range(2)]
dist.all_gather(ws, w)
ms = [torch.zeros_like(masks[0]) for _ in range(2)]
dist.all_gather(ms, masks[0])
if rank == 0:
    print("RESULT", torch.equal(ws[0], ws[1]), not torch.equal(ms[0], ms[1]), flush=True)
dist.barrier()  # both ranks are done with their collectives before either tears the group down
dist.destroy_process_group()
sys.stdout.flush()
os._exit(0)  # skip interpreter teardown: a library thread occasionally aborts there (SIGABRT) after the result

"""


def test_v1_checkout_ddp_two_processes(v1, tmp_path, monkeypatch):
    """2 CPU processes (gloo), DDP without find_unused_parameters: sampler weights stay identical,
    the ranks draw different masks."""
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # the checks on their tiny model
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT.format(root=str(v1.root)))
    r = H.run_module(
        "torch.distributed.run",
        ["--nproc_per_node", "2", "--master_port", str(H.free_port()), str(script)],
        cwd=tmp_path,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "RESULT True True" in r.stdout

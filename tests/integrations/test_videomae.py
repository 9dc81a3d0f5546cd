"""VideoMAE (v1) integration: unit tests on a stand-in model (run everywhere) and tests against a
real checkout given by ADAMASK_VIDEOMAE_ROOT (skipped without it)."""
from __future__ import annotations

import importlib
import json
import math
import os
import sys
import textwrap
import types
from pathlib import Path

import pytest
import torch
from torch import nn

from adamask.integrations import videomae as vm
from adamask.integrations._common import pop_option, split_launcher_argv

sys.path.insert(0, str(Path(__file__).parent))
import _upstream_helpers as H  # noqa: E402
import _videomae_checks as C  # noqa: E402


# ---------------------------------------------------------------------------------------------
# the generator drop-in: call and output contract, counts re-derived without numpy

def expected_masked(strategy: str, grid, ratio: float) -> int:
    t, h, w = grid
    return {"tube": t * int(ratio * h * w), "random": int(ratio * t * h * w),
            "frame": int(ratio * t) * h * w, "adaptive": 0}[strategy]


@pytest.mark.parametrize("strategy", ["tube", "random", "frame", "adaptive"])
@pytest.mark.parametrize("shape", ["flat", "frames"])
@pytest.mark.parametrize("grid,ratio", [((8, 14, 14), 0.9), ((2, 4, 4), 0.75), ((4, 3, 5), 0.5)])
def test_generator_output_contract(strategy, shape, grid, ratio):
    gen = vm.MaskingGenerator(grid, ratio, strategy=strategy, shape=shape)
    for _ in range(3):
        m = gen()
        assert type(m).__module__ == "numpy" and m.dtype.name == "float64"
        t, h, w = grid
        assert m.shape == ((t * h * w,) if shape == "flat" else (t, h * w))
        flat = [float(v) for v in m.reshape(-1).tolist()]
        assert set(flat) <= {0.0, 1.0}
        assert int(sum(flat)) == expected_masked(strategy, grid, ratio)
        slices = [flat[i * h * w:(i + 1) * h * w] for i in range(t)]
        if strategy == "tube":
            assert all(s == slices[0] for s in slices)
        if strategy == "frame":
            assert all(len(set(s)) == 1 for s in slices)


def test_generator_aliases_match_upstream_shapes():
    assert vm.TubeMaskingGenerator((8, 14, 14), 0.9)().shape == (1568,)
    assert vm.TubeMaskingGeneratorV2((8, 14, 14), 0.9)().shape == (8, 196)
    assert vm.RandomMaskingGenerator(4, 0.5)().shape == (64,)
    torch.manual_seed(0)
    a = vm.TubeMaskingGenerator((2, 4, 4), 0.5)()
    torch.manual_seed(0)
    assert (vm.TubeMaskingGenerator((2, 4, 4), 0.5)() == a).all()
    assert "placeholder" in repr(vm.TubeMaskingGenerator((2, 4, 4), 0.5, strategy="adaptive"))


@pytest.mark.parametrize("kwargs,err", [
    (dict(input_size=(2, 4, 4), mask_ratio=0.5, strategy="blocks"), ValueError),
    (dict(input_size=(2, 4, 4), mask_ratio=0.5, shape="grid"), ValueError),
    (dict(input_size=(2, 4, 4), mask_ratio=1.5), ValueError),
    (dict(input_size=(2, 4), mask_ratio=0.5), TypeError),
    (dict(input_size=(2, 4, 4), mask_ratio="0.5"), TypeError),
    (dict(input_size=(1, 1, 2), mask_ratio=0.1, strategy="random"), ValueError),
])
def test_generator_rejects_bad_input(kwargs, err):
    with pytest.raises(err):
        vm.MaskingGenerator(**kwargs)


# ---------------------------------------------------------------------------------------------
# a stand-in with PretrainVisionTransformer's interface (encoder.patch_embed, forward(x, mask[, decode_mask]))

class ToyPatchEmbed(nn.Module):
    def __init__(self, img: int = 16, patch: int = 8, frames: int = 4, tubelet: int = 2, dim: int = 16) -> None:
        super().__init__()
        self.img_size, self.patch_size, self.tubelet_size = (img, img), (patch, patch), tubelet
        self.num_patches = (frames // tubelet) * (img // patch) ** 2
        self.proj = nn.Conv3d(3, dim, (tubelet, patch, patch), (tubelet, patch, patch))

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class ToyEncoder(nn.Module):
    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.embed_dim = dim
        self.patch_embed = ToyPatchEmbed(dim=dim)
        self.block = nn.Linear(dim, dim)

    def forward(self, x, mask):
        t = self.patch_embed(x)
        return self.block(t[~mask].reshape(t.shape[0], -1, t.shape[-1]))


class ToyVideoMAE(nn.Module):
    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.encoder = ToyEncoder(dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, self.encoder.patch_embed.num_patches, dim))
        self.head = nn.Linear(dim, 3 * 2 * 8 * 8)

    def no_weight_decay(self):
        return {"mask_token"}

    def forward(self, x, mask, decode_mask=None):
        decode = mask if decode_mask is None else ~decode_mask
        v = self.encoder(x, mask).mean(1, keepdim=True)
        pos = self.pos.expand(x.shape[0], -1, -1)[decode].reshape(x.shape[0], -1, self.pos.shape[-1])
        return self.head(self.mask_token + v + pos)


def toy(**kw) -> nn.Module:
    torch.manual_seed(0)
    return vm.wrap(ToyVideoMAE(), mask_ratio=kw.pop("mask_ratio", 0.75), **kw)


def test_wrap_keeps_names_and_adds_mask_sampler():
    bare = ToyVideoMAE()
    names = {n for n, _ in bare.named_parameters()}
    model = vm.wrap(bare, mask_ratio=0.75, depth=2, width=8, num_heads=2, sampling_weight=3e-4)
    after = {n for n, _ in model.named_parameters()}
    assert names <= after and all(n.startswith("mask_sampler.") for n in after - names)
    assert isinstance(model, ToyVideoMAE) and model.sampling_weight == 3e-4
    assert len(model.mask_sampler.blocks) == 2 and model.mask_sampler.width == 8
    assert {"mask_token", "mask_sampler.pos_embed"} <= model.no_weight_decay()
    assert vm.model_grid(model) == (2, 2, 2)


def test_wrap_rejects_bad_input():
    with pytest.raises(TypeError, match="PretrainVisionTransformer"):
        vm.wrap(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="grid"):
        vm.wrap(ToyVideoMAE(), mask_ratio=0.5, grid=(4, 2, 2))
    from adamask import AdaptiveTokenSampler
    with pytest.raises(ValueError, match="grid"):
        vm.wrap(ToyVideoMAE(), sampler=AdaptiveTokenSampler(16, num_heads=2, grid=(4, 2, 2), mask_ratio=0.5))
    with pytest.raises(ValueError, match="embed_dim"):
        vm.wrap(ToyVideoMAE(), sampler=AdaptiveTokenSampler(8, num_heads=2, grid=(2, 2, 2), mask_ratio=0.5))
    with pytest.raises(ValueError, match="sampling_weight"):
        vm.wrap(ToyVideoMAE(), mask_ratio=0.5, sampling_weight=-1.0)
    with pytest.raises(ValueError, match="adapted before"):
        vm.wrap(toy())


def test_forward_samples_mask_and_refuses_loader_mask_in_training():
    model = toy()
    x = torch.randn(2, 3, 4, 16, 16)
    pred, masking = model(x)
    assert masking.mask.shape == (2, 8) and pred.shape == (2, masking.num_masked, 384)
    with pytest.raises(ValueError, match="samples its own mask"):
        model(x, masking.mask)
    model.eval()
    assert model(x, masking.mask).shape == pred.shape
    with pytest.raises(ValueError, match="tokens"):
        model.train()(torch.randn(2, 3, 8, 16, 16))  # 16 tokens, the sampler's grid has 8


def test_losses_use_the_sampled_mask():
    model = toy()
    seen = {}
    model.encoder.register_forward_pre_hook(lambda m, a: seen.__setitem__("mask", a[1]))
    x = torch.randn(3, 3, 4, 16, 16)
    out = vm.pretraining_losses(model, x, patch_size=8)
    assert torch.equal(seen["mask"], out.masking.mask)
    pixels = x * C.STD + C.MEAN
    from adamask.patches import normalized_targets
    full = normalized_targets(pixels, (2, 8, 8))
    assert torch.allclose(out.target, full[out.masking.mask].reshape(3, -1, full.shape[-1]))
    assert torch.allclose(out.loss, out.reconstruction_loss + model.sampling_weight * out.sampling_loss)
    with pytest.raises(TypeError, match="wrap"):
        vm.pretraining_losses(ToyVideoMAE(), x)


def test_probabilities_stay_float32_under_autocast():
    model = toy()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = vm.pretraining_losses(model, torch.randn(2, 3, 4, 16, 16), patch_size=8)
    assert out.masking.probs.dtype == torch.float32 and out.sampling_loss.dtype == torch.float32
    out.loss.backward()
    assert model.mask_sampler.head.weight.grad is not None


def test_decoder_mask_is_respected():
    model = toy()
    x = torch.randn(2, 3, 4, 16, 16)
    decode_mask = torch.tensor([[0, 1] * 4, [1, 0] * 4], dtype=torch.bool)  # 4 decoded tokens per clip
    out = vm.pretraining_losses(model, x, decode_mask, patch_size=8)
    assert out.pred.shape == (2, 4, 384)
    decoded = ~decode_mask
    w = out.masking.mask[decoded].reshape(2, -1).float()
    err = ((out.pred - out.target) ** 2).mean(-1)
    assert torch.allclose(out.reconstruction_loss, (err * w).sum() / w.sum().clamp_min(1))
    assert (out.token_error[~(decoded & out.masking.mask)] == 0).all()


class MinimalScaler:
    """The call interface of their NativeScalerWithGradNormCount, without AMP."""

    def __call__(self, loss, optimizer, clip_grad=None, parameters=None, create_graph=False, update_grad=True):
        loss.backward(create_graph=create_graph)
        norm = torch.nn.utils.clip_grad_norm_(list(parameters), clip_grad if clip_grad else math.inf)
        optimizer.step()
        return norm

    def state_dict(self):
        return {}


@pytest.mark.parametrize("batches", ["v1", "v2", "v2-decoder-mask"])
@pytest.mark.parametrize("scaler", [None, MinimalScaler()])
def test_train_one_epoch_trains_sampler_and_backbone(batches, scaler, capsys):
    model = toy()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    before = C.snapshot(model)
    loader = []
    for i in range(3):
        x, enc = torch.randn(2, 3, 4, 16, 16), torch.zeros(2, 8)
        if batches == "v1":
            loader.append((x, enc))
        elif batches == "v2":
            loader.append((x, enc, 1 - enc))
        else:
            loader.append((x, enc, torch.tensor([[0.0, 1.0] * 4] * 2)))
    stats = vm.train_one_epoch(model, loader, opt, "cpu", 0, scaler, max_norm=1.0, patch_size=8,
                               lr_schedule_values=[1e-2] * 3, wd_schedule_values=[0.05] * 3, start_steps=0)
    assert {"loss", "loss_rec", "loss_sampling", "lr", "grad_norm"} <= set(stats)
    assert all(math.isfinite(stats[k]) for k in ("loss", "loss_rec", "loss_sampling"))
    assert C.changed(before, model, "mask_sampler.") > 0
    assert C.changed(before, model, "", exclude="mask_sampler.") > 0
    assert "loss_sampling" in capsys.readouterr().out


def test_train_one_epoch_stops_on_non_finite_loss():
    model = toy()
    with torch.no_grad():
        model.head.bias.fill_(float("nan"))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(FloatingPointError, match="loss is nan"):
        vm.train_one_epoch(model, [(torch.randn(2, 3, 4, 16, 16), torch.zeros(2, 8))], opt, "cpu", 0, None,
                           patch_size=8)


# ---------------------------------------------------------------------------------------------
# launcher argument handling

def test_split_and_pop_options():
    ours, theirs = split_launcher_argv(["--repo", "x", "--", "--batch_size", "2", "--mask_type=adaptive"])
    assert ours == ["--repo", "x"] and theirs == ["--batch_size", "2", "--mask_type=adaptive"]
    rest, value = pop_option(theirs, "--mask_type")
    assert rest == ["--batch_size", "2"] and value == "adaptive"
    rest, value = pop_option(["--mask_type", "tube", "--x", "1", "--mask_type", "frame"], "--mask_type")
    assert rest == ["--x", "1"] and value == "frame"
    assert pop_option(["--x"], "--mask_type") == (["--x"], None)
    with pytest.raises(ValueError, match="needs a value"):
        pop_option(["--mask_type"], "--mask_type")


def test_launcher_rejects_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        vm.main(["--repo", str(tmp_path)])  # no '--'
    with pytest.raises(ValueError, match="no run_mae_pretraining.py"):
        vm.run(str(tmp_path), ["--mask_type", "adaptive"])
    (tmp_path / "run_mae_pretraining.py").write_text("")
    with pytest.raises(ValueError, match="neither a VideoMAE"):
        vm.run(str(tmp_path), ["--mask_type", "adaptive"])
    (tmp_path / "modeling_pretrain.py").write_text("")
    with pytest.raises(ValueError, match="--mask_type must be one of"):
        vm.run(str(tmp_path), ["--mask_type", "blocks"])


FAKE_SCRIPT = """
import argparse, json, sys
import datasets, engine_for_pretraining
from timm.models import create_model
p = argparse.ArgumentParser()
p.add_argument('--mask_type', choices=['random', 'tube'])
p.add_argument('--mask_ratio', type=float, default=0.75)
p.add_argument('--out')
a = p.parse_args()
gen = datasets.TubeMaskingGenerator((2, 4, 4), a.mask_ratio)
json.dump(dict(argv=sys.argv[1:], mask_type=a.mask_type, generator=repr(gen), shape=list(gen().shape),
               engine=engine_for_pretraining.train_one_epoch.__module__,
               shimmed=getattr(create_model, '_adamask_shim', False)), open(a.out, 'w'))
"""


@pytest.mark.parametrize("mask_type", ["adaptive", "frame"])
def test_launcher_swaps_generator_engine_and_create_model(tmp_path, mask_type):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "modeling_pretrain.py").write_text("")
    (repo / "datasets.py").write_text("TubeMaskingGenerator = None\n")
    (repo / "engine_for_pretraining.py").write_text("def train_one_epoch(*a, **k):\n    pass\n")
    (repo / "run_mae_pretraining.py").write_text(textwrap.dedent(FAKE_SCRIPT))
    out = tmp_path / "out.json"
    r = H.run_module("adamask.integrations.videomae",
                     ["--repo", str(repo), "--", "--mask_type", mask_type, "--mask_ratio", "0.5", "--out", str(out)],
                     cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(out.read_text())
    assert got["mask_type"] == "tube" and got["shape"] == [32] and got["shimmed"] is True
    assert f"adamask {mask_type} masking generator" in got["generator"]
    expected_engine = "adamask.integrations.videomae" if mask_type == "adaptive" else "engine_for_pretraining"
    assert got["engine"] == expected_engine


# ---------------------------------------------------------------------------------------------
# against a real VideoMAE checkout

@pytest.fixture(scope="module")
def v1():
    root = H.checkout("ADAMASK_VIDEOMAE_ROOT", "modeling_pretrain.py", "MCG-NJU/VideoMAE")
    if (root / "models" / "modeling_pretrain.py").is_file():
        pytest.skip("ADAMASK_VIDEOMAE_ROOT points at a VideoMAEv2 checkout")
    with H.upstream_on_path([root]):
        mods = types.SimpleNamespace(root=root, **{n: importlib.import_module(n) for n in (
            "modeling_pretrain", "optim_factory", "utils", "engine_for_pretraining", "masking_generator")})
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
    C.write_log(os.environ.get("ADAMASK_CHECKOUT_LOG"), dict(
        test="videomae-v1-tiny", steps=3, first=first, epoch=stats, sampler_tensors_changed=n_sampler,
        backbone_tensors_changed=n_backbone))


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
    r = H.run_module("adamask.integrations.videomae", [
        "--repo", str(v1.root), "--", "--data_path", str(tmp_path / "train.csv"), "--mask_type", "adaptive",
        "--mask_ratio", "0.9", "--model", "pretrain_videomae_small_patch16_224", "--batch_size", "2",
        "--num_workers", "1", "--epochs", "1", "--warmup_epochs", "0", "--device", "cpu", "--output_dir", str(out),
        "--no_auto_resume", "--save_ckpt_freq", "1"], cwd=tmp_path)
    C.check_launcher_run(r, out, "checkpoint-0.pth", "videomae-v1-launcher")
    assert "adamask: adaptive masking" in r.stdout


DDP_SCRIPT = """
import sys, torch, torch.distributed as dist
sys.path.insert(0, {helpers!r})
from adamask.integrations._common import install_compat_shims
install_compat_shims()
sys.path.insert(0, {root!r})
import modeling_pretrain
import _videomae_checks as C
from adamask.integrations import videomae as vm
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
    print("RESULT", torch.equal(ws[0], ws[1]), not torch.equal(ms[0], ms[1]))
dist.destroy_process_group()
"""


def test_v1_checkout_ddp_two_processes(v1, tmp_path):
    """2 CPU processes (gloo), DDP without find_unused_parameters: sampler weights stay identical,
    the ranks draw different masks."""
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT.format(helpers=str(Path(__file__).parent), root=str(v1.root)))
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = H.run_module("torch.distributed.run", ["--nproc_per_node", "2", "--master_port", str(port), str(script)],
                     cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "RESULT True True" in r.stdout

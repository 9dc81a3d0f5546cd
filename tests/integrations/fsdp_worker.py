"""Launched by test_fsdp.py as ``torchrun --nproc_per_node=2 fsdp_worker.py OUT.json CKPT_DIR`` (CPU, gloo).

For the reference MAE with adaptive masking and (if transformers is installed) the HF integration:
every rank builds the model from the same seed, keeps an unsharded replica, and shards the model with
FSDP2 (``fully_shard`` per transformer block, on the sampler and on the root). Each step feeds every
rank its own clips and mask generator; the replica takes the same step with its gradients averaged
across ranks by hand (what FSDP's reduce-scatter does). Then the sharded state is saved with
torch.distributed.checkpoint, loaded into a freshly built sharded model, and both take one more step.
Rank 0 writes the findings to OUT.json; the test asserts on them.
"""

from __future__ import annotations

import json
import sys
from typing import Callable, Dict, List

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard

from adamask import create_mae

STEPS = 3


def gather(t: torch.Tensor) -> List[torch.Tensor]:
    out = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(out, t.contiguous())
    return out


def full_state(model: nn.Module) -> Dict[str, torch.Tensor]:
    """Every parameter and buffer unsharded, on every rank."""
    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))


def max_diff(a: Dict[str, torch.Tensor], b: Dict[str, torch.Tensor]) -> float:
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def checksum(state: Dict[str, torch.Tensor], prefix: str) -> float:
    return sum(v.double().sum().item() for k, v in state.items() if k.startswith(prefix))


def average_gradients(model: nn.Module) -> None:
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= dist.get_world_size()


class Case:
    """A model to shard: how to build it, its blocks, one step's clips, its forward."""

    def __init__(
        self,
        name: str,
        build: Callable[[], nn.Module],
        blocks: Callable[[nn.Module], List[nn.Module]],
        clips: Callable[[torch.Generator], torch.Tensor],
        forward: Callable,
    ) -> None:
        self.name, self.build, self.blocks, self.clips, self.forward = name, build, blocks, clips, forward

    def sharded(self, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        model = self.build()
        # an explicit CPU mesh: the default one is on the machine's accelerator, if it has one, even
        # under gloo (fully_shard would move the parameters there)
        mesh = init_device_mesh("cpu", (dist.get_world_size(),))
        for block in self.blocks(model):
            fully_shard(block, mesh=mesh)
        fully_shard(model.mask_sampler, mesh=mesh)
        fully_shard(model, mesh=mesh)
        return model

    def step(self, model: nn.Module, opt: torch.optim.Optimizer, step: int, replica: bool = False):
        rank = dist.get_rank()
        x = self.clips(torch.Generator().manual_seed(100 * step + rank))  # each rank its own clips
        torch.manual_seed(1000 + 10 * step + rank)  # dropout, if any
        out = self.forward(model, x, torch.Generator().manual_seed(7 * step + rank))
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        if replica:
            average_gradients(model)
        opt.step()
        return out


def mae_case() -> Case:
    return Case(
        "mae",
        lambda: create_mae("nano", masking="adaptive", mask_ratio=0.75),
        lambda m: [*m.blocks, *m.decoder_blocks],
        lambda g: torch.randn(2, 3, 4, 32, 32, generator=g),
        lambda m, x, g: m(x, generator=g),
    )


def hf_case() -> Case:
    from transformers import VideoMAEConfig

    from adamask.integrations.hf import AdaptiveVideoMAEForPreTraining

    cfg = VideoMAEConfig(
        image_size=32,
        patch_size=8,
        num_frames=4,
        tubelet_size=2,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        decoder_hidden_size=32,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=64,
        use_mean_pooling=False,
    )
    return Case(
        "hf",
        lambda: AdaptiveVideoMAEForPreTraining(cfg, mask_ratio=0.75),
        lambda m: [*m.videomae.encoder.layer, *m.decoder.decoder_layers],
        lambda g: torch.randn(2, 4, 3, 32, 32, generator=g),
        lambda m, x, g: m(pixel_values=x, generator=g),
    )


def run_case(case: Case, ckpt_dir: str) -> dict:
    model = case.sharded(seed=0)
    torch.manual_seed(0)
    replica = case.build()  # the same initial weights, unsharded
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ropt = torch.optim.AdamW(replica.parameters(), lr=1e-2)
    sampler0 = checksum(full_state(model), "mask_sampler.")
    steps = []
    for step in range(STEPS):
        out = case.step(model, opt, step)
        case.step(replica, ropt, step, replica=True)
        masks = gather(out.masking.mask.to(torch.uint8) if case.name == "mae" else out.mask.to(torch.uint8))
        full = full_state(model)
        steps.append(
            {
                "masks_equal_across_ranks": torch.equal(masks[0], masks[1]),
                "masked_per_row": masks[0].sum(1).tolist(),
                "sampling_loss": out.sampling_loss.item(),
                "max_diff_to_replica": max_diff(full, replica.state_dict()),
                "sampler_checksums": [
                    v.item() for v in gather(torch.tensor([checksum(full, "mask_sampler.")], dtype=torch.float64))
                ],
            }
        )
    shards = [p.to_local().numel() for p in model.mask_sampler.parameters()]
    saved = full_state(model)
    state_dict, optim_dict = get_state_dict(model, opt)
    dcp.save({"model": state_dict, "optim": optim_dict}, checkpoint_id=f"{ckpt_dir}/{case.name}")

    loaded = case.sharded(seed=123)  # other initial weights, overwritten by the checkpoint
    lopt = torch.optim.AdamW(loaded.parameters(), lr=1e-2)
    state_dict, optim_dict = get_state_dict(loaded, lopt)
    state = {"model": state_dict, "optim": optim_dict}
    dcp.load(state, checkpoint_id=f"{ckpt_dir}/{case.name}")
    set_state_dict(loaded, lopt, model_state_dict=state["model"], optim_state_dict=state["optim"])
    restored = full_state(loaded)
    a, b = case.step(model, opt, STEPS), case.step(loaded, lopt, STEPS)
    return {
        "steps": steps,
        "sampler_changed": steps[-1]["sampler_checksums"][0] != sampler0,
        "sampler_local_numel": [v.item() for v in gather(torch.tensor([sum(shards)]))],
        "sampler_full_numel": sum(p.numel() for p in replica.mask_sampler.parameters()),
        "loaded_equals_saved": saved.keys() == restored.keys() and max_diff(saved, restored) == 0.0,
        "next_step_loss_equal": a.loss.item() == b.loss.item(),
        "next_step_max_diff": max_diff(full_state(model), full_state(loaded)),
    }


def main() -> None:
    out_path, ckpt_dir = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    report: dict = {"world_size": dist.get_world_size(), "mae": run_case(mae_case(), ckpt_dir)}
    if "--hf" in sys.argv:
        report["hf"] = run_case(hf_case(), ckpt_dir)
    if dist.get_rank() == 0:
        with open(out_path, "w") as f:
            json.dump(report, f, indent=1)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()

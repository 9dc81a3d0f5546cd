"""Launched by test_ddp.py as ``torchrun --nproc_per_node=2 ddp_worker.py OUT.json [--trainer]`` (CPU, gloo).

Phase 1, plain loop: every rank builds the tiny HF model from a *different* seed (DDP must broadcast
rank 0's weights), then re-seeds the global RNG *identically* (as ``Trainer`` does) and trains a few
steps on the *same* input under ``DistributedDataParallel(find_unused_parameters=False)``. After each
step the masks and all parameters are gathered across ranks.
Phase 2: the same for ``motion`` (not learned) and ``error_predictor`` (learned, its own term), by name.
Phase 3 (``--trainer``): ``AdaMaskTrainer`` under the same process group.
Rank 0 writes the findings to OUT.json; the test asserts on them.
"""

from __future__ import annotations

import json
import sys
import tempfile

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from transformers import VideoMAEConfig

from adamask.integrations.hf import AdaMaskTrainer, AdaptiveVideoMAEForPreTraining

STEPS = 3


def tiny_config() -> VideoMAEConfig:
    return VideoMAEConfig(
        image_size=32,
        patch_size=8,
        num_frames=4,
        tubelet_size=2,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        decoder_hidden_size=32,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=64,
        use_mean_pooling=False,
    )


def gather(t: torch.Tensor) -> list:
    out = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(out, t.contiguous())
    return out


def flat(params) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in params])


def max_rank_diff(t: torch.Tensor) -> float:
    ts = gather(t)
    return max((a - ts[0]).abs().max().item() for a in ts)


def plain_ddp(report: dict) -> None:
    rank = dist.get_rank()
    torch.manual_seed(100 + rank)
    model = AdaptiveVideoMAEForPreTraining(tiny_config(), mask_ratio=0.75)
    report["init_sampler_diff_before_ddp"] = max_rank_diff(flat(model.mask_sampler.parameters()))
    torch.manual_seed(0)
    ddp = DistributedDataParallel(model, find_unused_parameters=False)
    report["init_sampler_diff_after_ddp"] = max_rank_diff(flat(model.mask_sampler.parameters()))
    opt = torch.optim.AdamW(ddp.parameters(), lr=1e-3)
    x = torch.randn(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(123))  # same on every rank
    s0 = flat(model.mask_sampler.parameters()).clone()

    # control: the global RNG alone would give every rank the same mask
    torch.manual_seed(0)
    control = model.mask_sampler(model.patch_tokens(x)).mask.to(torch.uint8)
    report["control_masks_equal"] = all(torch.equal(m, control) for m in gather(control))
    torch.manual_seed(0)

    steps = []
    for _ in range(STEPS):
        out = ddp(pixel_values=x)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        no_grad = [n for n, p in model.named_parameters() if p.grad is None]
        opt.step()
        masks = gather(out.mask.to(torch.uint8))
        steps.append(
            {
                "masks_equal_across_ranks": all(torch.equal(m, masks[0]) for m in masks[1:]),
                "masked_per_row": masks[0].sum(1).tolist(),
                "sampler_max_diff": max_rank_diff(flat(model.mask_sampler.parameters())),
                "sampler_checksums": [v.double().sum().item() for v in gather(flat(model.mask_sampler.parameters()))],
                "all_params_max_diff": max_rank_diff(flat(model.parameters())),
                "params_without_grad": no_grad,
                "reconstruction_loss": [v.item() for v in gather(out.reconstruction_loss.detach().reshape(1))],
                "sampling_loss": [v.item() for v in gather(out.sampling_loss.detach().reshape(1))],
            }
        )
    report["steps"] = steps
    report["sampler_changed"] = not torch.equal(flat(model.mask_sampler.parameters()), s0)


def other_strategies(report: dict) -> None:
    """motion and error_predictor under DDP without find_unused_parameters: two steps on the same input."""
    for strategy in ("motion", "error_predictor"):
        torch.manual_seed(0)
        model = AdaptiveVideoMAEForPreTraining(tiny_config(), mask_ratio=0.75, strategy=strategy)
        ddp = DistributedDataParallel(model, find_unused_parameters=False)
        opt = torch.optim.AdamW(ddp.parameters(), lr=1e-3)
        x = torch.randn(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(123))
        steps = []
        for _ in range(2):
            out = ddp(pixel_values=x)
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            no_grad = [n for n, p in model.named_parameters() if p.grad is None]
            opt.step()
            masks = gather(out.mask.to(torch.uint8))
            steps.append(
                {
                    "masks_equal_across_ranks": all(torch.equal(m, masks[0]) for m in masks[1:]),
                    "masked_per_row": masks[0].sum(1).tolist(),
                    "params_without_grad": no_grad,
                    "all_params_max_diff": max_rank_diff(flat(model.parameters())),
                    "has_sampling_loss": out.sampling_loss is not None,
                }
            )
        report[strategy] = steps


class Clips(torch.utils.data.Dataset):
    def __init__(self) -> None:
        self.x = torch.randn(8, 4, 3, 32, 32, generator=torch.Generator().manual_seed(7))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"pixel_values": self.x[i]}


def trainer_ddp(report: dict) -> None:
    from transformers import TrainingArguments

    torch.manual_seed(200 + dist.get_rank())
    model = AdaptiveVideoMAEForPreTraining(tiny_config(), mask_ratio=0.75)
    with tempfile.TemporaryDirectory() as out_dir:
        args = TrainingArguments(
            output_dir=out_dir,
            per_device_train_batch_size=2,
            max_steps=2,
            logging_steps=1,
            learning_rate=1e-3,
            report_to=[],
            use_cpu=True,
            save_strategy="no",
            disable_tqdm=True,
            ddp_backend="gloo",
            ddp_find_unused_parameters=False,
            seed=0,
        )
        trainer = AdaMaskTrainer(model=model, args=args, train_dataset=Clips())
        trainer.train()
    logs = [h for h in trainer.state.log_history if "reconstruction_loss" in h]
    report["trainer"] = {
        "world_size": args.world_size,
        "logs": logs,
        "sampler_max_diff": max_rank_diff(flat(model.mask_sampler.parameters())),
        "all_params_max_diff": max_rank_diff(flat(model.parameters())),
        "logged_losses_by_rank": [
            v.tolist()
            for v in gather(
                torch.tensor([[h["reconstruction_loss"], h["sampling_loss"]] for h in logs], dtype=torch.float64)
            )
        ],
    }


def main() -> None:
    out_path = sys.argv[1]
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    report: dict = {"world_size": dist.get_world_size()}
    plain_ddp(report)
    other_strategies(report)
    if "--trainer" in sys.argv:
        trainer_ddp(report)
    if dist.get_rank() == 0:
        with open(out_path, "w") as f:
            json.dump(report, f, indent=1)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()

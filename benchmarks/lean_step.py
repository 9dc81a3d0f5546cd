"""The lean reference step, measured side by side in one run: each change against the formulation it replaces
(the Conv3d patch embedding, targets normalised for every token then gathered, the position embedding added
to every token before the gather), the whole training step before and after (time and aten operations per
step), and the compiled step against the eager one.

    python benchmarks/lean_step.py [--json PATH] [--threads N] [--smoke] [--no-compile]

Prints a table; writes JSON (atomically) when --json is given. CPU ratios are proxies for the GPU's.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
from einops import rearrange
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from adamask.compare.rundir import write_json  # noqa: E402
from adamask.mae import MAE_CONFIGS, MaskedVideoAutoencoder  # noqa: E402
from adamask.tokens import gather_tokens  # noqa: E402
from timing import OpCounter, interleaved, stats  # noqa: E402


class BeforeMAE(MaskedVideoAutoencoder):
    """The reference MAE as it was computed before the lean step, with the same parameters: a Conv3d patch
    embedding (its output flattened and transposed), targets of every token normalised with separate mean
    and variance passes then gathered, and the position embedding added to every token before the gather."""

    def tokenize(self, video: Tensor) -> Tensor:
        self.check_video(video)
        out = nn.functional.conv3d(video, self.patch_embed.weight, self.patch_embed.bias, stride=self.tubelet)
        return out.flatten(2).transpose(1, 2)

    def encode(self, tokens: Tensor, visible_idx: Optional[Tensor] = None) -> Tensor:
        x = tokens + self.pos_embed.to(tokens.dtype)
        if visible_idx is not None:
            x = gather_tokens(x, visible_idx)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def targets(self, video: Tensor, idx: Optional[Tensor] = None) -> Tensor:
        pt, ph, pw = self.tubelet
        x = rearrange(video.float(), "b c (t p0) (h p1) (w p2) -> b (t h w) (p0 p1 p2) c", p0=pt, p1=ph, p2=pw)
        x = (x - x.mean(dim=-2, keepdim=True)) / (x.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6)
        x = rearrange(x, "b n p c -> b n (p c)")
        return x if idx is None else gather_tokens(x, idx)


def make_step(model: nn.Module, video: Tensor, compiled: bool = False) -> Callable[[], None]:
    """zero_grad, forward (loss), backward, AdamW step; the forward compiled (CPU inductor) if asked."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    forward = torch.compile(lambda v: model(v).loss, fullgraph=True) if compiled else (lambda v: model(v).loss)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        forward(video).backward()
        opt.step()

    return step


def ratio_row(name: str, new: List[float], old: List[float], new_label: str, old_label: str) -> Dict[str, Any]:
    n, o = stats(new), stats(old)
    return dict(name=name, new=new_label, old=old_label, new_ms=n, old_ms=o, time_ratio=n["median"] / o["median"])


def parts(cfg: Dict[str, Any], batch: int, repeats: int) -> List[Dict[str, Any]]:
    """Each change alone against what it replaces."""
    torch.manual_seed(0)
    new = MaskedVideoAutoencoder(**cfg, masking="tube", mask_ratio=0.9)
    old = BeforeMAE(**cfg, masking="tube", mask_ratio=0.9)
    old.load_state_dict(new.state_dict())
    video = torch.randn(batch, *new.input_shape, requires_grad=False)
    masking = new.sample_masking(new.tokenize(video))
    tokens = new.tokenize(video).detach().requires_grad_()
    assert torch.allclose(new.tokenize(video), old.tokenize(video), atol=1e-4)
    assert torch.allclose(new.targets(video, masking.masked_idx), old.targets(video, masking.masked_idx), atol=1e-5)
    cpu = torch.device("cpu")
    rows = []
    t = interleaved(
        {"new": lambda: new.tokenize(video).sum().backward(), "old": lambda: old.tokenize(video).sum().backward()},
        repeats,
        cpu,
    )
    rows.append(ratio_row("patch embedding, forward + backward", t["new"], t["old"], "reshape + matmul", "Conv3d"))
    t = interleaved(
        {"new": lambda: new.targets(video, masking.masked_idx), "old": lambda: old.targets(video, masking.masked_idx)},
        repeats,
        cpu,
    )
    rows.append(
        ratio_row("normalised targets of the masked tokens", t["new"], t["old"], "gather, one pass", "all, gather")
    )
    t = interleaved(
        {
            "new": lambda: new.encode(tokens, masking.visible_idx).sum().backward(),
            "old": lambda: old.encode(tokens, masking.visible_idx).sum().backward(),
        },
        repeats,
        cpu,
    )
    rows.append(ratio_row("encoder input + encoder, f+b", t["new"], t["old"], "gather, add", "add, gather"))
    return rows


def whole_step(cfg: Dict[str, Any], batch: int, repeats: int, masking: str, ratio: float) -> Dict[str, Any]:
    """The training step before and after: time and aten operations per step."""
    torch.manual_seed(0)
    new = MaskedVideoAutoencoder(**cfg, masking=masking, mask_ratio=ratio)
    old = BeforeMAE(**cfg, masking=masking, mask_ratio=ratio)
    old.load_state_dict(new.state_dict())
    video = torch.randn(batch, *new.input_shape)
    steps = {"new": make_step(new, video), "old": make_step(old, video)}
    ops, kernels = {}, {}
    for name, step in steps.items():
        step()
        with OpCounter() as counter:
            step()
        ops[name], kernels[name] = sum(counter.ops.values()), counter.kernels
    t = interleaved(steps, repeats, torch.device("cpu"))
    row = ratio_row(f"training step, {masking} {ratio:.2f}", t["new"], t["old"], "lean", "before")
    return dict(row, ops_new=ops["new"], ops_old=ops["old"], kernels_new=kernels["new"], kernels_old=kernels["old"])


def compiled_step(cfg: Dict[str, Any], batch: int, repeats: int, masking: str, ratio: float) -> Dict[str, Any]:
    """The lean step compiled (CPU inductor, fullgraph) against the lean step eager, and the compile time."""
    torch.manual_seed(0)
    model = MaskedVideoAutoencoder(**cfg, masking=masking, mask_ratio=ratio)
    video = torch.randn(batch, *model.input_shape)
    eager, compiled = make_step(model, video), make_step(model, video, compiled=True)
    t0 = time.perf_counter()
    compiled()
    compile_s = time.perf_counter() - t0
    t = interleaved({"compiled": compiled, "eager": eager}, repeats, torch.device("cpu"))
    row = ratio_row(f"training step, {masking} {ratio:.2f}", t["compiled"], t["eager"], "compiled", "eager")
    return dict(row, compile_s=compile_s)


def table(res: Dict[str, Any]) -> str:
    lines = [
        f"machine: {res['machine']['cpu']} ({res['machine']['cores']} cores), {res['machine']['threads']} threads, "
        f"torch {res['machine']['torch']}; load average at start {res['machine']['load_start']}, end "
        f"{res['machine']['load_end']}; model {res['model']}, batch {res['batch']}",
        "",
        "| comparison | new | old | new ms, median (min-max) | old ms, median (min-max) | time new / old | aten ops "
        "(of them not views) per step, new / old |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        n, o = r["new_ms"], r["old_ms"]
        ops = f"{r['ops_new']} ({r['kernels_new']}) / {r['ops_old']} ({r['kernels_old']})" if "ops_new" in r else ""
        ops = ops or (f"compile {r['compile_s']:.0f} s" if "compile_s" in r else "")
        lines.append(
            f"| {r['name']} | {r['new']} | {r['old']} | {n['median']:.3g} ({n['min']:.3g}-{n['max']:.3g}) | "
            f"{o['median']:.3g} ({o['min']:.3g}-{o['max']:.3g}) | {r['time_ratio']:.2f}x | {ops} |"
        )
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", default=None, help="write the results here (atomically)")
    p.add_argument("--threads", type=int, default=None, help="torch's intra-op threads")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    p.add_argument("--no-compile", action="store_true", help="skip the compiled step (its compile takes minutes)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.smoke:
        cfg, name, batch, repeats = dict(MAE_CONFIGS["nano"]), "nano", 2, 2
    else:  # ViT-S (encoder 12 x 384, decoder 4 x 192), 16 x 128^2 -> 512 tokens
        cfg, name, batch, repeats = dict(MAE_CONFIGS["small"], img_size=128), "small, 16 x 128^2", 4, 9
    load_start = "/".join(f"{x:.1f}" for x in os.getloadavg())
    rows = parts(cfg, batch, repeats)
    rows.append(whole_step(cfg, batch, repeats, "tube", 0.9))
    rows.append(whole_step(cfg, batch, repeats, "adaptive", 0.95))
    if not args.no_compile:
        rows.append(compiled_step(cfg, batch, max(3, repeats // 2), "tube", 0.9))
        rows.append(compiled_step(cfg, batch, max(3, repeats // 2), "adaptive", 0.95))
    res = dict(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        machine=dict(
            cpu=platform.processor() or platform.machine(),
            cores=os.cpu_count(),
            threads=torch.get_num_threads(),
            torch=torch.__version__,
            load_start=load_start,
            load_end="/".join(f"{x:.1f}" for x in os.getloadavg()),
        ),
        model=name,
        batch=batch,
        smoke=args.smoke,
        rows=rows,
    )
    print(table(res))
    if args.json:
        write_json(args.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())

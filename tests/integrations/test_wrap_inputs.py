"""VideoMAE and mae_st integrations on their stand-ins: what ``wrap`` and the wrapped models take —
numpy numbers as options, a refused call that leaves the model as it was, the loss settings (entropy
bonus, RLOO), pixel dtypes, an empty batch, a strategy built for another grid, the visible count at
ratios float cannot represent, and mask-ratio schedules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _toy_models import ToyMAEST, ToyVideoMAE

from adamask import RatioSchedule, masking_from_mask, sampling_loss
from adamask.integrations import mae_st as ms
from adamask.integrations import videomae as vm

WRAPS = {"videomae": (vm.wrap, ToyVideoMAE), "mae_st": (ms.wrap, ToyMAEST)}


def forward(name: str, model, x, mask_ratio=None):
    """(loss, sampling term or None, Masking, token_error) of one step of a wrapped stand-in (mae_st:
    ``mask_ratio`` goes to forward, default the strategy's)."""
    if name == "videomae":
        out = vm.pretraining_losses(model, x, patch_size=8)
        return out.loss, out.sampling_loss, out.masking, out.token_error
    seen = {}
    handle = model.mask_sampler.register_forward_hook(lambda m, a, o: seen.__setitem__("m", o))
    loss, pred, _ = model(x, mask_ratio=model.mask_sampler.mask_ratio if mask_ratio is None else mask_ratio)
    handle.remove()
    return loss, model.adamask_losses[1], seen["m"], ms.token_error(model, x, pred)


@pytest.mark.parametrize("name", WRAPS)
def test_numpy_numbers_are_options(name):
    wrap, Toy = WRAPS[name]
    torch.manual_seed(0)
    m = wrap(
        Toy(),
        mask_ratio=np.float32(0.75),
        sampling_weight=np.float64(0.5),
        depth=np.int64(2),
        num_heads=np.int32(4),
        sampling_entropy_weight=np.float32(0.25),
    )
    assert m.mask_sampler.num_visible == 2 and len(m.mask_sampler.blocks) == 2
    assert type(m.loss_settings.weight) is float and m.loss_settings.entropy_weight == 0.25


@pytest.mark.parametrize("name", WRAPS)
@pytest.mark.parametrize(
    "options",
    [
        dict(variant="conv"),
        dict(mask_ratio=1.0),
        dict(sampling_weight=-1.0),
        dict(sampling_entropy_weight=float("nan")),
        dict(strategy="tube"),
        dict(sampling_baseline="median"),
        dict(depth=0),
    ],
)
def test_a_refused_wrap_leaves_the_model_as_it_was(name, options):
    wrap, Toy = WRAPS[name]
    model = Toy()
    names = [n for n, _ in model.named_parameters()]
    with pytest.raises((ValueError, TypeError)):
        wrap(model, **{"mask_ratio": 0.75, **options})
    assert type(model) is Toy and not hasattr(model, "mask_sampler") and not hasattr(model, "loss_settings")
    assert [n for n, _ in model.named_parameters()] == names
    assert wrap(model, mask_ratio=0.75).mask_sampler.num_visible == 2  # nothing left behind


@pytest.mark.parametrize("name", WRAPS)
def test_entropy_weight_and_rloo_reach_the_term(name):
    wrap, Toy = WRAPS[name]
    torch.manual_seed(0)
    model = wrap(Toy(), mask_ratio=0.75, sampling_weight=0.5, sampling_baseline="rloo", sampling_entropy_weight=0.5)
    loss, term, m, err = forward(name, model, torch.randn(4, 3, 4, 16, 16))
    want = sampling_loss(m.probs, m.mask, err, baseline="rloo", entropy_weight=0.5, draw_order=m.draw_order)
    torch.testing.assert_close(term.detach(), want.detach())
    assert not torch.allclose(want, sampling_loss(m.probs, m.mask, err, baseline="rloo"))


@pytest.mark.parametrize("name", WRAPS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_float_videos_of_another_dtype_are_cast(name, dtype):
    wrap, Toy = WRAPS[name]
    model = wrap(Toy(), mask_ratio=0.75)
    loss, *_ = forward(name, model, torch.randn(2, 3, 4, 16, 16).to(dtype))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


@pytest.mark.parametrize("name, arg", [("videomae", "videos"), ("mae_st", "imgs")])
def test_integer_videos_and_an_empty_batch_are_refused_by_name(name, arg):
    wrap, Toy = WRAPS[name]
    model = wrap(Toy(), mask_ratio=0.75)
    with pytest.raises(TypeError, match=rf"{arg} must be a floating-point .* got dtype torch.uint8"):
        forward(name, model, torch.randint(0, 255, (2, 3, 4, 16, 16), dtype=torch.uint8))
    with pytest.raises(ValueError, match=rf"batch size B of {arg} .* got 0"):
        forward(name, model, torch.randn(0, 3, 4, 16, 16))
    with pytest.raises(TypeError, match=rf"{arg} must be a torch.Tensor"):
        forward(name, model, np.zeros((2, 3, 4, 16, 16), np.float32))


class FixedMask(torch.nn.Module):
    """A user strategy that does not say its grid: always the same mask over ``n`` tokens."""

    needs = "tokens"

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def forward(self, tokens, generator=None):
        mask = torch.arange(self.n, device=tokens.device).expand(tokens.shape[0], -1) % 4 != 0
        return masking_from_mask(mask, self.n // 4)


@pytest.mark.parametrize("name", WRAPS)
def test_a_strategy_built_for_another_grid_is_named(name):
    """A ready strategy that does not say its grid fails at its first call, by name, not inside the model."""
    wrap, Toy = WRAPS[name]
    model = wrap(Toy(), mask_ratio=0.75, sampler=FixedMask(32))  # 32 tokens; the model has 8
    with pytest.raises(
        ValueError,
        match=r"mask_sampler \(FixedMask\) returned \(2, 32\) for the model's tokens "
        r"\(2, 8, 16\).* build it for the model's token grid",
    ):
        forward(name, model, torch.randn(2, 3, 4, 16, 16), mask_ratio=0.75)
    model = wrap(Toy(), mask_ratio=0.75, sampler=FixedMask(8))
    loss, _, m, _ = forward(name, model, torch.randn(2, 3, 4, 16, 16), mask_ratio=0.75)
    assert m.mask.sum(1).tolist() == [6, 6] and torch.isfinite(loss)


def test_mae_st_visible_count_is_robust_to_float_representation():
    # 100 tokens at 0.9: int(100 * (1 - 0.9)) = 9, but the strategy (like tube masking) keeps 10
    torch.manual_seed(0)
    model = ms.wrap(ToyMAEST(img=40, frames=8), mask_ratio=0.9)
    assert model.mask_sampler.num_tokens == 100 and model.mask_sampler.num_visible == 10
    loss, pred, mask = model(torch.randn(2, 3, 8, 40, 40), mask_ratio=0.9)
    assert mask.sum(1).tolist() == [90, 90] and torch.isfinite(loss)


@pytest.mark.parametrize("name", WRAPS)
def test_a_ratio_schedule_changes_the_count_every_step(name):
    wrap, Toy = WRAPS[name]
    torch.manual_seed(0)
    model = wrap(Toy(), mask_ratio=0.5)
    schedule = RatioSchedule(0.5, 0.875, steps=3)
    counts = []
    for step in range(4):
        model.set_mask_ratio(schedule(step))  # mae_st: the same ratio goes to forward (see `forward`)
        _, _, m, _ = forward(name, model, torch.randn(2, 3, 4, 16, 16))
        counts.append(m.mask.sum(1).tolist())
    assert counts == [[4, 4], [5, 5], [6, 6], [7, 7]]
    with pytest.raises(ValueError, match="mask_ratio"):
        model.set_mask_ratio(1.5)
    assert model.mask_sampler.mask_ratio == 0.875  # a refused ratio keeps the old one

import pytest
import torch

import adamask
from adamask.schedules import RatioSchedule, parse_ratio_schedule


def test_linear_cosine_step():
    lin = RatioSchedule(0.75, 0.95, steps=100)
    assert lin(0) == 0.75 and lin(50) == pytest.approx(0.85) and lin(100) == pytest.approx(0.95) == lin(1000)
    cos = RatioSchedule(0.75, 0.95, steps=100, kind="cosine")
    assert cos(0) == 0.75 and cos(50) == pytest.approx(0.85) and cos(10) < lin(10)
    step = RatioSchedule(0.75, 0.95, steps=100, kind="step")
    assert step(99) == 0.75 and step(100) == 0.95
    held = RatioSchedule(0.75, 0.95, steps=100, every=25)
    assert len({held(s) for s in range(150)}) == 5


def test_schedule_drives_the_reference_mae():
    model = adamask.create_mae("nano", masking="adaptive", mask_ratio=0.75)
    schedule = RatioSchedule(0.5, 0.9, steps=4)
    seen = []
    for step in range(5):
        model.set_mask_ratio(schedule(step))
        out = model(torch.randn(2, *model.input_shape))
        seen.append(out.masking.num_visible)
        assert (out.masking.mask.sum(1) == out.masking.num_masked).all()  # one count per batch
    assert seen == sorted(seen, reverse=True) and seen[0] == 16 and seen[-1] == 3


def test_parse():
    assert parse_ratio_schedule("0.75:0.95", steps=200) == RatioSchedule(0.75, 0.95, 200)
    assert parse_ratio_schedule("0.5:0.9:cosine:50") == RatioSchedule(0.5, 0.9, 50, "cosine")
    for bad in ("0.75", "a:b", "0.75:0.95:sine", "0.75:1.5"):
        with pytest.raises(ValueError):
            parse_ratio_schedule(bad, steps=10)
    with pytest.raises(ValueError, match="STEPS"):
        parse_ratio_schedule("0.5:0.9")


def test_errors():
    with pytest.raises(ValueError, match="kind"):
        RatioSchedule(0.5, 0.9, 10, kind="sine")
    with pytest.raises(ValueError, match="step"):
        RatioSchedule(0.5, 0.9, 10)(-1)
    with pytest.raises(TypeError, match="cannot change its mask ratio"):
        adamask.create_mae("nano", masking=lambda tokens: None).set_mask_ratio(0.5)

"""Hugging Face VideoMAE integration, training: a plain loop, AdaMaskTrainer, the stock Trainer, the example."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")
from _hf_helpers import clips, fixed_mask, sampler_vector, tiny_config  # noqa: E402

from adamask.integrations.hf import AdaMaskTrainer, AdaptiveVideoMAEForPreTraining  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------------------------------------
# training: plain loop and Trainer


def test_plain_training_loop_updates_sampler_and_backbone():
    torch.manual_seed(0)
    m = AdaptiveVideoMAEForPreTraining(tiny_config(), mask_ratio=0.75).train()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    s0 = sampler_vector(m).clone()
    w0 = m.encoder_to_decoder.weight.detach().clone()
    x, probe = clips(4), fixed_mask(4)
    with torch.no_grad():
        before = m(x, bool_masked_pos=probe).loss.item()
    for _ in range(5):
        out = m(x)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        assert math.isfinite(out.reconstruction_loss.item()) and math.isfinite(out.sampling_loss.item())
    with torch.no_grad():
        after = m(x, bool_masked_pos=probe).loss.item()
    assert not torch.equal(sampler_vector(m), s0)
    assert not torch.equal(m.encoder_to_decoder.weight, w0)
    assert after < before - 1e-3, (before, after)


class ClipDataset(torch.utils.data.Dataset):
    def __init__(self, n: int = 8) -> None:
        self.x = clips(n, seed=7)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"pixel_values": self.x[i]}


def trainer_args(tmp_path, **kw):
    from transformers import TrainingArguments

    base = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2,
        max_steps=4,
        logging_steps=2,
        learning_rate=1e-3,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=0,
    )
    base.update(kw)
    return TrainingArguments(**base)


def test_adamask_trainer_trains_and_logs_both_losses(tmp_path):
    pytest.importorskip("accelerate", reason="transformers.Trainer needs accelerate")
    torch.manual_seed(0)
    m = AdaptiveVideoMAEForPreTraining(tiny_config(), mask_ratio=0.75)
    s0, w0 = sampler_vector(m).clone(), m.encoder_to_decoder.weight.detach().clone()
    trainer = AdaMaskTrainer(model=m, args=trainer_args(tmp_path), train_dataset=ClipDataset())
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 2 and trainer.state.global_step == 4
    for h in logs:
        assert h["reconstruction_loss"] > 0 and h["sampling_loss"] > 0
        # loss = L_R + 1e-4 * L_S, averaged over the same steps
        assert h["loss"] == pytest.approx(h["reconstruction_loss"] + 1e-4 * h["sampling_loss"], rel=1e-5)
    assert not torch.equal(sampler_vector(m), s0)
    assert not torch.equal(m.encoder_to_decoder.weight, w0)
    # evaluation through the Trainer works as well
    metrics = trainer.evaluate(ClipDataset(4))
    assert math.isfinite(metrics["eval_loss"])


def test_stock_trainer_accepts_the_model(tmp_path):
    pytest.importorskip("accelerate", reason="transformers.Trainer needs accelerate")
    from transformers import Trainer

    torch.manual_seed(0)
    m = AdaptiveVideoMAEForPreTraining(tiny_config())
    s0 = sampler_vector(m).clone()
    trainer = Trainer(model=m, args=trainer_args(tmp_path, max_steps=2), train_dataset=ClipDataset(4))
    assert trainer.model_accepts_loss_kwargs is False
    result = trainer.train()
    assert math.isfinite(result.training_loss) and not torch.equal(sampler_vector(m), s0)


def test_example_script_runs(capsys, monkeypatch):
    path = ROOT / "examples" / "train_hf_adaptive.py"
    spec = importlib.util.spec_from_file_location("train_hf_adaptive", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    history = mod.main(["--steps", "3", "--batch-size", "2"])
    assert len(history) == 3
    for rec, ls in history:
        assert math.isfinite(rec) and rec > 0 and math.isfinite(ls) and ls > 0
    text = capsys.readouterr().out
    assert "reconstruction_loss" in text and "sampling_loss" in text


def test_a_ratio_schedule_from_a_trainer_callback(tmp_path):
    """The README's recipe: set_mask_ratio from TrainerCallback.on_step_begin changes the count each step."""
    pytest.importorskip("accelerate", reason="transformers.Trainer needs accelerate")
    from transformers import TrainerCallback

    from adamask import RatioSchedule

    schedule = RatioSchedule(0.5, 0.875, steps=3)
    seen = []

    class Schedule(TrainerCallback):
        def on_step_begin(self, args, state, control, model=None, **kwargs):
            model.set_mask_ratio(schedule(state.global_step))

    torch.manual_seed(0)
    m = AdaptiveVideoMAEForPreTraining(tiny_config(), mask_ratio=0.5)
    m.register_forward_hook(lambda mod, a, out: seen.append(out.mask.sum(1).tolist()))
    trainer = AdaMaskTrainer(model=m, args=trainer_args(tmp_path), train_dataset=ClipDataset(), callbacks=[Schedule()])
    trainer.train()
    assert seen == [[16, 16], [20, 20], [24, 24], [28, 28]]
    assert m.config.adamask_mask_ratio == 0.875

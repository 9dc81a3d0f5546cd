"""The reference MAE's training step under torch.compile: forward, both loss terms and backward compile into one
graph (no graph break) for every registered strategy, with masks drawn from the global RNG (no
torch.Generator inside the graph), and the compiled step computes what the eager one does."""

import pytest
import torch
import torch._dynamo

import adamask

NAMES = adamask.list_maskings()


def build(name: str) -> adamask.MaskedVideoAutoencoder:
    torch.manual_seed(0)
    ratio = 0.5 if name == "running_cell" else 0.75
    return adamask.create_mae("nano", masking=name, mask_ratio=ratio)


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("name", NAMES)
def test_every_strategy_compiles_into_one_graph(name):
    """fullgraph=True raises on any graph break; aot_eager also traces the backward graph (the graph breaks do
    not depend on the backend; inductor's code generation is tested below)."""
    model = build(name)
    step = torch.compile(lambda v: model(v).loss, fullgraph=True, backend="aot_eager")
    video = torch.randn(2, *model.input_shape)
    loss = step(video)
    loss.backward()
    assert loss.shape == () and torch.isfinite(loss)
    assert model.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    if adamask.is_learned(model.mask_sampler):  # the strategy's loss term reaches its weights through the graph
        assert sum(p.grad.abs().sum() for p in model.mask_sampler.parameters() if p.grad is not None) > 0


def test_a_decoder_masked_step_compiles_into_one_graph():
    torch.manual_seed(0)
    model = adamask.create_mae("nano", masking="adaptive", decoder_masking="running_cell", decoder_mask_ratio=0.5)
    step = torch.compile(lambda v: model(v).loss, fullgraph=True, backend="aot_eager")
    loss = step(torch.randn(2, *model.input_shape))
    loss.backward()
    assert torch.isfinite(loss)


def test_inductor_step_equals_the_eager_step():
    """CPU inductor on the paper's strategy: the same masks give the same losses and gradients."""
    model = build("adaptive")
    video = torch.randn(2, *model.input_shape)
    with torch.no_grad():
        masking = model.sample_masking(model.tokenize(video))

    def losses(v):
        out = model(v, masking)
        return out.reconstruction_loss, out.loss

    eager = losses(video)
    eager[1].backward()
    grad = model.blocks[0].attn.qkv.weight.grad.clone()
    model.zero_grad()
    compiled = torch.compile(losses, fullgraph=True)(video)
    compiled[1].backward()
    for e, c in zip(eager, compiled, strict=True):
        assert torch.allclose(e, c, rtol=1e-4, atol=1e-6)
    assert torch.allclose(model.blocks[0].attn.qkv.weight.grad, grad, rtol=1e-3, atol=1e-6)

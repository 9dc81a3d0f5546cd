"""Two masking strategies defined only in the tests, written against the contract alone (plain
``nn.Module`` classes, not subclasses of adamask's bases), and registered by name:

- ``toy_learned``: learned (scores = Linear(tokens), softmax probs, keeps the top-scoring tokens after
  uniform noise), with its own ``masking_loss``;
- ``toy_norm``: not learned, needs the tokens (masks the tokens with the largest norm).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from adamask import masking_from_mask, register_masking, scatter_masked


class ToyLearned(nn.Module):
    learned = True
    needs = "tokens"

    def __init__(self, grid, mask_ratio, embed_dim):
        super().__init__()
        self.keep = int(math.prod(grid) * (1 - mask_ratio))
        self.score = nn.Linear(embed_dim, 1)

    def forward(self, tokens, generator=None):
        scores = self.score(tokens).squeeze(-1).float()
        noise = torch.rand(scores.shape, generator=generator, device=scores.device)
        visible = (scores + noise).topk(self.keep, dim=1).indices
        mask = torch.ones_like(scores, dtype=torch.bool).scatter_(1, visible, False)
        return masking_from_mask(mask, self.keep, probs=scores.softmax(1))

    def masking_loss(self, masking, token_error, settings):
        """Its own loss term: minus the mean log-probability of the masked tokens, error-weighted."""
        err = token_error.detach().float()
        if err.shape != masking.mask.shape:
            err = scatter_masked(err, masking.mask)
        return -(masking.probs.clamp_min(1e-12).log() * err).sum(1).mean()


class ToyNorm(nn.Module):
    learned = False
    needs = "tokens"

    def __init__(self, grid, mask_ratio):
        super().__init__()
        self.keep = int(math.prod(grid) * (1 - mask_ratio))

    def forward(self, tokens, generator=None):
        visible = tokens.detach().float().norm(dim=-1).topk(self.keep, dim=1, largest=False).indices
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device).scatter_(1, visible, False)
        return masking_from_mask(mask, self.keep)


register_masking("toy_learned", default_ratio=0.75, override=True)(ToyLearned)
register_masking("toy_norm", default_ratio=0.75, override=True)(ToyNorm)

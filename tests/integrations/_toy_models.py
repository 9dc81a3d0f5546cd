"""Stand-ins with the interfaces the integrations rely on, small enough for CPU tests:
``ToyVideoMAE`` (VideoMAE's PretrainVisionTransformer: encoder.patch_embed, forward(x, mask[, decode_mask]))
and ``ToyMAEST`` (mae_st's MaskedAutoencoderViT: patch_embed.input_size, random_masking, forward_loss,
patchify, forward(imgs, mask_ratio) -> (loss, pred, mask))."""

from __future__ import annotations

import torch
from torch import nn

from adamask import patchify


class ToyPatchEmbed(nn.Module):
    def __init__(self, img: int = 16, patch: int = 8, frames: int = 4, tubelet: int = 2, dim: int = 16) -> None:
        super().__init__()
        self.img_size, self.patch_size, self.tubelet_size = (img, img), (patch, patch), tubelet
        self.num_patches = (frames // tubelet) * (img // patch) ** 2
        self.input_size = (frames // tubelet, img // patch, img // patch)
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


class ToyMAEST(nn.Module):
    """Clips (B, 3, 4, 16, 16), tubelet 2 x 8 x 8: grid (2, 2, 2) (other sizes: ``img``, ``frames``);
    predicts every token."""

    def __init__(self, dim: int = 16, norm_pix_loss: bool = True, img: int = 16, frames: int = 4) -> None:
        super().__init__()
        self.patch_embed = ToyPatchEmbed(img=img, frames=frames, dim=dim)
        self.pred_t_dim, self.norm_pix_loss = frames, norm_pix_loss
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(0.02 * torch.randn(1, self.patch_embed.num_patches, dim))
        self.head = nn.Linear(dim, 3 * 2 * 8 * 8)

    def no_weight_decay(self):
        return {"mask_token"}

    def patchify(self, imgs):
        return patchify(imgs, (2, 8, 8))

    def random_masking(self, x, mask_ratio):
        b, n, _ = x.shape
        keep = int(n * (1 - mask_ratio))
        ids_shuffle = torch.argsort(torch.rand(b, n, device=x.device), dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :keep]
        mask = torch.ones(b, n, device=x.device)
        mask[:, :keep] = 0
        mask = torch.gather(mask, 1, ids_restore)
        return torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, x.shape[-1])), mask, ids_restore, ids_keep

    def forward_loss(self, imgs, pred, mask):
        target = self.patchify(imgs)
        if self.norm_pix_loss:
            target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1.0e-6) ** 0.5
        err = (pred - target).pow(2).mean(-1)
        return (err * mask).sum() / mask.sum()

    def forward(self, imgs, mask_ratio=0.75):
        x = self.patch_embed(imgs)
        x_masked, mask, ids_restore, _ = self.random_masking(x, mask_ratio)  # before position embedding
        latent = x_masked.mean(1, keepdim=True)
        pred = self.head(self.mask_token + latent + self.pos)
        return self.forward_loss(imgs, pred, mask), pred, mask


def toy_videomae(**kw) -> nn.Module:
    """A seeded ToyVideoMAE, wrapped (mask_ratio 0.75 unless given)."""
    from adamask.integrations import videomae as vm

    torch.manual_seed(0)
    return vm.wrap(ToyVideoMAE(), mask_ratio=kw.pop("mask_ratio", 0.75), **kw)

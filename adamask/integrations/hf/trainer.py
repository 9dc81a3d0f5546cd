"""`AdaMaskTrainer`: ``transformers.Trainer`` that also logs the two loss terms."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

import torch
import torch.distributed as dist
from transformers import Trainer

from .model import distributed

__all__ = ["AdaMaskTrainer"]


class AdaMaskTrainer(Trainer):
    """``transformers.Trainer`` that also logs ``reconstruction_loss`` and (unweighted)
    ``sampling_loss``, averaged over the training steps since the last log and across ranks.
    Values are accumulated on the device and read only when the Trainer logs; a model whose
    strategy is not learned logs no ``sampling_loss``."""

    _adamask_sums: Dict[str, torch.Tensor]  # loss term -> its sum over the steps since the last log (on device)
    _adamask_count: int  # training steps since the last log

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: Dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Optional[Any] = None,
    ) -> Any:
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if model.training and isinstance(outputs, Mapping):
            sums = self.__dict__.setdefault("_adamask_sums", {})
            for key in ("reconstruction_loss", "sampling_loss"):
                value = outputs.get(key)
                if value is not None:
                    value = value.detach().float()
                    sums[key] = value if key not in sums else sums[key] + value
            self._adamask_count = getattr(self, "_adamask_count", 0) + 1
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: Dict[str, float], *args: Any, **kwargs: Any) -> None:
        count = getattr(self, "_adamask_count", 0)
        if "loss" in logs and count:
            for key, total in self._adamask_sums.items():
                mean = total / count
                if distributed():
                    mean = mean.clone()
                    dist.all_reduce(mean)
                    mean = mean / dist.get_world_size()
                logs[key] = float(mean)
            self._adamask_sums, self._adamask_count = {}, 0
        super().log(logs, *args, **kwargs)

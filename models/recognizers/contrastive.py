"""ActionCLIP's contrastive loss over all ranks: features gathered with
their gradients, templates drawn, targets of each video."""
from typing import List

import torch
import torch.distributed as dist


def gather_features(*features: torch.Tensor) -> List[torch.Tensor]:
    """``(W * B, D)`` features of all W ranks, rank-major, with gradients.

    Backward sums the W equal losses' gradients and DDP divides by W, so
    W ranks train exactly like one process with the whole batch.
    """
    if not (dist.is_available() and dist.is_initialized()
            and dist.get_world_size() > 1):
        return list(features)
    from torch.distributed.nn.functional import all_gather
    return [torch.cat(all_gather(f), dim=0) for f in features]


def draw_template_ids(num_templates: int, batch_size: int) -> torch.Tensor:
    """``(batch_size, )`` random template indices for this rank: its slice
    of the whole ``W * B`` batch's draw, so that W equally seeded ranks
    draw what one process with the whole batch would."""
    world_size, rank = 1, 0
    if dist.is_available() and dist.is_initialized():
        world_size, rank = dist.get_world_size(), dist.get_rank()
    ids = torch.randint(num_templates, (world_size * batch_size, ))
    return ids[rank * batch_size:(rank + 1) * batch_size]


def build_contrastive_targets(labels: torch.Tensor, mode: str) -> torch.Tensor:
    """Targets of the video-to-text (and, by symmetry, text-to-video) logits
    of pairs of class ``labels``: for ``'diagonal'`` (CLIP's) ``(B, )``
    indices of each video's own text; for ``'same_label'`` (the original
    ActionCLIP's) ``(B, B)`` rows spreading one over the texts of its
    class."""
    if mode == 'diagonal':
        return torch.arange(len(labels), device=labels.device)
    if mode == 'same_label':
        same = (labels[:, None] == labels[None, :]).float()
        return same / same.sum(dim=1, keepdim=True)
    raise ValueError(f"contrastive_targets must be 'diagonal' or "
                     f"'same_label', got {mode!r}")

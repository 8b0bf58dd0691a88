"""ActionCLIP's contrastive loss over all ranks: the features gathered with
their gradients, the prompt templates drawn, the targets of each video.

The labels of all ranks need no gradient: ``mmengine.dist.all_gather``
gathers them.
"""
from typing import List

import torch
import torch.distributed as dist


def gather_features(*features: torch.Tensor) -> List[torch.Tensor]:
    """Concatenate features of all ranks, keeping every rank's gradient.

    Every rank then computes the same loss L over the whole ``W * B``
    batch. ``torch.distributed.nn.all_gather`` sums, in backward, the
    gradients that all W ranks' (equal) losses send to this rank's
    features: W times dL/d(features). DDP's average over the ranks divides
    by W again, so W ranks train exactly like one process with the whole
    batch (``tools/dist_check.py`` checks it).

    Args:
        *features (torch.Tensor): ``(B, D)`` tensors of this rank.

    Returns:
        list[torch.Tensor]: ``(W * B, D)`` tensors, rank-major.
    """
    if not (dist.is_available() and dist.is_initialized()
            and dist.get_world_size() > 1):
        return list(features)
    from torch.distributed.nn.functional import all_gather
    return [torch.cat(all_gather(f), dim=0) for f in features]


def draw_template_ids(num_templates: int, batch_size: int) -> torch.Tensor:
    """Random template indices for this rank's ``batch_size`` samples.

    Each rank draws the indices of the whole ``W * B`` batch from torch's
    global generator, which MMEngine seeds from ``randomness.seed``, and
    keeps its own slice. With the same seed on every rank (MMEngine's
    default) the ranks take disjoint parts of one sequence, so they draw
    independently of each other and exactly what one process with the
    whole batch would; with rank-dependent seeds (``diff_rank_seed``) they
    draw from different sequences.

    Args:
        num_templates (int): Number of templates to choose from.
        batch_size (int): Samples on this rank.

    Returns:
        torch.Tensor: ``(batch_size, )`` indices.
    """
    world_size, rank = 1, 0
    if dist.is_available() and dist.is_initialized():
        world_size, rank = dist.get_world_size(), dist.get_rank()
    ids = torch.randint(num_templates, (world_size * batch_size, ))
    return ids[rank * batch_size:(rank + 1) * batch_size]


def build_contrastive_targets(labels: torch.Tensor, mode: str) -> torch.Tensor:
    """Targets of the video-to-text logits (the text-to-video ones are the
    same, by symmetry).

    Args:
        labels (torch.Tensor): ``(B, )`` class of each (video, text) pair.
        mode (str): ``'diagonal'``: each video's own text is its only
            positive, as in CLIP and the public MMAction2 plugin; two videos
            of one class then push each other's texts away.
            ``'same_label'``: every text of the same class is a positive,
            with equal weight (the original ActionCLIP's KL loss against its
            label-aware target matrix; its ``softmax(10 * gt)`` tends to
            this).

    Returns:
        torch.Tensor: ``(B, )`` indices, or ``(B, B)`` rows summing to one.
    """
    if mode == 'diagonal':
        return torch.arange(len(labels), device=labels.device)
    if mode == 'same_label':
        same = (labels[:, None] == labels[None, :]).float()
        return same / same.sum(dim=1, keepdim=True)
    raise ValueError(f"contrastive_targets must be 'diagonal' or "
                     f"'same_label', got {mode!r}")

"""Whether W ranks train exactly like one process with the whole batch
(``tools/dist_check.py`` runs it under torchrun).

Each rank builds the same float32 ActionClip and random clips for ``W * B``
videos, takes the loss and gradients of one process on all of them, then
through ``DistributedDataParallel`` those of its own ``B``: for both
``contrastive_targets`` they must match within ``loss_tol`` / ``grad_tol``,
and a gather that drops the other ranks' gradients must fail (the control).
The loss's prompt template draws must be reproducible with
``set_random_seed``, differ between ranks and equal the single process's.
"""
import os
import time
from unittest import mock
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.distributed as dist
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmengine.config import Config
from mmengine.dist import all_gather_object
from mmengine.runner import set_random_seed

# The control replaces the gather where the loss looks it up.
from models.recognizers import actionclip
from models.recognizers.contrastive import draw_template_ids

#: A CLIP ViT small enough for two CPU processes.
TINY_MODEL = dict(
    type='ActionClip',
    clip_arch=dict(embed_dim=64, image_resolution=32, vision_layers=2,
                   vision_width=64, vision_patch_size=16,
                   transformer_width=64, transformer_heads=2,
                   transformer_layers=2),
    num_adapter_segs=4, num_adapter_layers=2)
#: Few labels, so that videos of one class meet across ranks.
LABELS = ['a square moving left', 'a circle growing', 'a triangle rotating']
TEMPLATES = ['a video of {}', '{}', 'a clip of {}', 'someone is {}']
TARGETS = ('diagonal', 'same_label')
#: Template draws compared per rank.
DRAWS = 256


def build_model(config: Optional[str], device: torch.device):
    """The ActionClip to check (``config``'s model, or a tiny ViT), float32
    and identical on every rank; BatchNorm on running statistics (batch
    statistics are per rank without SyncBN)."""
    cfg = Config.fromfile(config).model.to_dict() if config else dict(
        TINY_MODEL)
    cfg.update(labels_or_label_file=LABELS,
               templates_or_template_file=TEMPLATES, template=None,
               pretrained=False, to_float32=True)
    set_random_seed(0)
    model = MODELS.build(cfg).to(device).train()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
    return model


def loss_and_grads(model, call: Callable, inputs: torch.Tensor,
                   labels: torch.Tensor, seed: int) -> Tuple[float, Dict]:
    """Loss and per-parameter gradients of one step run by ``call``."""
    model.zero_grad(set_to_none=True)
    set_random_seed(seed)  # the template draws, as MMEngine seeds them
    samples = [ActionDataSample().set_gt_label(int(i)) for i in labels]
    loss = sum(call(inputs, samples, mode='loss').values())
    loss.backward()
    return loss.item(), {name: p.grad.detach().clone()
                         for name, p in model.named_parameters()
                         if p.grad is not None}


def compare(loss: float, grads: Dict, ref_loss: float,
            ref_grads: Dict) -> Dict:
    """Differences between distributed and single-process results; a
    gradient's relative to its norm, or to a thousandth of the whole
    gradient's where larger: some are zero up to rounding (attention's key
    bias, which softmax ignores), and their rounding noise is no error."""
    total = torch.cat([g.flatten() for g in ref_grads.values()]).norm()
    floor = max(1e-3 * total.item(), 1e-12)
    diffs = {name: (grads[name] - ref).norm().item() if name in grads
             else 1.0 for name, ref in ref_grads.items()}
    relative = {name: diff / max(ref_grads[name].norm().item(), floor)
                for name, diff in diffs.items()}
    worst = max(relative, key=relative.get)
    return dict(
        loss=loss, single_process_loss=ref_loss,
        loss_abs_diff=abs(loss - ref_loss),
        max_grad_rel_diff=relative[worst], worst_param=worst,
        whole_grad_rel_diff=sum(d**2 for d in diffs.values())**0.5 / max(
            total.item(), 1e-12),
        params_with_grad=len(grads),
        single_process_params_with_grad=len(ref_grads))


def gather_without_grad(*features: torch.Tensor) -> list:
    """The control's wrong gather: other ranks' features lose their
    gradient path."""
    out = []
    for f in features:
        parts = [torch.empty_like(f) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, f.detach().contiguous())
        parts[dist.get_rank()] = f
        out.append(torch.cat(parts))
    return out


def check_templates(seed: int, single_ids: torch.Tensor) -> Dict[str, bool]:
    """The loss's template draws on this rank against the other ranks'
    and the single process's (``single_ids``: its ``W * DRAWS``)."""
    draws = {}
    for diff_rank_seed in (False, True):
        for again in (0, 1):
            set_random_seed(seed, diff_rank_seed=diff_rank_seed)
            draws[diff_rank_seed, again] = draw_template_ids(
                len(TEMPLATES), DRAWS).cpu()
    same, diff = (all_gather_object(draws[d, 0]) for d in (False, True))
    checks = dict(
        reproducible=all(torch.equal(draws[d, 0], draws[d, 1])
                         for d in (False, True)),
        ranks_differ=len({tuple(p.tolist()) for p in same}) == len(same),
        ranks_differ_diff_rank_seed=len(
            {tuple(p.tolist()) for p in diff}) == len(diff),
        equal_to_single_process=torch.equal(torch.cat(same), single_ids))
    return dict(checks, ok=all(checks.values()))


def run_check(config: Optional[str] = None, batch_size: int = 4,
              seed: int = 0, loss_tol: float = 1e-5, grad_tol: float = 1e-4,
              backend: Optional[str] = None) -> Dict:
    """Run every check on this rank (torchrun's ``RANK``, ``WORLD_SIZE``,
    ``LOCAL_RANK``); the report holds the worst over the ranks, ``ok`` when
    every check holds on every rank."""
    rank, world = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
    local_rank = int(os.environ.get('LOCAL_RANK', 0))
    cuda = torch.cuda.is_available()
    device = torch.device(f'cuda:{local_rank}' if cuda else 'cpu')
    if cuda:
        torch.cuda.set_device(device)
        # plain float32, so that 1e-4 means something
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    start = time.time()
    model = build_model(config, device)
    gen = torch.Generator().manual_seed(seed)
    size = model.clip.visual.input_resolution
    inputs = torch.randn(world * batch_size, model.num_segs, 3, size, size,
                         generator=gen).to(device)
    labels = torch.randint(len(LABELS), (world * batch_size, ),
                           generator=gen)
    mine = slice(rank * batch_size, (rank + 1) * batch_size)

    # 1. One process, all W * B videos (no process group yet).
    reference = {}
    for step, mode in enumerate(TARGETS):
        model.contrastive_targets = mode
        reference[mode] = loss_and_grads(model, model, inputs, labels,
                                         seed + step)
    set_random_seed(seed)
    single_ids = draw_template_ids(len(TEMPLATES), world * DRAWS)

    # 2. W ranks, B videos each, through DDP.
    backend = backend or ('nccl' if cuda else 'gloo')
    dist.init_process_group(backend=backend)
    ddp = torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[local_rank] if cuda else None)
    mine_results = {}
    for step, mode in enumerate(TARGETS):
        model.contrastive_targets = mode
        mine_results[mode] = compare(*loss_and_grads(
            model, ddp, inputs[mine], labels[mine], seed + step),
            *reference[mode])
    # 3. The control: a gather without gradients must fail the check.
    model.contrastive_targets = TARGETS[0]
    with mock.patch.object(actionclip, 'gather_features',
                           gather_without_grad):
        control = compare(*loss_and_grads(model, ddp, inputs[mine],
                                          labels[mine], seed),
                          *reference[TARGETS[0]])['max_grad_rel_diff']
    templates = check_templates(seed, single_ids)
    ranks = all_gather_object((mine_results, control, templates['ok']))
    dist.destroy_process_group()

    report = dict(
        backend=backend, world_size=world, batch_per_rank=batch_size,
        device=torch.cuda.get_device_name(device) if cuda else 'cpu',
        torch=torch.__version__, model=config or 'tiny ViT',
        loss_tol=loss_tol, grad_tol=grad_tol, targets=mine_results,
        templates=templates)
    for mode, result in mine_results.items():
        for key in ('loss_abs_diff', 'max_grad_rel_diff',
                    'whole_grad_rel_diff'):
            result[f'{key}_all_ranks'] = max(r[0][mode][key] for r in ranks)
        result['ok'] = (
            result['loss_abs_diff_all_ranks'] <= loss_tol
            and result['max_grad_rel_diff_all_ranks'] <= grad_tol
            and result['whole_grad_rel_diff_all_ranks'] <= grad_tol
            and all(r[0][mode]['params_with_grad'] ==
                    r[0][mode]['single_process_params_with_grad']
                    for r in ranks))
    least = min(r[1] for r in ranks)
    report['control_wrong_gather'] = dict(min_grad_rel_diff_all_ranks=least,
                                          detected=least > grad_tol)
    report['ok'] = (least > grad_tol and all(r[2] for r in ranks)
                    and all(r['ok'] for r in mine_results.values()))
    report['seconds'] = round(time.time() - start, 2)
    return report

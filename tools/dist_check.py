"""Check that W ranks train exactly like one process with the whole batch.

Run it under torchrun, from the project root with the root on PYTHONPATH::

    torchrun --nproc_per_node=2 tools/dist_check.py     # gloo on CPU
    torchrun --nproc_per_node=2 tools/dist_check.py --backend nccl \\
        --config CONFIG --out report.json                  # 2 GPUs

Every rank builds the same ActionClip in float32 (a tiny ViT, or the model
of ``--config``) and random clips for ``W * B`` videos. Before the process
group exists, it computes the loss and the gradients of one process on all
``W * B`` videos; then, through ``DistributedDataParallel``, those of its
own ``B`` videos. For both ``contrastive_targets`` it checks that

* the loss equals the single-process loss (``--loss-tol``, absolute);
* every parameter's DDP-averaged gradient equals the single-process one
  (``--grad-tol``, relative to its norm; see :func:`compare`);

and, as a control, that a gather which keeps no gradient from the other
ranks fails the gradient check. For the random prompt templates of the
loss it checks that seeding with
MMEngine's ``set_random_seed`` reproduces them, that ranks draw different
templates (with the same seed on every rank, and with ``diff_rank_seed``),
and that with the same seed they are those of the single process.

Rank 0 prints a JSON report (and writes it to ``--out``); the exit status
is 0 when every check holds on every rank.
"""
import argparse
import json
import os
import sys
import time


def parse_args(argv=None) -> argparse.Namespace:
    """Parse and check the command line (bad input exits with status 2).

    Args:
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` by default.

    Returns:
        argparse.Namespace: The options.
    """
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument(
        '--backend',
        default=None,
        help='torch.distributed backend (None: nccl with CUDA, else gloo)')
    parser.add_argument(
        '--config',
        help='take the model from this config (its labels are replaced); '
        'None: a tiny ViT')
    parser.add_argument(
        '--batch-size', type=int, default=4, help='videos per rank (B)')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the data and draws')
    parser.add_argument(
        '--loss-tol',
        type=float,
        default=1e-5,
        help='largest absolute loss difference accepted')
    parser.add_argument(
        '--grad-tol',
        type=float,
        default=1e-4,
        help='largest gradient difference accepted, relative to its norm')
    parser.add_argument('--out', help='write the JSON report here (rank 0)')
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f'--batch-size must be >= 1, got {args.batch_size}')
    if args.loss_tol <= 0 or args.grad_tol <= 0:
        parser.error('--loss-tol and --grad-tol must be > 0')
    if args.config is not None and not os.path.isfile(args.config):
        parser.error(f'--config {args.config!r}: no such file')
    if int(os.environ.get('WORLD_SIZE', 1)) < 2:
        parser.error('run it on 2 or more processes: torchrun '
                     '--nproc_per_node=2 tools/dist_check.py')
    return args


if __name__ == '__main__':
    # The command line is checked before torch and MMAction2 load (seconds
    # on every rank), so that a usage error answers at once; main() reads
    # it again.
    parse_args()

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import models  # noqa: E402,F401  (stack fixes, registers ActionClip)
from mmaction.registry import MODELS  # noqa: E402
from mmaction.structures import ActionDataSample  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.dist import all_gather  # noqa: E402
from mmengine.runner import set_random_seed  # noqa: E402

# The control replaces the gather where the loss looks it up.
import models.recognizers.actionclip as actionclip  # noqa: E402
from models.recognizers.contrastive import draw_template_ids  # noqa: E402

#: A CLIP ViT small enough for two CPU processes.
TINY_MODEL = dict(
    type='ActionClip',
    clip_arch=dict(
        embed_dim=64,
        image_resolution=32,
        vision_layers=2,
        vision_width=64,
        vision_patch_size=16,
        transformer_width=64,
        transformer_heads=2,
        transformer_layers=2),
    num_adapter_segs=4,
    num_adapter_layers=2)
#: Few labels, so that videos of one class meet across ranks ('same_label').
LABELS = ['a square moving left', 'a circle growing', 'a triangle rotating']
TEMPLATES = ['a video of {}', '{}', 'a clip of {}', 'someone is {}']


def build_model(config, device: torch.device) -> torch.nn.Module:
    """The ActionClip to check, in float32, identical on every rank."""
    cfg = dict(TINY_MODEL)
    if config:
        cfg = Config.fromfile(config).model.to_dict()
    cfg.update(
        labels_or_label_file=LABELS,
        templates_or_template_file=TEMPLATES,
        template=None,
        pretrained=False,
        to_float32=True)
    set_random_seed(0)
    model = MODELS.build(cfg).to(device)
    model.train()
    # Batch statistics are per rank in any DDP run without SyncBN (CLIP's
    # ResNets): not what is checked here, so use the running statistics.
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
    return model


def make_batch(model, num_videos: int, seed: int, device: torch.device):
    """Random frames and labels for ``num_videos`` videos (same everywhere)."""
    gen = torch.Generator().manual_seed(seed)
    size = model.clip.visual.input_resolution
    inputs = torch.randn(num_videos, model.num_segs, 3, size, size,
                         generator=gen)
    labels = torch.randint(len(LABELS), (num_videos, ), generator=gen)
    return inputs.to(device), labels


def samples(labels) -> list:
    return [ActionDataSample().set_gt_label(int(i)) for i in labels]


def loss_and_grads(model, call, inputs, labels, seed: int):
    """Loss and per-parameter gradients of one step; ``call`` runs it."""
    model.zero_grad(set_to_none=True)
    set_random_seed(seed)  # the template draws, as MMEngine seeds them
    losses = call(inputs, samples(labels), mode='loss')
    loss = sum(losses.values())
    loss.backward()
    grads = {
        name: p.grad.detach().clone()
        for name, p in model.named_parameters() if p.grad is not None
    }
    return loss.item(), grads


def compare(loss, grads, ref_loss, ref_grads) -> dict:
    """Differences between distributed and single-process results.

    A parameter's gradient difference is taken relative to its own norm,
    or to a thousandth of the whole gradient's norm where that is larger:
    some gradients are zero up to rounding (the key bias of attention,
    which softmax ignores), and their rounding noise is no error.
    """
    total = torch.cat([g.flatten() for g in ref_grads.values()]).norm()
    floor = 1e-3 * total.item()
    worst, worst_name, total_diff = 0.0, None, 0.0
    for name, ref in ref_grads.items():
        diff = (grads[name] - ref).norm().item() if name in grads else 1.0
        total_diff += diff**2
        rel = diff / max(ref.norm().item(), floor, 1e-12)
        if rel > worst:
            worst, worst_name = rel, name
    return dict(
        loss=loss,
        single_process_loss=ref_loss,
        loss_abs_diff=abs(loss - ref_loss),
        max_grad_rel_diff=worst,
        worst_param=worst_name,
        whole_grad_rel_diff=total_diff**0.5 / max(total.item(), 1e-12),
        params_with_grad=len(grads),
        single_process_params_with_grad=len(ref_grads))


def gather_without_grad(*features: torch.Tensor) -> list:
    """A wrong gather for the control: the other ranks' features arrive
    without their gradient path, so each rank backpropagates only the loss
    terms of its own features."""
    out = []
    for f in features:
        parts = [torch.empty_like(f) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, f.detach().contiguous())
        parts[dist.get_rank()] = f
        out.append(torch.cat(parts))
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    rank = int(os.environ.get('RANK', 0))
    world = int(os.environ.get('WORLD_SIZE', 1))
    local_rank = int(os.environ.get('LOCAL_RANK', 0))
    cuda = torch.cuda.is_available()
    backend = args.backend or ('nccl' if cuda else 'gloo')
    device = torch.device(f'cuda:{local_rank}' if cuda else 'cpu')
    if cuda:
        torch.cuda.set_device(device)
        # plain float32, so that 1e-4 means something
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    start = time.time()
    model = build_model(args.config, device)
    inputs, labels = make_batch(model, world * args.batch_size, args.seed,
                                device)
    mine = slice(rank * args.batch_size, (rank + 1) * args.batch_size)
    modes = ('diagonal', 'same_label')

    # 1. One process, all W * B videos (no process group yet).
    reference = {}
    for step, mode in enumerate(modes):
        model.contrastive_targets = mode
        reference[mode] = loss_and_grads(model, model, inputs, labels,
                                         args.seed + step)
    draws = 256
    set_random_seed(args.seed)
    single_ids = draw_template_ids(len(TEMPLATES), world * draws)

    # 2. W ranks, B videos each, through DDP.
    dist.init_process_group(backend=backend)
    assert dist.get_world_size() == world
    ddp = torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[local_rank] if cuda else None)
    report = dict(
        backend=backend,
        world_size=world,
        batch_per_rank=args.batch_size,
        device=torch.cuda.get_device_name(device) if cuda else 'cpu',
        torch=torch.__version__,
        model=args.config or 'tiny ViT',
        loss_tol=args.loss_tol,
        grad_tol=args.grad_tol,
        targets={})
    ok = True
    for step, mode in enumerate(modes):
        model.contrastive_targets = mode
        loss, grads = loss_and_grads(model, ddp, inputs[mine], labels[mine],
                                     args.seed + step)
        result = compare(loss, grads, *reference[mode])
        result['ok'] = (
            result['loss_abs_diff'] <= args.loss_tol
            and result['max_grad_rel_diff'] <= args.grad_tol
            and result['whole_grad_rel_diff'] <= args.grad_tol
            and result['params_with_grad'] ==
            result['single_process_params_with_grad'])
        ok &= result['ok']
        report['targets'][mode] = result

    # 3. Control: the check must fail for a gather without gradients.
    model.contrastive_targets = modes[0]
    right_gather = actionclip.gather_features
    actionclip.gather_features = gather_without_grad
    try:
        control = compare(*loss_and_grads(model, ddp, inputs[mine],
                                          labels[mine], args.seed),
                          *reference[modes[0]])
    finally:
        actionclip.gather_features = right_gather

    # 4. The loss's template draws.
    set_random_seed(args.seed)
    ids = draw_template_ids(len(TEMPLATES), draws)
    set_random_seed(args.seed)
    again = draw_template_ids(len(TEMPLATES), draws)
    set_random_seed(args.seed, diff_rank_seed=True)
    diff_seed = draw_template_ids(len(TEMPLATES), draws)
    set_random_seed(args.seed, diff_rank_seed=True)
    diff_again = draw_template_ids(len(TEMPLATES), draws)
    per_rank = torch.stack(all_gather(ids.to(device))).cpu()
    per_rank_diff = torch.stack(all_gather(diff_seed.to(device))).cpu()

    def all_distinct(parts):
        return all(not torch.equal(parts[i], parts[j])
                   for i in range(len(parts)) for j in range(i))

    templates = dict(
        reproducible=torch.equal(ids, again)
        and torch.equal(diff_seed, diff_again),
        ranks_differ=all_distinct(per_rank),
        ranks_differ_diff_rank_seed=all_distinct(per_rank_diff),
        equal_to_single_process=torch.equal(per_rank.flatten(), single_ids))
    templates['ok'] = all(templates.values())
    ok &= templates['ok']
    report['templates'] = templates

    # Every rank checked its own gradients: report the worst, all must pass.
    worst = torch.tensor(
        [0.0 if ok else 1.0] + [
            report['targets'][m][k] for m in modes
            for k in ('loss_abs_diff', 'max_grad_rel_diff',
                      'whole_grad_rel_diff')
        ] + [-control['max_grad_rel_diff']],
        dtype=torch.float64,
        device=device)
    dist.all_reduce(worst, op=dist.ReduceOp.MAX)
    worst = worst.tolist()
    for i, mode in enumerate(modes):
        report['targets'][mode].update(
            loss_abs_diff_all_ranks=worst[1 + 3 * i],
            max_grad_rel_diff_all_ranks=worst[2 + 3 * i],
            whole_grad_rel_diff_all_ranks=worst[3 + 3 * i])
    # the control's smallest difference over the ranks
    least = -worst[-1]
    report['control_wrong_gather'] = dict(
        min_grad_rel_diff_all_ranks=least,
        detected=least > args.grad_tol)
    report['ok'] = ok = (worst[0] == 0 and least > args.grad_tol)
    report['seconds'] = round(time.time() - start, 2)
    if rank == 0:
        text = json.dumps(report, indent=2)
        print(text, flush=True)
        if args.out:
            os.makedirs(os.path.dirname(os.path.abspath(args.out)),
                        exist_ok=True)
            with open(args.out, 'w') as f:
                f.write(text + '\n')
    dist.destroy_process_group()
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())

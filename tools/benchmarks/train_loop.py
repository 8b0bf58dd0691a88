"""Part train_loop: ``mim train``'s loop (mmengine's Runner and
``EpochBasedTrainLoop``) of the bf16 AMP fine-tuning config on
Kinetics-like videos, with the config's own train pipeline and data
preprocessor: samples/s, and the share of each iteration spent waiting for
data, in the data preprocessor (the copy to the device, and whatever the
config does there) and in the step (forward, backward, optimizer), next to
the same model's step on a batch already on the device.

Random weights (``model.pretrained=False``), no validation, no checkpoint
saved; one epoch of a fixed number of iterations: the warm-up (the
workers' head start, compiling) and then those timed.
"""
import copy
import gc
import os.path as osp
import time
from typing import Any, Dict, List, Sequence, Tuple

import torch
from benchmarks.common import (DECODE_BACKEND, ROOT, TRAIN_CONFIGS, Budget,
                               apply_overrides, measure)
from benchmarks.iteration_clock import EnoughIterations, IterationClock
from benchmarks.loop import warmup_iters
from benchmarks.videos import annotation_list

#: The training pipeline before augmentation moved to the device: every
#: crop, resize and flip in numpy in the DataLoader workers, and
#: ActionClip's default data preprocessor (normalisation only).
CPU_AUG_PIPELINE = [
    dict(type='VideoInit', io_backend='disk'),
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=8),
    dict(type='VideoDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='RandomResizedCrop'),
    dict(
        type='MultiScaleCrop',
        input_size=224,
        scales=(1, .875, .75, .66),
        random_crop=False,
        num_fixed_crops=13,
        max_wh_scale_gap=1),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')
]
COMPILE = {'model.speedups.compile': 'reduce-overhead'}


def train_loop_variants(
        device: torch.device) -> List[Tuple[str, Dict[str, Any], bool]]:
    """The variants measured on ``device``: (name, config overrides, old
    CPU augmentation).

    The shipped AMP config as the repository holds it at run time; with
    ``compile='reduce-overhead'`` (CUDA only: it replays CUDA graphs); and
    the old CPU-augmentation pipeline, with ``compile`` on CUDA so that it
    compares with the row above it.
    """
    rows = [('AMP config as shipped', {}, False)]
    if device.type == 'cuda':
        rows += [('+ model.speedups.compile=reduce-overhead', COMPILE,
                  False),
                 ('+ compile, decord decoding (backend=cpu, the decoder '
                  'before)', dict(COMPILE, **{DECODE_BACKEND: 'cpu'}), False),
                 ('CPU augmentation (old pipeline) + compile', COMPILE,
                  True)]
    else:
        rows.append(('CPU augmentation (old pipeline)', {}, True))
    return rows


def _to_device(value, device: torch.device):
    """Tensors in ``value`` (a tensor or a list of them) on ``device``."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (list, tuple)):
        return type(value)(_to_device(v, device) for v in value)
    return value


def bench_train_loop(arch: str, clip_arch, label_file: str, num_labels: int,
                     videos: Dict[str, Any], work_dir: str, variant: str,
                     overrides: Dict[str, Any], cpu_aug: bool, workers: int,
                     device: torch.device, budget: Budget) -> Dict:
    """One variant of ``mim train``'s loop of the arch's AMP config.

    Args:
        arch (str): Row label (``'ViT-B/32'``; other names use ViT-B/32's
            config with ``clip_arch``).
        clip_arch (str | dict): CLIP architecture built.
        label_file (str): The labels.
        num_labels (int): How many (the annotation list cycles them).
        videos (dict): The videos (cycled through).
        work_dir (str): The runner's folder (temporary).
        variant (str): Row label.
        overrides (dict): Config options to change.
        cpu_aug (bool): Use :data:`CPU_AUG_PIPELINE` and ActionClip's
            default data preprocessor.
        workers (int): DataLoader workers.
        device (torch.device): Where the model runs.
        budget (Budget): Iterations, batch and time.

    Returns:
        dict: The row.
    """
    from mmengine.config import Config
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    config = TRAIN_CONFIGS.get(arch, TRAIN_CONFIGS['ViT-B/32'])
    cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
    loader = cfg.train_dataloader
    if cpu_aug:
        loader.dataset.pipeline = copy.deepcopy(CPU_AUG_PIPELINE)
        cfg.model.pop('data_preprocessor', None)
    apply_overrides(cfg, overrides, loader.dataset.pipeline)
    cfg.model.clip_arch = clip_arch
    cfg.model.pretrained = False
    cfg.model.labels_or_label_file = label_file
    if device.type != 'cuda' and cfg.optim_wrapper.type == 'AmpOptimWrapper':
        # mmengine's AmpOptimWrapper needs a GPU: the CPU smoke run steps
        # in float32 with the same optimizer.
        cfg.optim_wrapper.type = 'OptimWrapper'
        cfg.optim_wrapper.pop('dtype', None)
    batch = budget.train_loop_batch
    loader.batch_size = batch
    loader.num_workers = workers
    # One epoch: persistent workers would only start on the next epoch's
    # batches at its end, and the shutdown would wait for them.
    loader.persistent_workers = False
    skip = warmup_iters(workers, budget)
    iters = skip + budget.train_loop_iters
    loader.dataset.ann_file = annotation_list(
        videos, iters * batch, num_labels, work_dir + '_list.txt')
    loader.dataset.data_prefix = dict(video=videos['dir'])
    # No validation, no checkpoint: the loop alone, one epoch.
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1)
    cfg.default_hooks.checkpoint = None
    cfg.load_from = None
    cfg.resume = False
    cfg.work_dir = work_dir
    cfg.log_level = 'WARNING'
    cfg.experiment_name = f'benchmark_{time.time_ns()}'
    runner = Runner.from_cfg(cfg)
    clock = IterationClock(device, 'train', skip, budget.loop_seconds)
    kept: Dict[str, Any] = {}

    class _KeepBatch(Hook):
        """Keeps the last batch, for the step without the loader."""

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            kept['batch'] = data_batch

    runner.register_hook(_KeepBatch(), priority='LOWEST')
    clock.attach(runner)
    start = time.perf_counter()
    try:
        runner.train()
    except EnoughIterations:
        pass
    total = time.perf_counter() - start
    clock.detach()
    shares = clock.shares()
    rate = shares['iters'] * batch / shares['seconds']
    on_device, losses = step_on_device(runner.model, runner.optim_wrapper,
                                       kept['batch'], device,
                                       budget.train_loop_iters)
    if not all(map(_finite, losses)):
        raise RuntimeError(f'train loop {arch} {variant}: the loss is not '
                           f'finite ({losses}); the figures would be of a '
                           'broken step')
    preprocessor = type(runner.model.data_preprocessor).__name__
    pipeline = [t['type'] for t in loader.dataset.pipeline]
    kept.clear()
    del runner
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    row = dict(
        arch=arch,
        variant=variant,
        config=config + f' (clip_arch={clip_arch!r})',
        overrides=overrides,
        pipeline=pipeline,
        data_preprocessor=preprocessor,
        optim_wrapper=cfg.optim_wrapper.type,
        num_workers=workers,
        batch_size=batch,
        samples=len(clock.times['end']) * batch,
        total_seconds=total,
        warmup_iters=shares['skipped'],
        timed_iters=shares['iters'],
        cut_short=clock.cut_short,
        samples_per_s=rate,
        data_wait_share=shares['data_wait'],
        preprocess_share=shares['preprocess'],
        step_share=shares['step'],
        rest_share=shares['rest'],
        step_on_device_samples_per_s=on_device,
        last_loss=losses[-1])
    row['of_step_on_device'] = rate / row['step_on_device_samples_per_s']
    print(f'  train loop {arch} {variant}: {rate:.1f} samples/s '
          f'({workers} workers), data wait {shares["data_wait"]:.0%}; '
          f'step on device {row["step_on_device_samples_per_s"]:.1f}',
          flush=True)
    return row


def step_on_device(model, wrapper, data_batch: Dict, device: torch.device,
                   iters: int) -> Tuple[float, List[float]]:
    """The loop's training step on one of its batches already on the
    device: what the loop would do if data cost nothing.

    Args:
        model (BaseModel): The runner's model.
        wrapper (OptimWrapper): The runner's optimizer wrapper.
        data_batch (dict): A batch as the DataLoader gave it.
        device (torch.device): Where the model runs.
        iters (int): Timed steps (after one untimed).

    Returns:
        tuple: Samples/s and the losses of every step.
    """
    data = dict(data_batch)
    data['inputs'] = _to_device(data['inputs'], device)
    losses = []

    def step():
        log = model.train_step(data, wrapper)
        losses.append(float(log['loss'].detach()))

    timing = measure(step, device, 1, iters, iters)
    return len(data['data_samples']) / timing['seconds_per_iter'], losses


def _finite(value: float) -> bool:
    return value == value and abs(value) != float('inf')


def attach_model_only(rows: Sequence[Dict], train_rows: Sequence[Dict]
                      ) -> None:
    """Put part c's model-only step (same arch, AMP; compiled for the
    compiled variants) beside each loop row, where part c measured it.

    Args:
        rows (list[dict]): Train-loop rows, changed in place.
        train_rows (list[dict]): Part c's rows.
    """
    for row in rows:
        compiled = bool(row['overrides'].get('model.speedups.compile'))
        for ref in train_rows:
            if (ref['arch'] == row['arch'] and 'AMP' in ref['path']
                    and ('compile' in ref['path']) == compiled
                    and ref['batch'] == row['batch_size']):
                row['model_only_samples_per_s'] = ref['samples_per_s']
                row['of_model_only'] = (
                    row['samples_per_s'] / ref['samples_per_s'])

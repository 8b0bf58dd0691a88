"""mmengine's test loop of the Kinetics-400 test config (what ``mim test``
runs) and training loop of the AMP config (``mim train``) on given videos,
random weights: throughput, and where each iteration's time goes (waiting
for data, the data preprocessor, the model's step, the hooks)."""
import os.path as osp
import time
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from .decode_rate import decode_limit
from .model_paths import Budget, measure_train_step, release_memory
from .videos import annotation_list

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: The config of each loop, ``{patch}`` that of ViT-B/16 or /32.
CONFIGS = dict(
    test='actionclip_vit-base-p{patch}-res224-clip-pre_1x1x8_k400-rgb.py',
    train='actionclip_vit-base-p{patch}-res224-clip-pre_g8xb16-amp_1x1x8_'
    'k400-rgb.py')
#: Variants per loop: (name, config options, CUDA only); the first is the
#: config as the repository holds it at run time.
VARIANTS = dict(
    test=(('config as shipped', {}, False),
          ('+ test_cfg.fp16, model.speedups.cuda_graphs',
           {'test_cfg.fp16': True, 'model.speedups.cuda_graphs': True},
           True),
          ('batch 1 (the old default)', {'test_dataloader.batch_size': 1},
           False)),
    train=(('AMP config as shipped', {}, False),
           ('+ model.speedups.compile=reduce-overhead',
            {'model.speedups.compile': 'reduce-overhead'}, True)))
#: The readings of one iteration, in order, and the spans between them
#: (from the previous iteration's end).
MARKS = ('start', 'preprocess_end', 'step_end', 'end')
SPANS = ('data_wait', 'preprocess', 'step', 'rest')


class EnoughIterations(Exception):
    """Ends a loop whose timed part ran past its time budget."""


class IterationClock:
    """Clock readings (:data:`MARKS`) of each iteration of a ``'test'`` or
    ``'train'`` loop, the device's queued work finished at each: ``start``
    the loop has the batch (since the previous ``end``: the wait for data),
    ``preprocess_end`` the data preprocessor, ``step_end`` the forward
    (test) or the training step, ``end`` the other hooks. The first
    ``skip`` iterations are not timed; after ``max_seconds`` timed, the
    loop is ended (:class:`EnoughIterations`).
    """

    def __init__(self, device: torch.device, mode: str, skip: int,
                 max_seconds: float):
        self.device, self.mode, self.skip = device, mode, skip
        self.max_seconds = max_seconds
        self.cut_short = False
        self.last_batch = None
        self.times: Dict[str, List[float]] = {k: [] for k in MARKS}
        self._handles: List = []

    def mark(self, name: str) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
        self.times[name].append(time.perf_counter())

    def attach(self, runner) -> None:
        """Register the clock's hooks on ``runner`` and its model."""
        from mmengine.hooks import Hook
        clock, mode = self, self.mode

        def start(hook, runner, batch_idx, data_batch=None):
            clock.last_batch = data_batch
            clock.mark('start')

        def end(hook, runner, batch_idx, data_batch=None, outputs=None):
            clock.mark('end')
            ends = clock.times['end']
            if len(ends) > clock.skip + 1 and ends[-1] - ends[max(
                    clock.skip - 1, 0)] > clock.max_seconds:
                clock.cut_short = True
                raise EnoughIterations

        first = type('First', (Hook, ), {f'before_{mode}_iter': start})
        if mode == 'train':  # the end of train_step
            setattr(first, 'after_train_iter',
                    lambda *args, **kwargs: clock.mark('step_end'))
        last = type('Last', (Hook, ), {f'after_{mode}_iter': end})
        runner.register_hook(first(), priority='HIGHEST')
        runner.register_hook(last(), priority='LOWEST')
        model = runner.model
        self._handles.append(model.data_preprocessor.register_forward_hook(
            lambda *args: clock.mark('preprocess_end')))
        if mode == 'test':  # the forward's end; the metric follows
            self._handles.append(model.register_forward_hook(
                lambda *args: clock.mark('step_end')))

    def detach(self) -> None:
        """Remove the clock's hooks from the model."""
        for handle in self._handles:
            handle.remove()

    def shares(self) -> Dict[str, float]:
        """``seconds`` and ``iters`` of the timed iterations, ``skipped``,
        and the shares of ``data_wait``, ``preprocess``, ``step`` and
        ``rest`` (adding up to 1); a RuntimeError when fewer than two
        iterations ran or a hook did not fire."""
        counts = {k: len(v) for k, v in self.times.items()}
        if len(set(counts.values())) != 1:
            raise RuntimeError(f'iteration clock: readings missing '
                               f'({counts}); a hook of the loop did not fire')
        ends = self.times['end']
        if len(ends) < 2:
            raise RuntimeError(f'iteration clock: {len(ends)} iteration(s) '
                               'ran; at least 2 are needed')
        skip = max(1, min(self.skip, len(ends) - 1))
        # Per timed iteration: the previous end, then its readings.
        marks = np.array([ends[skip - 1:-1]] +
                         [self.times[k][skip:] for k in MARKS]).T
        seconds = ends[-1] - ends[skip - 1]
        spans = np.diff(marks, axis=1).sum(axis=0) / seconds
        return dict(seconds=float(seconds), iters=len(marks), skipped=skip,
                    **dict(zip(SPANS, map(float, spans))))


def variants(mode: str, device: torch.device) -> List:
    """The (name, options) of ``mode``'s variants that run on ``device``."""
    return [(name, options) for name, options, cuda in VARIANTS[mode]
            if device.type == 'cuda' or not cuda]


def bench_loop(mode: str, arch: str, clip_arch, labels: List[str],
               num_labels: int, videos: Dict[str, Any], work_dir: str,
               variant: str, options: Dict[str, Any], workers: int,
               device: torch.device, budget: Budget,
               decode_rates: Optional[List[Dict]] = None) -> Dict:
    """The row of one variant of the test loop (the config's workers and
    batch; with the decode limit from ``decode_rates``) or training loop
    (``workers``, ``budget.train_loop_batch``, no validation or checkpoint;
    with the step alone on one of its batches) of the arch's config
    (ViT-B/32's for other archs, with ``clip_arch``): warm-up iterations,
    then those timed, over the videos cycled through."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    config = CONFIGS[mode].format(patch=16 if arch == 'ViT-B/16' else 32)
    cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
    cfg.merge_from_dict(options)
    cfg.model.update(clip_arch=clip_arch, pretrained=False,
                     labels_or_label_file=labels)
    loader = cfg[f'{mode}_dataloader']
    if mode == 'train':
        loader.update(batch_size=budget.train_loop_batch,
                      num_workers=workers)
        if device.type != 'cuda' and cfg.optim_wrapper.type == \
                'AmpOptimWrapper':  # it needs a GPU: float32 steps on a CPU
            cfg.optim_wrapper.type = 'OptimWrapper'
            cfg.optim_wrapper.pop('dtype', None)
        cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
        cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1)
        cfg.default_hooks.checkpoint = cfg.load_from = None
        cfg.resume = False
    workers, batch = loader.num_workers, loader.batch_size
    skip = 2 * workers + 2 if budget.loop_skip is None else budget.loop_skip
    timed = budget.loop_iters if mode == 'train' else max(
        budget.loop_iters, -(-budget.loop_videos // batch))
    loader.dataset.ann_file = annotation_list(
        videos, (skip + timed) * batch, num_labels, work_dir + '_list.txt')
    loader.dataset.data_prefix = dict(video=videos['dir'])
    # One epoch: persistent workers would be joined with a timeout.
    loader.persistent_workers = False
    cfg.update(work_dir=work_dir, log_level='WARNING',
               experiment_name=f'benchmark_{time.time_ns()}')
    runner = Runner.from_cfg(cfg)
    clock = IterationClock(device, mode, skip, budget.loop_seconds)
    clock.attach(runner)
    start, metrics = time.perf_counter(), None
    try:
        metrics = runner.test() if mode == 'test' else runner.train()
    except EnoughIterations:
        pass
    total = time.perf_counter() - start
    clock.detach()
    shares = clock.shares()
    rate = shares['iters'] * batch / shares['seconds']
    pipeline = loader.dataset.pipeline
    row = dict(
        arch=arch, variant=variant, overrides=options,
        config=f'{config} (clip_arch={clip_arch!r})',
        pipeline=[t['type'] for t in pipeline],
        num_workers=workers, batch_size=batch, total_seconds=total,
        warmup_iters=shares['skipped'], timed_iters=shares['iters'],
        cut_short=clock.cut_short,
        data_wait_share=shares['data_wait'],
        preprocess_share=shares['preprocess'], rest_share=shares['rest'])
    if mode == 'test':
        row.update(
            videos=len(clock.times['end']) * batch,
            timed_videos=shares['iters'] * batch, videos_per_s=rate,
            forward_share=shares['step'],
            clip_dtype=str(runner.model.clip.dtype),
            metrics={k: float(v) for k, v in (metrics or {}).items()},
            decode_limit_videos_per_s=decode_limit(decode_rates, pipeline,
                                                   workers))
    else:
        row.update(samples_per_s=rate, step_share=shares['step'],
                   optim_wrapper=cfg.optim_wrapper.type,
                   data_preprocessor=type(
                       runner.model.data_preprocessor).__name__)
        # The same step on one of the loop's batches already on the device:
        # the loop if data cost nothing.
        data = runner.model.data_preprocessor.cast_data(clock.last_batch)
        step = measure_train_step(runner.model, data, runner.optim_wrapper,
                                  budget.min_seconds, warmup=1)
        alone = len(data['data_samples']) / step['seconds_per_iter']
        row.update(step_on_device_samples_per_s=alone,
                   last_loss=step['last_loss'], of_step_on_device=rate / alone)
    clock.last_batch = None
    del runner
    release_memory(device)
    print(f'  {mode} loop {arch} {variant}: {rate:.1f} /s ({workers} '
          f'workers, batch {batch}), data wait {shares["data_wait"]:.0%}',
          flush=True)
    return row

"""Part e: mmengine's test loop of the Kinetics-400 test config (the code
``mim test`` runs) on generated videos: videos/s, and whether decoding or
the model bounds it."""
import gc
import os.path as osp
import time
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from benchmarks.common import ROOT, TEST_CONFIGS, synchronize

#: Test-loop variants: (name, config overrides).
TEST_LOOP_VARIANTS = (
    ('config as released', {}),
    ('+ test_cfg.fp16, model.speedups.cuda_graphs', {
        'test_cfg.fp16': True,
        'model.speedups.cuda_graphs': True
    }),
)


class IterationClock:
    """Clock readings of each test iteration: its start and end, and the
    model's forward inside it (device work finished at each reading)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.times: Dict[str, List[float]] = dict(
            start=[], forward_start=[], forward_end=[], end=[])

    def mark(self, name: str) -> None:
        """Record the time of ``name`` once queued device work is done."""
        synchronize(self.device)
        self.times[name].append(time.perf_counter())

    def hook(self):
        """An mmengine hook that marks iteration starts and ends."""
        from mmengine.hooks import Hook
        clock = self

        class _Hook(Hook):

            def before_test_iter(self, runner, batch_idx, data_batch=None):
                clock.mark('start')

            def after_test_iter(self, runner, batch_idx, data_batch=None,
                                outputs=None):
                clock.mark('end')

        return _Hook()

    def shares(self, skip: int) -> Dict[str, float]:
        """Where the steady iterations' time went.

        Args:
            skip (int): Leading iterations left out (worker start-up, the
                text cache fill, CUDA graph captures).

        Returns:
            dict: ``seconds`` of the steady part, ``iters``, and the
            shares of ``data_wait`` (waiting for the loader), ``preprocess``
            (collate, to device, normalise), ``forward`` (predict) and
            ``rest`` (metric, hooks).
        """
        t = {k: np.array(v[skip:]) for k, v in self.times.items()}
        end_before = np.array(self.times['end'][skip - 1:-1])
        seconds = self.times['end'][-1] - self.times['end'][skip - 1]
        parts = dict(
            data_wait=(t['start'] - end_before).sum(),
            preprocess=(t['forward_start'] - t['start']).sum(),
            forward=(t['forward_end'] - t['forward_start']).sum(),
            rest=(t['end'] - t['forward_end']).sum())
        return dict(seconds=seconds, iters=len(t['end']),
                    **{k: float(v / seconds) for k, v in parts.items()})


def bench_test_loop(arch: str, clip_arch, label_file: str,
                    videos: Dict[str, Any], work_dir: str,
                    decode: Optional[Dict], variant: str,
                    overrides: Dict[str, Any],
                    device: torch.device) -> Dict:
    """Part e: mmengine's test loop of the arch's K400 test config (what
    ``mim test`` runs) over the generated videos, with the config's data
    workers and batch size, the model as configured (plus ``overrides``),
    random weights."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(osp.join(ROOT, 'configs', TEST_CONFIGS['ViT-B/32']))
    cfg.merge_from_dict(overrides)
    cfg.model.clip_arch = clip_arch
    cfg.model.labels_or_label_file = label_file
    cfg.test_dataloader.dataset.ann_file = videos['ann_file']
    cfg.test_dataloader.dataset.data_prefix = dict(video=videos['dir'])
    cfg.work_dir = work_dir
    cfg.log_level = 'WARNING'
    cfg.experiment_name = f'benchmark_{time.time_ns()}'
    runner = Runner.from_cfg(cfg)
    clock = IterationClock(device)
    runner.register_hook(clock.hook(), priority='LOWEST')
    runner.model.register_forward_pre_hook(
        lambda *args: clock.mark('forward_start'))
    runner.model.register_forward_hook(
        lambda *args: clock.mark('forward_end'))
    start = time.perf_counter()
    metrics = runner.test()
    total = time.perf_counter() - start
    workers = cfg.test_dataloader.num_workers
    batch = cfg.test_dataloader.batch_size
    # float16 on CUDA for the test config (to_float32=False): ActionClip's
    # test_step stores CLIP so.
    clip_dtype = str(runner.model.clip.dtype)
    del runner
    gc.collect()
    shares = clock.shares(skip=min(2, len(clock.times['end']) - 1))
    rate = shares['iters'] * batch / shares['seconds']
    row = dict(
        arch=arch,
        variant=variant,
        config=TEST_CONFIGS['ViT-B/32'] + f' (clip_arch={clip_arch!r})',
        overrides=overrides,
        num_workers=workers,
        batch_size=batch,
        clip_dtype=clip_dtype,
        videos=len(clock.times['end']) * batch,
        total_seconds=total,
        steady_videos=shares['iters'] * batch,
        videos_per_s=rate,
        **{f'{k}_share': shares[k]
           for k in ('data_wait', 'preprocess', 'forward', 'rest')},
        bound_by='data loading (decoding)'
        if shares['data_wait'] > 0.5 else 'model step',
        metrics={k: float(v)
                 for k, v in (metrics or {}).items()})
    if decode:
        row['decode_limit_videos_per_s'] = (
            workers * decode['videos_per_s_per_worker'])
    print(f"  test loop {arch} {variant}: {rate:.1f} videos/s, bound by "
          f"{row['bound_by']}", flush=True)
    return row

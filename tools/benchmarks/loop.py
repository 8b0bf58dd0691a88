"""Part e: mmengine's test loop of the Kinetics-400 test config (the code
``mim test`` runs) on Kinetics-like videos: videos/s, and the share of
each iteration spent waiting for data, in the data preprocessor (the copy
to the device and normalisation) and in the model's forward."""
import gc
import os.path as osp
import time
from typing import Any, Dict, List, Optional

import torch
from benchmarks.common import (DECODE_BACKEND, ROOT, TEST_CONFIGS, Budget,
                               apply_overrides)
from benchmarks.decode_rate import decode_limit
from benchmarks.iteration_clock import EnoughIterations, IterationClock
from benchmarks.videos import annotation_list

#: Test-loop variants: (name, config overrides, CUDA only). The first is
#: the test config as the repository holds it at run time.
TEST_LOOP_VARIANTS = (
    ('config as shipped', {}, False),
    ('+ test_cfg.fp16, model.speedups.cuda_graphs', {
        'test_cfg.fp16': True,
        'model.speedups.cuda_graphs': True
    }, True),
    ('decord decoding (backend=cpu, the decoder before)', {
        DECODE_BACKEND: 'cpu'
    }, False),
    ('batch 1 (the old default)', {
        'test_dataloader.batch_size': 1
    }, False),
)


def warmup_iters(workers: int, budget: Budget) -> int:
    """Iterations left out of the timing: the workers' head start (each
    prefetches 2 batches while the loop starts) and two more."""
    if budget.loop_skip is not None:
        return budget.loop_skip
    return 2 * workers + 2


def test_config(arch: str) -> str:
    """The arch's K400 test config (ViT-B/32's for the ``--quick`` tiny
    model)."""
    return TEST_CONFIGS.get(arch, TEST_CONFIGS['ViT-B/32'])


def bench_test_loop(arch: str, clip_arch, label_file: str, num_labels: int,
                    videos: Dict[str, Any], work_dir: str,
                    decode_rate: Optional[List[Dict]], variant: str,
                    overrides: Dict[str, Any], device: torch.device,
                    budget: Budget) -> Dict:
    """Part e: mmengine's test loop of the arch's K400 test config (what
    ``mim test`` runs) over the videos, with the config's data workers and
    batch size (plus ``overrides``), random weights.

    The loop runs ``warmup_iters`` untimed iterations, then at least
    ``budget.loop_iters`` and ``budget.loop_videos`` videos (the files
    cycled through), cut short after ``budget.loop_seconds``.

    Returns:
        dict: The row: videos/s, workers, batch, the shares of the timed
        iterations and, given ``decode_rate``, the decode limits.
    """
    from mmengine.config import Config
    from mmengine.runner import Runner

    config = test_config(arch)
    cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
    apply_overrides(cfg, overrides, cfg.test_dataloader.dataset.pipeline)
    cfg.model.clip_arch = clip_arch
    cfg.model.pretrained = False
    cfg.model.labels_or_label_file = label_file
    loader = cfg.test_dataloader
    workers, batch = loader.num_workers, loader.batch_size
    skip = warmup_iters(workers, budget)
    iters = skip + max(budget.loop_iters, -(-budget.loop_videos // batch))
    ann_file = annotation_list(
        videos, iters * batch, num_labels,
        osp.join(work_dir + '_list.txt'))
    loader.dataset.ann_file = ann_file
    # One epoch: the same loop; workers that persist would be joined at the
    # end with a timeout instead of ending with the epoch.
    loader.persistent_workers = False
    loader.dataset.data_prefix = dict(video=videos['dir'])
    cfg.work_dir = work_dir
    cfg.log_level = 'WARNING'
    cfg.experiment_name = f'benchmark_{time.time_ns()}'
    runner = Runner.from_cfg(cfg)
    clock = IterationClock(device, 'test', skip, budget.loop_seconds)
    clock.attach(runner)
    start = time.perf_counter()
    metrics = None
    try:
        metrics = runner.test()
    except EnoughIterations:
        pass
    total = time.perf_counter() - start
    # float16 on CUDA for the test config (to_float32=False): ActionClip's
    # test_step stores CLIP so.
    clip_dtype = str(runner.model.clip.dtype)
    clock.detach()
    del runner
    gc.collect()
    shares = clock.shares()
    rate = shares['iters'] * batch / shares['seconds']
    row = dict(
        arch=arch,
        variant=variant,
        config=config + f' (clip_arch={clip_arch!r})',
        overrides=overrides,
        num_workers=workers,
        batch_size=batch,
        pin_memory=bool(loader.get('pin_memory', False)),
        clip_dtype=clip_dtype,
        videos=len(clock.times['end']) * batch,
        total_seconds=total,
        warmup_iters=shares['skipped'],
        timed_iters=shares['iters'],
        timed_videos=shares['iters'] * batch,
        cut_short=clock.cut_short,
        videos_per_s=rate,
        data_wait_share=shares['data_wait'],
        preprocess_share=shares['preprocess'],
        forward_share=shares['step'],
        rest_share=shares['rest'],
        bound_by='data loading (decoding)'
        if shares['data_wait'] > 0.5 else 'main process (preprocess, '
        'model)',
        metrics={k: float(v)
                 for k, v in (metrics or {}).items()})
    row['decode_limit_videos_per_s'] = decode_limit(
        decode_rate, cfg.test_dataloader.dataset.pipeline, workers)
    print(f"  test loop {arch} {variant}: {rate:.1f} videos/s "
          f"({workers} workers, batch {batch}), data wait "
          f"{shares['data_wait']:.0%}", flush=True)
    return row

"""Whether the test pipeline's ``VideoInit`` should open videos with one
decoding thread inside DataLoader workers: the pipeline in N workers with
``num_threads=1`` (MMAction2's ``DecordInit`` default, which ``VideoInit``
inherits) against ``num_threads=0`` (decord's own default: as many threads
as it likes, in every worker). The pipeline decodes with decord here
(``VideoDecode(backend='cpu')``): with the config's PyAV backend, decord
only opens the files and its threads do not decode."""
import os.path as osp
import time
from typing import Any, Dict, List

import torch
from benchmarks.common import ROOT, TEST_CONFIGS

#: (name, VideoInit's num_threads)
THREAD_SETTINGS = (('num_threads=1 (DecordInit default)', 1),
                   ("num_threads=0 (decord's default: auto)", 0))


class _PipelineDataset(torch.utils.data.Dataset):
    """``count`` samples of the test pipeline over ``files``, cycled."""

    def __init__(self, pipeline, files: List[str], count: int):
        self.pipeline = pipeline
        self.files = files
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int):
        path = self.files[index % len(self.files)]
        return self.pipeline(
            dict(filename=path, label=-1, start_index=0,
                 modality='RGB'))['inputs']


def bench_loader_threads(videos: Dict[str, Any], workers: int,
                         steady_videos: int) -> List[Dict]:
    """The K400 test pipeline in ``workers`` DataLoader workers, batch 1,
    with each ``VideoInit`` thread setting: videos/s after the workers'
    first prefetch.

    Args:
        videos (dict): ``files`` to decode.
        workers (int): DataLoader workers (at least 1).
        steady_videos (int): Videos timed.

    Returns:
        list[dict]: One row per setting: ``setting``, ``num_threads``,
        ``workers``, ``videos``, ``videos_per_s``; the first row also
        says what the config's ``VideoInit`` passes.
    """
    from mmengine.config import Config

    from models.apis.preprocess import VideoPipeline
    cfg = Config.fromfile(osp.join(ROOT, 'configs', TEST_CONFIGS['ViT-B/32']))
    init = cfg.test_pipeline[0]
    assert init['type'] == 'VideoInit', init
    # DecordInit's default, which VideoInit inherits, where unset.
    configured = init.get('num_threads', 1)
    workers = max(1, workers)
    skip = 2 * workers + 2  # the workers' head start (prefetch 2 each)
    rows = []
    for name, threads in THREAD_SETTINGS:
        pipeline_cfg = [dict(t) for t in cfg.test_pipeline]
        pipeline_cfg[0]['num_threads'] = threads
        for step in pipeline_cfg:
            if step['type'] == 'VideoDecode':
                step['backend'] = 'cpu'  # decord decodes
        dataset = _PipelineDataset(
            VideoPipeline(pipeline_cfg), videos['files'],
            skip + steady_videos)
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=1, num_workers=workers)
        arrivals = []
        for _ in loader:
            arrivals.append(time.perf_counter())
        del loader
        seconds = arrivals[-1] - arrivals[skip - 1]
        rate = (len(arrivals) - skip) / seconds
        rows.append(
            dict(setting=name, num_threads=threads, workers=workers,
                 videos=len(arrivals) - skip, seconds=seconds,
                 videos_per_s=rate,
                 config_num_threads=configured))
        print(f'  test pipeline in {workers} workers, {name}: '
              f'{rate:.1f} videos/s', flush=True)
    return rows

"""Fill the frame cache before training, with nothing else running.

Left to the first epoch, the DataLoader workers decode each video while
the training step computes beside them: on a small CPU the two share the
cores badly (the quickstart's first epoch took 99 s where a later one
took 38 s; the hook decodes the same videos in 15 to 17 s).
"""
import os
import time
from typing import Optional

from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from models.datasets.frame_cache import fill


@HOOKS.register_module()
class FillFrameCacheHook(Hook):
    """Before the first epoch, decode the training and validation videos
    (of datasets with ``CachedVideoInit``) the frame cache lacks
    (:func:`models.datasets.frame_cache.fill`), each rank its share, with
    ``workers`` processes (default: the training DataLoader's, or the
    usable CPUs for ``num_workers=0``)."""

    def __init__(self, workers: Optional[int] = None) -> None:
        self.workers = workers

    def before_train(self, runner) -> None:
        rank, world_size = get_dist_info()
        workers = self.workers
        if workers is None:
            workers = (runner.train_dataloader.num_workers
                       or len(os.sched_getaffinity(0)))
        loaders = [runner.train_dataloader]
        if runner.val_loop is not None:
            loaders.append(runner.val_loop.dataloader)
        start = time.time()
        decoded = sum(
            fill(loader.dataset, workers, rank, world_size)
            for loader in loaders)
        if decoded:
            runner.logger.info(f'Frame cache: decoded {decoded} videos in '
                               f'{time.time() - start:.0f} s')

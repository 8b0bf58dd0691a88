"""The seeds EpochSeedHook gives each epoch, which make a run killed
mid-way and resumed end with the weights of an uninterrupted one (that
run is tested in test_train_synthetic.py, beside the uninterrupted run it
is compared with)."""
import functools
from types import SimpleNamespace

import numpy as np
import torch

from models.engine.hooks.epoch_seed_hook import EpochSeedHook, epoch_seed


def test_epoch_seed_depends_on_seed_epoch_and_rank():
    seeds = {epoch_seed(s, e, r) for s in (0, 1) for e in (0, 1)
             for r in (0, 1)}
    assert len(seeds) == 8
    assert epoch_seed(3, 2, 1) == epoch_seed(3, 2, 1)


def test_hook_reseeds_generators_and_fresh_workers():
    def init_fn(worker_id, num_workers, rank, seed):
        pass

    loader = SimpleNamespace(
        num_workers=2, persistent_workers=False,
        worker_init_fn=functools.partial(init_fn, num_workers=2, rank=0,
                                         seed=7))
    runner = SimpleNamespace(seed=7, epoch=3, train_dataloader=loader)
    hook = EpochSeedHook()
    hook.before_train_epoch(runner)
    first = (torch.rand(3), np.random.rand(3))
    assert loader.worker_init_fn.keywords['seed'] == epoch_seed(7, 3, 0)
    torch.rand(5)  # what the epoch consumed does not matter
    hook.before_train_epoch(runner)
    assert torch.equal(torch.rand(3), first[0])
    assert np.array_equal(np.random.rand(3), first[1])
    runner.epoch = 4
    hook.before_train_epoch(runner)
    assert loader.worker_init_fn.keywords['seed'] == epoch_seed(7, 4, 0)
    assert not torch.equal(torch.rand(3), first[0])

"""Training that ends with the same weights whether or not it was resumed:
MMEngine seeds once, when the runner starts, and a checkpoint does not hold
the generators' state; ``EpochSeedHook`` reseeds them at each training
epoch's start from (seed, epoch, rank).
"""
import functools

import numpy as np
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import set_random_seed


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The 32-bit seed of one ``epoch`` (from 0) on one ``rank``, from the
    run's ``seed``."""
    sequence = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, epoch, rank])
    return int(sequence.generate_state(1)[0])


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Reseed Python's, NumPy's and torch's generators at each epoch start,
    and DataLoader workers that start afresh each epoch (MMEngine's
    ``worker_init_fn`` seeds them alike every epoch). Exact resumption
    needs such workers or ``num_workers=0``, not persistent workers."""

    priority = 'VERY_HIGH'

    def before_train_epoch(self, runner) -> None:
        """Reseed from the run's seed, the epoch and the rank."""
        # As MMEngine: ranks share the seed unless diff_rank_seed is set;
        # ActionClip.loss relies on that to draw its templates exactly as
        # one process with the whole batch would.
        randomness = getattr(runner, '_randomness_cfg', None) or {}
        rank = get_rank() if randomness.get('diff_rank_seed') else 0
        seed = epoch_seed(runner.seed, runner.epoch, rank)
        set_random_seed(seed)  # Python, NumPy, torch (every device)
        loader = runner.train_dataloader
        init_fn = getattr(loader, 'worker_init_fn', None)
        if (getattr(loader, 'num_workers', 0) > 0
                and not loader.persistent_workers
                and isinstance(init_fn, functools.partial)
                and 'seed' in init_fn.keywords):
            # The next epoch's iterator starts its workers with this.
            loader.worker_init_fn = functools.partial(
                init_fn.func, *init_fn.args,
                **dict(init_fn.keywords, seed=seed))

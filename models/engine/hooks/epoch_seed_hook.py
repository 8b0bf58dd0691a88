"""Training that ends with the same weights whether or not it was resumed.

MMEngine seeds the random number generators once, when the runner starts,
and a checkpoint does not hold their state. A run resumed from epoch k
therefore draws other augmentations and other prompt templates in epoch k+1
than the uninterrupted run did. ``EpochSeedHook`` reseeds them at the start
of every training epoch from (seed, epoch) (and the rank, with
``randomness.diff_rank_seed``), so each epoch's random draws depend on
nothing that happened before it.
"""
import functools

import numpy as np
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import set_random_seed


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The 32-bit seed of one ``epoch`` (from 0) on one ``rank`` (ranks
    draw independently), from the run's ``seed`` (``randomness.seed``, or
    the one MMEngine drew and stored in the checkpoint).
    """
    sequence = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, epoch, rank])
    return int(sequence.generate_state(1)[0])


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Reseed Python's, NumPy's and torch's generators at each epoch start.

    Data workers that start afresh each epoch (``persistent_workers=False``)
    are seeded from the epoch too: MMEngine's ``worker_init_fn`` gives them
    the same seeds every epoch, hence the same augmentations. Exact
    resumption needs such workers, or ``num_workers=0``: persistent workers
    keep drawing from generators seeded when they were first started.
    """

    priority = 'VERY_HIGH'

    def before_train_epoch(self, runner) -> None:
        """Reseed from the run's seed, the epoch and the rank.

        Args:
            runner (Runner): The runner.
        """
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

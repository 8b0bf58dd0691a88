"""Where the time of each iteration of an mmengine loop goes: clock
readings at its start, at the end of the data preprocessor, at the end of
the model step and at its end, with the device's queued work finished at
each reading (so that the figures are the device's, not the launches')."""
import time
from typing import Dict, List

import numpy as np
import torch
from benchmarks.common import synchronize

#: The readings of one iteration, in order.
MARKS = ('start', 'preprocess_end', 'step_end', 'end')


class EnoughIterations(Exception):
    """Raised from a hook to end a loop whose timed part ran past its time
    budget; the iterations before it are reported."""


class IterationClock:
    """Clock readings of each iteration of a test or training loop.

    ``start`` is taken when the loop has the batch from the DataLoader
    (``before_*_iter``): the time since the previous iteration's ``end`` is
    the wait for data. ``preprocess_end`` ends the model's data preprocessor
    (collate, the copy to the device, normalisation and, where the config
    has them, augmentations on the device); ``step_end`` ends the model's
    forward in the test loop, the forward, backward and optimizer step in
    training; ``end`` follows every other hook of the iteration (metric,
    logging, schedulers).

    Args:
        device (torch.device): Where the model runs.
        mode (str): ``'test'`` or ``'train'``.
        skip (int): Leading iterations not timed (warm-up).
        max_seconds (float): After this many seconds of timed iterations
            the loop is ended (:class:`EnoughIterations`), so that a slow
            variant cannot overrun the run's time.
    """

    def __init__(self, device: torch.device, mode: str, skip: int,
                 max_seconds: float):
        assert mode in ('test', 'train'), mode
        self.device = device
        self.mode = mode
        self.skip = skip
        self.max_seconds = max_seconds
        self.cut_short = False
        self.times: Dict[str, List[float]] = {k: [] for k in MARKS}

    def mark(self, name: str) -> None:
        """Record the time of ``name`` once queued device work is done."""
        synchronize(self.device)
        self.times[name].append(time.perf_counter())

    def attach(self, runner) -> None:
        """Register the clock's hooks on ``runner`` and its model."""
        from mmengine.hooks import Hook
        clock = self
        before = f'before_{self.mode}_iter'
        after = f'after_{self.mode}_iter'

        class _First(Hook):
            """Runs before the other hooks: the iteration's start and, in
            training, the end of ``train_step``."""

        class _Last(Hook):
            """Runs after the other hooks: the iteration's end."""

        def start(hook, runner, batch_idx, data_batch=None):
            clock.mark('start')

        def step_end(hook, runner, batch_idx, data_batch=None,
                     outputs=None):
            clock.mark('step_end')

        def end(hook, runner, batch_idx, data_batch=None, outputs=None):
            clock.mark('end')
            clock.check_budget()

        setattr(_First, before, start)
        if self.mode == 'train':
            setattr(_First, after, step_end)
        setattr(_Last, after, end)
        runner.register_hook(_First(), priority='HIGHEST')
        runner.register_hook(_Last(), priority='LOWEST')
        model = runner.model
        self._handles = [
            model.data_preprocessor.register_forward_hook(
                lambda *args: clock.mark('preprocess_end'))
        ]
        if self.mode == 'test':
            # The forward's end; the metric follows in the loop.
            self._handles.append(
                model.register_forward_hook(
                    lambda *args: clock.mark('step_end')))

    def detach(self) -> None:
        """Remove the clock's hooks from the model (the runner's hooks
        are not called outside its loops)."""
        for handle in getattr(self, '_handles', []):
            handle.remove()
        self._handles = []

    def check_budget(self) -> None:
        """End the loop once the timed iterations ran past the budget."""
        ends = self.times['end']
        if len(ends) > self.skip + 1 and (
                ends[-1] - ends[self.skip - 1 if self.skip else 0]
                > self.max_seconds):
            self.cut_short = True
            raise EnoughIterations

    def shares(self) -> Dict[str, float]:
        """Where the timed iterations' time went.

        Returns:
            dict: ``seconds`` of the timed part, ``iters``, ``skipped``, and
            the shares of ``data_wait``, ``preprocess``, ``step`` and
            ``rest`` (they add up to 1).

        Raises:
            RuntimeError: Fewer than two iterations ran, or a reading is
                missing (a hook did not fire).
        """
        ends = self.times['end']
        counts = {k: len(v) for k, v in self.times.items()}
        if len(set(counts.values())) != 1:
            raise RuntimeError(f'iteration clock: readings missing '
                               f'({counts}); a hook of the loop did not '
                               'fire')
        if len(ends) < 2:
            raise RuntimeError(
                f'iteration clock: {len(ends)} iteration(s) ran; at least '
                '2 are needed to time one after the first')
        skip = max(1, min(self.skip, len(ends) - 1))
        t = {k: np.array(v[skip:]) for k, v in self.times.items()}
        end_before = np.array(ends[skip - 1:-1])
        seconds = ends[-1] - ends[skip - 1]
        parts = dict(
            data_wait=(t['start'] - end_before).sum(),
            preprocess=(t['preprocess_end'] - t['start']).sum(),
            step=(t['step_end'] - t['preprocess_end']).sum(),
            rest=(t['end'] - t['step_end']).sum())
        return dict(seconds=float(seconds), iters=len(t['end']),
                    skipped=skip,
                    **{k: float(v / seconds) for k, v in parts.items()})

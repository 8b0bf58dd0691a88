"""Part c: a training step (forward, loss, backward, AdamW) in float32
against bf16 AMP, with peak GPU memory."""
import contextlib
from typing import Dict

import torch
from benchmarks.common import (NUM_SEGS, Budget, autocast, measure,
                               release_memory)


def train_batch(batch: int, resolution: int, num_labels: int,
                device: torch.device) -> Dict:
    """A training batch as the data loader packs it: uint8 frames."""
    from mmaction.structures import ActionDataSample
    generator = torch.Generator().manual_seed(2)
    inputs = [
        torch.randint(0, 256, (NUM_SEGS, 3, resolution, resolution),
                      dtype=torch.uint8, generator=generator).to(device)
        for _ in range(batch)
    ]
    labels = torch.randint(num_labels, (batch, ), generator=generator)
    samples = [ActionDataSample().set_gt_label(int(x)) for x in labels]
    return dict(inputs=inputs, data_samples=samples)


def bench_train(model, arch: str, path: str, amp: bool, resolution: int,
                device: torch.device, budget: Budget) -> Dict:
    """Part c: training samples/s and peak memory of one precision.

    ``model`` is moved to ``device`` for the measurement and back to the
    CPU afterwards, so that the peak counts this model alone. With ``amp``
    the optimizer is the AMP configs' fused AdamW.
    """
    from mmengine.optim import AmpOptimWrapper, OptimWrapper
    model.to(device).train()
    # The training configs' optimizer.
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=5e-6, betas=(0.9, 0.98), eps=1e-8,
        weight_decay=0.2, fused=amp or None)
    context = contextlib.nullcontext()
    if amp and device.type == 'cuda':
        wrapper = AmpOptimWrapper(optimizer=optimizer, dtype='bfloat16')
        how = "AmpOptimWrapper(dtype='bfloat16')"
    else:
        wrapper = OptimWrapper(optimizer=optimizer)
        how = 'OptimWrapper'
        if amp:  # AmpOptimWrapper needs a GPU
            context = autocast(device, 'bfloat16')
            how += ' in torch.autocast(cpu, bfloat16)'
    data = train_batch(budget.train_batch, resolution,
                       model.prompt_bank.num_labels, device)
    losses = []

    def step():
        with context:
            log = model.train_step(data, wrapper)
        losses.append(float(log['loss'].detach()))

    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    timing = measure(step, device, budget.train_warmup, budget.train_iters,
                     budget.train_iters)
    peak = (torch.cuda.max_memory_allocated(device) /
            2**30 if device.type == 'cuda' else None)
    rate = budget.train_batch / timing['seconds_per_iter']
    model.eval().cpu()
    release_memory(device)
    print(f'  train {arch} batch {budget.train_batch} {path}: {rate:.1f} '
          'samples/s', flush=True)
    return dict(
        arch=arch,
        batch=budget.train_batch,
        path=path,
        optim_wrapper=how,
        samples_per_s=rate,
        peak_memory_gib=peak,
        last_loss=losses[-1],
        **timing)

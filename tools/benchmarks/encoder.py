"""Part b: the video encoder alone, original CLIP modules against the
fast ones, float32 against bf16 autocast."""
from typing import Any, Dict, List

import torch
from benchmarks.common import NUM_SEGS, Budget, autocast, measure

#: (path, model, autocast dtype); "fast" is fast attention and the patch
#: embedding as a matrix product, "original" CLIP's modules.
ENCODER_PATHS = (
    ('fp32, original', 'naive', None),
    ('fp32, fast', 'eager', None),
    ('bf16, original', 'naive', 'bfloat16'),
    ('bf16, fast', 'eager', 'bfloat16'),
    ('bf16, fast + compile', 'compiled', 'bfloat16'),
)


def bench_encoder(models: Dict[str, Any], arch: str, resolution: int,
                  device: torch.device, budget: Budget) -> List[Dict]:
    """Part b: video-encoder videos/s (frames to video features)."""
    batch = budget.encoder_batch
    inputs = torch.randn(batch, NUM_SEGS, 3, resolution, resolution,
                         generator=torch.Generator().manual_seed(1)).to(
                             device)
    rows = []
    for path, key, dtype_name in ENCODER_PATHS:
        if key not in models:  # compiled: only with --compile
            continue
        model = models[key]

        def step(model=model, dtype_name=dtype_name):
            with torch.no_grad(), autocast(device, dtype_name):
                return model.encode_video(inputs)

        timing = measure(step, device, budget.warmup, budget.min_iters,
                         budget.max_iters, budget.min_seconds)
        rate = batch / timing['seconds_per_iter']
        rows.append(
            dict(arch=arch, batch=batch, path=path, videos_per_s=rate,
                 **timing))
        print(f'  encoder {arch} batch {batch} {path}: {rate:.1f} videos/s',
              flush=True)
    return rows

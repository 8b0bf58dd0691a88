"""Part a: predict with the Kinetics-400 labels x 16 templates against the
public MMAction2 plugin's naive path; and the text cache fill."""
import time
from typing import Any, Dict, List

import torch
from benchmarks.common import NUM_SEGS, Budget, autocast, measure, synchronize


def naive_predict(model, inputs, tokens, num_templates: int):
    """Predict as the public MMAction2 plugin does: every (template, label)
    prompt through the text encoder at full length on every batch, and the
    softmax over labels per template and view averaged.

    Args:
        model (ActionClip): Built with ``fast_attention=False``
            speedups.
        inputs (torch.Tensor): ``(N, V * T, C, H, W)`` normalised frames.
        tokens (torch.Tensor): ``(P * L, 77)`` prompt tokens on the device,
            template-major.
        num_templates (int): P.

    Returns:
        torch.Tensor: ``(N, L)`` probabilities.
    """
    from models.text.text_features import l2_normalize
    video = l2_normalize(model.encode_video(inputs))
    text = l2_normalize(model.clip.encode_text(tokens))
    num_views = len(video) // len(inputs)
    similarity = (100.0 * video @ text.T).view(
        len(inputs), num_views * num_templates, -1)
    return similarity.softmax(dim=2).mean(dim=1)


#: (path, model, autocast dtype, what it is)
PREDICT_PATHS = (
    ('naive fp32', 'naive', None,
     'MMAction2 projects/actionclip: all prompts at 77 tokens every batch'),
    ('cached fp32', 'eager', 'float32', 'exact; the default'),
    ('cached fp32 + CUDA graphs', 'graphs', 'float32', 'exact'),
    ('cached bf16', 'eager', 'bfloat16', 'bf16 autocast'),
    ('cached bf16 + CUDA graphs', 'graphs', 'bfloat16', 'bf16 autocast'),
    ('cached fp16 + CUDA graphs', 'graphs', 'float16',
     'fp16 autocast, as test_cfg.fp16=True'),
    ('cached bf16 + compile reduce-overhead', 'reduce_overhead', 'bfloat16',
     "bf16 autocast, torch.compile's own CUDA graphs"),
    ('cached bf16 + compile + CUDA graphs', 'compiled', 'bfloat16',
     'bf16 autocast, torch.compile'),
)


def bench_predict(models: Dict[str, Any], arch: str, resolution: int,
                  device: torch.device, budget: Budget) -> List[Dict]:
    """Part a: predict videos/s per path and batch size."""
    rows = []
    naive = models['naive']
    bank = naive.prompt_bank
    tokens = bank.tokens.flatten(0, 1).to(device)
    for batch in budget.predict_batches:
        generator = torch.Generator().manual_seed(batch)
        inputs = torch.randn(batch, NUM_SEGS, 3, resolution, resolution,
                             generator=generator).to(device)
        reference = None
        naive_rate = None
        for path, key, dtype_name, note in PREDICT_PATHS:
            if key not in models:  # CUDA-only or --compile paths
                continue
            model = models[key]
            if key == 'naive':
                def run(model=model):
                    return naive_predict(model, inputs, tokens,
                                         bank.num_templates)
                counts = (budget.naive_warmup, budget.naive_iters,
                          budget.naive_iters, 0.0)
            else:
                def run(model=model):
                    return model.predict_scores(inputs)
                counts = (budget.warmup, budget.min_iters, budget.max_iters,
                          budget.min_seconds)

            def step(run=run, dtype_name=dtype_name):
                with torch.no_grad(), autocast(device, dtype_name):
                    return run().float().cpu()

            try:
                scores = step()
                timing = measure(step, device, *counts)
            except Exception as error:
                if key not in ('compiled', 'reduce_overhead'):
                    raise
                # torch.compile is optional: its failure is reported, and
                # the other paths are still measured.
                models.pop(key)
                rows.append(dict(arch=arch, batch=batch, path=path,
                                 note=f'failed: {error!r}'[:300]))
                print(f'  predict {arch} {path} failed: {error!r}',
                      flush=True)
                continue
            if reference is None:
                reference = scores
            rate = batch / timing['seconds_per_iter']
            naive_rate = naive_rate or rate
            rows.append(
                dict(
                    arch=arch,
                    batch=batch,
                    path=path,
                    note=note,
                    videos_per_s=rate,
                    speedup_vs_naive=rate / naive_rate,
                    max_abs_prob_diff_vs_naive=float(
                        (scores - reference).abs().max()),
                    **timing))
            print(f'  predict {arch} batch {batch} {path}: {rate:.2f} '
                  'videos/s', flush=True)
    return rows


def bench_text_cache(model, arch: str, device: torch.device) -> List[Dict]:
    """Seconds to encode the label set's prompts once (the cache fill)."""
    rows = []
    bank = model.prompt_bank
    for dtype_name in ('float32', 'bfloat16'):
        bank.clear()
        synchronize(device)
        start = time.perf_counter()
        with torch.no_grad(), autocast(device, dtype_name):
            bank.features(model.clip)
        synchronize(device)
        rows.append(
            dict(
                arch=arch,
                precision=dtype_name,
                prompts=bank.num_templates * bank.num_labels,
                seconds=time.perf_counter() - start))
    bank.clear()
    return rows

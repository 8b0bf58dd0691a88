"""The model's paths on random weights, timed with ``torch.utils.benchmark``:
predict against the naive path of MMAction2's ``projects/actionclip``, the
text cache fill, the video encoder and the training step."""
import contextlib
import gc
import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch.utils.benchmark import Timer

NUM_SEGS = 8
#: ViT-B's input size with a tiny width and depth: ``--quick`` runs every
#: path on a CPU in seconds.
QUICK_ARCH = dict(embed_dim=64, image_resolution=224, vision_layers=1,
                  vision_width=64, vision_patch_size=32, transformer_width=64,
                  transformer_heads=1, transformer_layers=1)


@dataclass
class Budget:
    """How many inputs each part gets, and how long it is timed."""
    predict_batches: Tuple[int, ...] = (1, 16)
    encoder_batch: int = 64
    train_batch: int = 16
    #: ``blocked_autorange``'s ``min_run_time`` for each timed path.
    min_seconds: float = 1.0
    #: Timed calls of the naive path (about a second each on an H200).
    naive_iters: int = 3
    num_videos: int = 64
    video_seconds: float = 10.0
    #: Labels of Kinetics-400 used (None: all 400).
    num_labels: Optional[int] = None
    #: Seconds each decoding process runs.
    decode_rate_seconds: float = 8.0
    #: Loops: timed iterations at least (the test loop also at least
    #: ``loop_videos`` videos), after ``loop_skip`` warm-up iterations
    #: (None: the workers' head start, ``2 x workers + 2``); cut short
    #: after ``loop_seconds`` of timed iterations.
    loop_iters: int = 20
    loop_skip: Optional[int] = None
    loop_videos: int = 640
    loop_seconds: float = 25.0
    #: Samples a batch in the training loop (the configs' 16 per GPU).
    train_loop_batch: int = 16


FULL = Budget()
QUICK = Budget(predict_batches=(1, 2), encoder_batch=2, train_batch=2,
               min_seconds=0.0, naive_iters=1, num_videos=3,
               video_seconds=2.0, num_labels=40, decode_rate_seconds=0.3,
               loop_iters=1, loop_skip=1, loop_videos=2, loop_seconds=10.0,
               train_loop_batch=2)

#: (path, model, autocast dtype, what it is)
PREDICT_PATHS = (
    ('naive fp32', 'naive', None,
     'MMAction2 projects/actionclip: all prompts at 77 tokens every batch'),
    ('cached fp32', 'eager', None, 'exact; the default'),
    ('cached fp32 + CUDA graphs', 'graphs', None, 'exact'),
    ('cached fp16 + CUDA graphs', 'graphs', 'float16',
     'fp16 autocast, as test_cfg.fp16=True'),
    ('cached bf16 + compile reduce-overhead', 'reduce_overhead', 'bfloat16',
     "bf16 autocast, torch.compile's own CUDA graphs"),
    ('cached bf16 + compile + CUDA graphs', 'compiled', 'bfloat16',
     'bf16 autocast, torch.compile'),
)
#: (path, model, autocast dtype); "fast": fast attention and the patch
#: embedding as a matrix product, "original": CLIP's modules.
ENCODER_PATHS = (
    ('fp32, original', 'naive', None),
    ('fp32, fast', 'eager', None),
    ('bf16, original', 'naive', 'bfloat16'),
    ('bf16, fast', 'eager', 'bfloat16'),
    ('bf16, fast + compile', 'compiled', 'bfloat16'),
)


def release_memory(device: torch.device) -> None:
    """Free what deleted models held: the next peak is the next model's."""
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()


def autocast(device: torch.device, dtype: Optional[str]):
    """``torch.autocast`` to the dtype named ``dtype``; off for None."""
    return torch.autocast(device.type, getattr(torch, dtype or 'bfloat16'),
                          enabled=dtype is not None)


def measure(step: Callable[[], Any], min_seconds: float,
            number: Optional[int] = None, warmup: int = 1) -> Dict:
    """Time ``step`` with ``torch.utils.benchmark.Timer`` after ``warmup``
    calls: ``number`` calls (one where ``min_seconds`` is 0), else
    ``blocked_autorange(min_run_time=min_seconds)`` (the timer waits for
    CUDA's queued work); returns ``iters`` and ``seconds_per_iter``."""
    for _ in range(warmup):
        step()
    timer = Timer('step()', globals=dict(step=step),
                  num_threads=torch.get_num_threads())
    number = number or (None if min_seconds > 0 else 1)
    result = (timer.timeit(number) if number else
              timer.blocked_autorange(min_run_time=min_seconds))
    return dict(iters=len(result.times) * result.number_per_run,
                seconds_per_iter=result.mean)


def build_model(clip_arch, labels: List[str], state: Optional[Dict] = None,
                **speedups):
    """An ActionClip on the CPU, with ``state``'s weights if given."""
    from models.recognizers.actionclip import ActionClip
    model = ActionClip(clip_arch, NUM_SEGS, labels_or_label_file=labels,
                       to_float32=True, speedups=speedups)
    if state is not None:
        model.load_state_dict(state)
    return model


def build_models(clip_arch, labels: List[str], device: torch.device,
                 compile_model: bool) -> Dict[str, Any]:
    """The models measured, with the same random weights: ``naive``
    (CLIP's modules), ``eager`` (fast attention), on CUDA ``graphs``, and
    with ``compile_model`` ``compiled`` and ``reduce_overhead``."""
    torch.manual_seed(0)
    naive = build_model(clip_arch, labels, fast_attention=False,
                        patch_embedding=False)
    options: Dict[str, Dict] = dict(eager={})
    if device.type == 'cuda':
        options['graphs'] = dict(cuda_graphs=True)
        if compile_model:
            options.update(compiled=dict(cuda_graphs=True, compile=True),
                           reduce_overhead=dict(compile='reduce-overhead'))
    models = dict(naive=naive, **{
        key: build_model(clip_arch, labels, naive.state_dict(), **speedups)
        for key, speedups in options.items()})
    for model in models.values():
        model.to(device).eval()
    return models


def naive_predict(model, inputs, tokens, num_templates: int):
    """Predict as MMAction2's ``projects/actionclip`` does: every prompt
    (``tokens``: ``(P * L, 77)``, template-major; P ``num_templates``)
    through the text encoder on every batch, the softmax over labels per
    template and view averaged; returns ``(N, L)`` probabilities of
    ``inputs`` ``(N, V * T, C, H, W)``."""
    from models.text.text_features import l2_normalize
    video = l2_normalize(model.encode_video(inputs))
    text = l2_normalize(model.clip.encode_text(tokens))
    num_views = len(video) // len(inputs)
    similarity = (100.0 * video @ text.T).view(
        len(inputs), num_views * num_templates, -1)
    return similarity.softmax(dim=2).mean(dim=1)


def frames(batch: int, resolution: int, device: torch.device, seed: int):
    """Random normalised frames of ``batch`` videos."""
    return torch.randn(batch, NUM_SEGS, 3, resolution, resolution,
                       generator=torch.Generator().manual_seed(seed)).to(
                           device)


def bench_predict(models: Dict[str, Any], arch: str, resolution: int,
                  device: torch.device, budget: Budget) -> List[Dict]:
    """Predict videos/s per path and batch, with each path's largest
    probability difference from the naive one."""
    rows = []
    bank = models['naive'].prompt_bank
    tokens = bank.tokens.flatten(0, 1).to(device)
    for batch in budget.predict_batches:
        inputs = frames(batch, resolution, device, batch)
        reference = naive_rate = None
        for path, key, dtype, note in PREDICT_PATHS:
            if key not in models:  # CUDA-only or --compile paths
                continue
            model = models[key]

            def step(model=model, key=key, dtype=dtype):
                with torch.no_grad(), autocast(device, dtype):
                    scores = (naive_predict(model, inputs, tokens,
                                            bank.num_templates)
                              if key == 'naive' else
                              model.predict_scores(inputs))
                return scores.float().cpu()  # as a real run reads them

            try:
                scores = step()  # the warm-up
                timing = measure(step, budget.min_seconds, warmup=0,
                                 number=budget.naive_iters
                                 if key == 'naive' else None)
            except Exception as error:
                if key not in ('compiled', 'reduce_overhead'):
                    raise
                # torch.compile is optional: its failure is reported.
                models.pop(key)
                rows.append(dict(arch=arch, batch=batch, path=path,
                                 note=f'failed: {error!r}'[:300]))
                continue
            reference = scores if reference is None else reference
            rate = batch / timing['seconds_per_iter']
            naive_rate = naive_rate or rate
            rows.append(dict(
                arch=arch, batch=batch, path=path, note=note,
                videos_per_s=rate, speedup_vs_naive=rate / naive_rate,
                max_abs_prob_diff_vs_naive=float(
                    (scores - reference).abs().max()), **timing))
            print(f'  predict {arch} batch {batch} {path}: {rate:.2f} '
                  'videos/s', flush=True)
    return rows


def bench_text_cache(model, arch: str, device: torch.device) -> List[Dict]:
    """Seconds to encode the label set's prompts once (the cache fill)."""
    bank = model.prompt_bank
    rows = []
    for dtype in ('float32', 'bfloat16'):
        def fill():
            bank.clear()
            with torch.no_grad(), autocast(device, dtype):
                bank.features(model.clip)

        seconds = measure(fill, 0, warmup=0)['seconds_per_iter']
        rows.append(dict(arch=arch, precision=dtype, seconds=seconds,
                         prompts=bank.num_templates * bank.num_labels))
    bank.clear()
    return rows


def bench_encoder(models: Dict[str, Any], arch: str, resolution: int,
                  device: torch.device, budget: Budget) -> List[Dict]:
    """Video-encoder videos/s (frames to video features) per path."""
    batch = budget.encoder_batch
    inputs = frames(batch, resolution, device, 1)
    rows = []
    for path, key, dtype in ENCODER_PATHS:
        if key not in models:  # compiled: only with --compile
            continue

        def step(model=models[key], dtype=dtype):
            with torch.no_grad(), autocast(device, dtype):
                return model.encode_video(inputs)

        timing = measure(step, budget.min_seconds)
        rate = batch / timing['seconds_per_iter']
        rows.append(dict(arch=arch, batch=batch, path=path,
                         videos_per_s=rate, **timing))
        print(f'  encoder {arch} batch {batch} {path}: {rate:.1f} videos/s',
              flush=True)
    return rows


def bench_train(model, arch: str, path: str, amp: bool, resolution: int,
                device: torch.device, budget: Budget) -> Dict:
    """Training samples/s (forward, loss, backward, the configs' AdamW)
    and peak GPU memory; with ``amp`` bf16 ``AmpOptimWrapper`` and fused
    AdamW (bf16 autocast on a CPU). ``model`` returns to the CPU after."""
    from mmaction.structures import ActionDataSample
    from mmengine.optim import AmpOptimWrapper, OptimWrapper
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-6,
                                  betas=(0.9, 0.98), eps=1e-8,
                                  weight_decay=0.2, fused=amp or None)
    context = autocast(device, None)
    if amp and device.type == 'cuda':
        wrapper = AmpOptimWrapper(optimizer=optimizer, dtype='bfloat16')
        how = "AmpOptimWrapper(dtype='bfloat16')"
    else:
        wrapper, how = OptimWrapper(optimizer=optimizer), 'OptimWrapper'
        if amp:  # AmpOptimWrapper needs a GPU
            context = autocast(device, 'bfloat16')
            how += ' in torch.autocast(cpu, bfloat16)'
    generator = torch.Generator().manual_seed(2)
    batch, bank = budget.train_batch, model.prompt_bank
    data = dict(
        inputs=[torch.randint(0, 256, (NUM_SEGS, 3, resolution, resolution),
                              dtype=torch.uint8,
                              generator=generator).to(device)
                for _ in range(batch)],
        data_samples=[ActionDataSample().set_gt_label(i % bank.num_labels)
                      for i in range(batch)])
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    timing = measure_train_step(model, data, wrapper, budget.min_seconds,
                                warmup=2, context=context)
    peak = (torch.cuda.max_memory_allocated(device) / 2**30
            if device.type == 'cuda' else None)
    model.eval().cpu()
    release_memory(device)
    rate = batch / timing['seconds_per_iter']
    print(f'  train {arch} batch {batch} {path}: {rate:.1f} samples/s',
          flush=True)
    return dict(arch=arch, batch=batch, path=path, optim_wrapper=how,
                samples_per_s=rate, peak_memory_gib=peak, **timing)


def measure_train_step(model, data: Dict, wrapper, min_seconds: float,
                       warmup: int, context=contextlib.nullcontext()
                       ) -> Dict:
    """:func:`measure` of ``model.train_step(data, wrapper)`` in
    ``context``, with the ``last_loss``; a RuntimeError when a loss is not
    finite (the figures would be of a broken step)."""
    losses = []

    def step():
        with context:
            losses.append(float(model.train_step(data, wrapper)['loss']))

    timing = measure(step, min_seconds, warmup=warmup)
    if not all(map(math.isfinite, losses)):
        raise RuntimeError(f'the training loss is not finite ({losses})')
    return dict(timing, last_loss=losses[-1])

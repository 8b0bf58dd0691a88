"""One benchmark of ActionCLIP's test and training paths against the naive
path, on random weights (nothing is downloaded).

For ViT-B/32 and ViT-B/16 with 8 frames it measures:

a. predict with the Kinetics-400 labels x 16 templates, batch 1 and 16:
   the public MMAction2 plugin's path (every prompt encoded at 77 tokens on
   every batch, float32, ``nn.MultiheadAttention``) against this project's
   (text features cached, fast attention, bf16 or fp16 autocast, CUDA
   graphs), with each path's largest probability difference from the
   naive one;
b. the video encoder alone at batch 64, float32 against bf16 autocast;
c. a training step at batch 16 (forward, loss, backward, AdamW step) in
   float32 against bf16 AMP (``AmpOptimWrapper``), with peak GPU memory;
d. the test pipeline's decoding throughput in one process, on generated
   Kinetics-like videos (10 s, 340x256, 25 fps);
e. the test loop of the Kinetics-400 test config (the code ``mim test``
   runs) on those videos with the config's data workers: videos/s and
   whether decoding or the model bounds it.

Every iteration returns its result to the host (scores, the loss), as a
real run does; GPU work is synchronised before each clock reading. Writes
``benchmark.json`` and ``benchmark.md`` to ``--out-dir``.

Examples (from the project root)::

    python tools/benchmark.py --out-dir work_dirs/benchmark
    python tools/benchmark.py --quick --out-dir /tmp/bench  # CPU smoke run
"""
import argparse
import contextlib
import gc
import json
import os
import os.path as osp
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
for _path in (ROOT, osp.join(ROOT, 'tools')):
    if _path not in sys.path:
        sys.path.insert(0, _path)

LABEL_FILE = osp.join(ROOT, 'configs', 'label_map_k400.txt')
TEST_CONFIGS = {
    'ViT-B/32': 'actionclip_vit-base-p32-res224-clip-pre_1x1x8_k400-rgb.py',
    'ViT-B/16': 'actionclip_vit-base-p16-res224-clip-pre_1x1x8_k400-rgb.py',
}
NUM_SEGS = 8
#: ViT-B's input size with a tiny width and depth: ``--quick`` runs every
#: path of the full benchmark on a CPU in seconds.
QUICK_ARCH = dict(
    embed_dim=64,
    image_resolution=224,
    vision_layers=1,
    vision_width=64,
    vision_patch_size=32,
    transformer_width=64,
    transformer_heads=1,
    transformer_layers=1)


@dataclass
class Budget:
    """How many inputs and iterations each part gets."""
    predict_batches: Tuple[int, ...] = (1, 16)
    encoder_batch: int = 64
    train_batch: int = 16
    warmup: int = 3
    min_iters: int = 5
    max_iters: int = 300
    min_seconds: float = 1.0
    # The naive path takes about a second per batch on an H100/H200.
    naive_warmup: int = 1
    naive_iters: int = 3
    train_warmup: int = 2
    train_iters: int = 10
    num_videos: int = 64
    video_seconds: float = 10.0
    decode_videos: int = 16
    #: Labels of Kinetics-400 used (None: all 400).
    num_labels: Optional[int] = None


FULL = Budget()
QUICK = Budget(
    predict_batches=(1, 2),
    encoder_batch=2,
    train_batch=2,
    warmup=1,
    min_iters=1,
    max_iters=2,
    min_seconds=0.0,
    naive_warmup=0,
    naive_iters=1,
    train_warmup=1,
    train_iters=1,
    num_videos=3,
    video_seconds=2.0,
    decode_videos=2,
    num_labels=40)


def release_memory(device: torch.device) -> None:
    """Free what deleted models held, so that the next peak is their own."""
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that clocks read finished
    work."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def measure(step: Callable[[], Any], device: torch.device, warmup: int,
            min_iters: int, max_iters: int,
            min_seconds: float = 0.0) -> Dict[str, float]:
    """Time ``step`` after ``warmup`` untimed calls.

    Runs at least ``min_iters`` and at most ``max_iters`` timed calls,
    stopping after ``min_seconds`` once ``min_iters`` are done.

    Args:
        step (callable): One iteration.
        device (torch.device): Where the work runs.
        warmup (int): Untimed calls first.
        min_iters (int): Fewest timed calls.
        max_iters (int): Most timed calls.
        min_seconds (float): Keep timing until this much time has passed.

    Returns:
        dict: ``iters``, ``seconds`` and ``seconds_per_iter``.
    """
    for _ in range(warmup):
        step()
    synchronize(device)
    start = time.perf_counter()
    iters = 0
    while iters < min_iters or (iters < max_iters and
                                time.perf_counter() - start < min_seconds):
        step()
        iters += 1
    synchronize(device)
    seconds = time.perf_counter() - start
    return dict(iters=iters, seconds=seconds, seconds_per_iter=seconds / iters)


def autocast(device: torch.device, dtype_name: Optional[str]):
    """``torch.autocast`` on ``device`` to the dtype named ``dtype_name``
    (``'bfloat16'``, ``'float16'``); none for None or ``'float32'``."""
    if dtype_name in (None, 'float32'):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=getattr(torch, dtype_name))


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


def build_model(clip_arch, label_file: str, state: Optional[Dict] = None,
                **speedups):
    """An ActionClip for the benchmark, with ``state``'s weights if given.

    Args:
        clip_arch (str | dict): The CLIP architecture.
        label_file (str): The labels to score.
        state (dict, optional): Weights to load.
        **speedups: ``ActionClip``'s speed options to change.

    Returns:
        ActionClip: The model, on the CPU.
    """
    from models.recognizers.actionclip import ActionClip
    model = ActionClip(
        clip_arch, NUM_SEGS, labels_or_label_file=label_file,
        to_float32=True, speedups=speedups)
    if state is not None:
        model.load_state_dict(state)
    return model


def build_models(clip_arch, label_file: str, device: torch.device,
                 compile_model: bool) -> Dict[str, Any]:
    """The models every part shares, with the same random weights.

    Returns:
        dict: ``naive`` (the original attention), ``eager`` (fast
        attention), ``graphs`` (fast attention and CUDA graphs, CUDA only)
        and, with ``compile_model``, ``compiled`` (also ``torch.compile``).
    """
    torch.manual_seed(0)
    naive = build_model(
        clip_arch, label_file, fast_attention=False, patch_embedding=False)
    state = naive.state_dict()

    def build(**speedups):
        return build_model(clip_arch, label_file, state, **speedups)

    models = dict(naive=naive, eager=build())
    if device.type == 'cuda':
        models['graphs'] = build(cuda_graphs=True)
        if compile_model:
            models['compiled'] = build(cuda_graphs=True, compile=True)
    for model in models.values():
        model.to(device).eval()
    return models


#: (path, model, autocast dtype, what it is)
PREDICT_PATHS = (
    ('naive fp32', 'naive', None,
     'public plugin: all prompts at 77 tokens every batch'),
    ('cached fp32', 'eager', 'float32', 'exact; the default'),
    ('cached fp32 + CUDA graphs', 'graphs', 'float32', 'exact'),
    ('cached bf16', 'eager', 'bfloat16', 'bf16 autocast'),
    ('cached bf16 + CUDA graphs', 'graphs', 'bfloat16', 'bf16 autocast'),
    ('cached fp16 + CUDA graphs', 'graphs', 'float16',
     'fp16 autocast, as test_cfg.fp16=True'),
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
                if key != 'compiled':
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


def write_kinetics_like(path: str, seconds: float, fps: int,
                        size: Tuple[int, int], seed: int,
                        fourcc: str) -> str:
    """Write a video shaped like a Kinetics-400 file after the usual
    resizing to 340x256: a panning textured scene, moving shapes and
    sensor noise, so that the encoder has real motion and detail to code.

    Returns:
        str: ``path``.
    """
    import cv2
    rng = np.random.default_rng(seed)
    width, height = size
    scene = cv2.resize(
        rng.integers(0, 256, (height // 8, width // 4, 3), dtype=np.uint8),
        (2 * width, height), interpolation=cv2.INTER_CUBIC)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), fps,
                             (width, height))
    if not writer.isOpened():
        raise RuntimeError(f'Cannot write {path}')
    shapes = [(rng.uniform(0, width), rng.uniform(0, height),
               rng.uniform(-4, 4), rng.uniform(-3, 3),
               tuple(int(c) for c in rng.integers(0, 256, 3)))
              for _ in range(4)]
    for i in range(int(seconds * fps)):
        offset = int(i * width / (seconds * fps))  # pans half the scene
        frame = scene[:, offset:offset + width].copy()
        for x, y, dx, dy, color in shapes:
            center = (int(x + dx * i) % width, int(y + dy * i) % height)
            cv2.circle(frame, center, 20 + (i % 25), color, -1, cv2.LINE_AA)
        noise = rng.integers(-8, 9, frame.shape)
        writer.write(np.clip(frame + noise, 0, 255).astype(np.uint8))
    writer.release()
    return path


def _write_job(args: Tuple) -> str:
    return write_kinetics_like(*args)


def make_videos(out_dir: str, count: int, seconds: float,
                num_labels: int) -> Dict[str, Any]:
    """Generate ``count`` videos and a test list (``<file> <label>``).

    Returns:
        dict: ``dir``, ``ann_file``, ``files`` and the video format.
    """
    from generate_videos import _fourcc
    fourcc = _fourcc()
    os.makedirs(out_dir, exist_ok=True)
    size, fps = (340, 256), 25
    jobs = [(osp.join(out_dir, f'video_{i:03d}.mp4'), seconds, fps, size, i,
             fourcc) for i in range(count)]
    with ProcessPoolExecutor(max_workers=min(count, os.cpu_count()
                                             or 1)) as pool:
        files = list(pool.map(_write_job, jobs))
    ann_file = osp.join(out_dir, 'test_list_videos.txt')
    with open(ann_file, 'w') as f:
        for i, path in enumerate(files):
            f.write(f'{osp.basename(path)} {i % num_labels}\n')
    return dict(
        dir=out_dir,
        ann_file=ann_file,
        files=files,
        codec=fourcc,
        width=size[0],
        height=size[1],
        fps=fps,
        seconds=seconds,
        mean_file_kib=float(
            np.mean([osp.getsize(p) for p in files]) / 1024))


def bench_decode(videos: Dict[str, Any], budget: Budget) -> Dict:
    """Part d: the K400 test pipeline in this process (one worker)."""
    from mmaction.registry import TRANSFORMS
    from mmengine.config import Config
    from mmengine.dataset import Compose
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', TEST_CONFIGS['ViT-B/32']))
    pipeline = Compose([TRANSFORMS.build(t) for t in cfg.test_pipeline])
    files = videos['files'][:max(2, budget.decode_videos)]

    def load(path):
        return pipeline(
            dict(filename=path, label=-1, start_index=0, modality='RGB'))

    shape = tuple(load(files[0])['inputs'].shape)  # warm-up
    start = time.perf_counter()
    for path in files[1:]:
        load(path)
    seconds = time.perf_counter() - start
    count = len(files) - 1
    rate = count / seconds
    print(f'  decode: {rate:.1f} videos/s per worker', flush=True)
    return dict(
        pipeline=[t['type'] for t in cfg.test_pipeline],
        output_shape=list(shape),
        videos=count,
        seconds=seconds,
        ms_per_video=1000 * seconds / count,
        videos_per_s_per_worker=rate,
        codec=videos['codec'],
        width=videos['width'],
        height=videos['height'],
        fps=videos['fps'],
        video_seconds=videos['seconds'],
        mean_file_kib=videos['mean_file_kib'])


#: Test-loop variants: (name, config overrides).
TEST_LOOP_VARIANTS = (
    ('config as released', {}),
    ('+ test_cfg.fp16, model.speedups.cuda_graphs', {
        'test_cfg.fp16': True,
        'model.speedups.cuda_graphs': True
    }),
)


class IterationClock:
    """Clock readings of each test iteration: its start and end, and the
    model's forward inside it (device work finished at each reading)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.times: Dict[str, List[float]] = dict(
            start=[], forward_start=[], forward_end=[], end=[])

    def mark(self, name: str) -> None:
        """Record the time of ``name`` once queued device work is done."""
        synchronize(self.device)
        self.times[name].append(time.perf_counter())

    def hook(self):
        """An mmengine hook that marks iteration starts and ends."""
        from mmengine.hooks import Hook
        clock = self

        class _Hook(Hook):

            def before_test_iter(self, runner, batch_idx, data_batch=None):
                clock.mark('start')

            def after_test_iter(self, runner, batch_idx, data_batch=None,
                                outputs=None):
                clock.mark('end')

        return _Hook()

    def shares(self, skip: int) -> Dict[str, float]:
        """Where the steady iterations' time went.

        Args:
            skip (int): Leading iterations left out (worker start-up, the
                text cache fill, CUDA graph captures).

        Returns:
            dict: ``seconds`` of the steady part, ``iters``, and the
            shares of ``data_wait`` (waiting for the loader), ``preprocess``
            (collate, to device, normalise), ``forward`` (predict) and
            ``rest`` (metric, hooks).
        """
        t = {k: np.array(v[skip:]) for k, v in self.times.items()}
        end_before = np.array(self.times['end'][skip - 1:-1])
        seconds = self.times['end'][-1] - self.times['end'][skip - 1]
        parts = dict(
            data_wait=(t['start'] - end_before).sum(),
            preprocess=(t['forward_start'] - t['start']).sum(),
            forward=(t['forward_end'] - t['forward_start']).sum(),
            rest=(t['end'] - t['forward_end']).sum())
        return dict(seconds=seconds, iters=len(t['end']),
                    **{k: float(v / seconds) for k, v in parts.items()})


def bench_test_loop(arch: str, clip_arch, label_file: str,
                    videos: Dict[str, Any], work_dir: str,
                    decode: Optional[Dict], variant: str,
                    overrides: Dict[str, Any],
                    device: torch.device) -> Dict:
    """Part e: mmengine's test loop of the arch's K400 test config (what
    ``mim test`` runs) over the generated videos, with the config's data
    workers and batch size, the model as configured (plus ``overrides``),
    random weights."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(osp.join(ROOT, 'configs', TEST_CONFIGS['ViT-B/32']))
    cfg.merge_from_dict(overrides)
    cfg.model.clip_arch = clip_arch
    cfg.model.labels_or_label_file = label_file
    cfg.test_dataloader.dataset.ann_file = videos['ann_file']
    cfg.test_dataloader.dataset.data_prefix = dict(video=videos['dir'])
    cfg.work_dir = work_dir
    cfg.log_level = 'WARNING'
    cfg.experiment_name = f'benchmark_{time.time_ns()}'
    runner = Runner.from_cfg(cfg)
    clock = IterationClock(device)
    runner.register_hook(clock.hook(), priority='LOWEST')
    runner.model.register_forward_pre_hook(
        lambda *args: clock.mark('forward_start'))
    runner.model.register_forward_hook(
        lambda *args: clock.mark('forward_end'))
    start = time.perf_counter()
    metrics = runner.test()
    total = time.perf_counter() - start
    workers = cfg.test_dataloader.num_workers
    batch = cfg.test_dataloader.batch_size
    del runner
    gc.collect()
    shares = clock.shares(skip=min(2, len(clock.times['end']) - 1))
    rate = shares['iters'] * batch / shares['seconds']
    row = dict(
        arch=arch,
        variant=variant,
        config=TEST_CONFIGS['ViT-B/32'] + f' (clip_arch={clip_arch!r})',
        overrides=overrides,
        num_workers=workers,
        batch_size=batch,
        videos=len(clock.times['end']) * batch,
        total_seconds=total,
        steady_videos=shares['iters'] * batch,
        videos_per_s=rate,
        **{f'{k}_share': shares[k]
           for k in ('data_wait', 'preprocess', 'forward', 'rest')},
        bound_by='data loading (decoding)'
        if shares['data_wait'] > 0.5 else 'model step',
        metrics={k: float(v)
                 for k, v in (metrics or {}).items()})
    if decode:
        row['decode_limit_videos_per_s'] = (
            workers * decode['videos_per_s_per_worker'])
    print(f"  test loop {arch} {variant}: {rate:.1f} videos/s, bound by "
          f"{row['bound_by']}", flush=True)
    return row


def environment(device: torch.device, quick: bool) -> Dict[str, Any]:
    """Versions and hardware, for the report."""
    info = dict(
        date=time.strftime('%Y-%m-%d %H:%M:%S'),
        quick=quick,
        python=platform.python_version(),
        torch=torch.__version__,
        cuda=torch.version.cuda,
        device=str(device),
        device_name=(torch.cuda.get_device_name(device)
                     if device.type == 'cuda' else platform.processor()
                     or 'cpu'),
        cpu_count=os.cpu_count(),
        float32_matmul_precision=torch.get_float32_matmul_precision(),
        frames=NUM_SEGS,
        weights='random (pretrained=False)')
    return info


def _table(rows: Sequence[Dict], columns: Sequence[Tuple[str, str, str]]
           ) -> List[str]:
    """Markdown table lines: columns are (title, key, format)."""
    lines = ['| ' + ' | '.join(c[0] for c in columns) + ' |',
             '| ' + ' | '.join('---' for _ in columns) + ' |']
    for row in rows:
        cells = []
        for _, key, fmt in columns:
            value = row.get(key)
            cells.append('n/a' if value is None else format(value, fmt))
        lines.append('| ' + ' | '.join(cells) + ' |')
    return lines


def to_markdown(report: Dict[str, Any]) -> str:
    """The report as markdown tables."""
    env = report['environment']
    lines = [
        '# ActionCLIP benchmark', '',
        f"{env['device_name']} ({env['device']}), torch {env['torch']} "
        f"(CUDA {env['cuda']}), Python {env['python']}, {env['date']}; "
        f"{env['frames']} frames, {env['labels']} Kinetics-400 labels x 16 "
        f"templates, {env['weights']}"
        + (', --quick (CPU smoke run: tiny model, not a measurement)'
           if env['quick'] else '') + '. Run time: '
        + ', '.join(f'{k} {v:.0f} s'
                    for k, v in report['part_seconds'].items()) + '.', ''
    ]
    if report.get('predict'):
        lines += ['## a. Predict', ''] + _table(report['predict'], [
            ('arch', 'arch', ''), ('batch', 'batch', 'd'),
            ('path', 'path', ''), ('videos/s', 'videos_per_s', '.2f'),
            ('x naive', 'speedup_vs_naive', '.1f'),
            ('max abs prob diff vs naive', 'max_abs_prob_diff_vs_naive',
             '.1e'), ('iters', 'iters', 'd')
        ]) + ['']
    if report.get('text_cache'):
        lines += ['### Text cache fill (once per label set and weights)',
                  ''] + _table(report['text_cache'], [
                      ('arch', 'arch', ''), ('precision', 'precision', ''),
                      ('prompts', 'prompts', 'd'), ('seconds', 'seconds',
                                                    '.3f')
                  ]) + ['']
    if report.get('encoder'):
        lines += ['## b. Video encoder', ''] + _table(
            report['encoder'], [('arch', 'arch', ''),
                                ('batch', 'batch', 'd'),
                                ('path', 'path', ''),
                                ('videos/s', 'videos_per_s', '.1f'),
                                ('iters', 'iters', 'd')]) + ['']
    if report.get('train'):
        lines += ['## c. Training step (forward, loss, backward, AdamW)',
                  ''] + _table(report['train'], [
                      ('arch', 'arch', ''), ('batch', 'batch', 'd'),
                      ('path', 'path', ''),
                      ('samples/s', 'samples_per_s', '.1f'),
                      ('peak memory (GiB)', 'peak_memory_gib', '.2f'),
                      ('optim wrapper', 'optim_wrapper', ''),
                      ('iters', 'iters', 'd')
                  ]) + ['']
    if report.get('decode'):
        d = report['decode']
        lines += [
            '## d. Test pipeline decoding, one worker', '',
            f"{d['codec']} videos, {d['width']}x{d['height']}, {d['fps']} "
            f"fps, {d['video_seconds']:g} s, {d['mean_file_kib']:.0f} KiB "
            f"on average; pipeline: {' > '.join(d['pipeline'])}.", ''
        ] + _table([d], [('videos', 'videos', 'd'),
                         ('ms per video', 'ms_per_video', '.1f'),
                         ('videos/s per worker', 'videos_per_s_per_worker',
                          '.1f')]) + ['']
    if report.get('test_loop'):
        lines += ['## e. Test loop of the K400 test config (mim test)',
                  ''] + _table(report['test_loop'], [
                      ('arch', 'arch', ''), ('model', 'variant', ''),
                      ('workers', 'num_workers', 'd'),
                      ('videos', 'videos', 'd'),
                      ('videos/s', 'videos_per_s', '.1f'),
                      ('decode limit (workers x d)',
                       'decode_limit_videos_per_s', '.1f'),
                      ('data wait', 'data_wait_share', '.0%'),
                      ('preprocess', 'preprocess_share', '.0%'),
                      ('forward', 'forward_share', '.0%'),
                      ('metric, hooks', 'rest_share', '.0%'),
                      ('bound by', 'bound_by', '')
                  ]) + [
                      '',
                      'Shares of the steady iterations\' time (the first '
                      'two left out); "decode limit" is the config\'s '
                      'workers times part d\'s rate.', ''
                  ]
    if report.get('skipped'):
        lines += ['Not measured: ' + '; '.join(report['skipped']) + '.', '']
    return '\n'.join(lines)


PARTS = ('predict', 'encoder', 'train', 'decode', 'test_loop')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out-dir', default='work_dirs/benchmark',
                        help='where benchmark.json and benchmark.md go')
    parser.add_argument('--quick', action='store_true',
                        help='tiny model and iterations: a smoke run of '
                        'every path (on a CPU in well under a minute)')
    parser.add_argument('--archs', nargs='+', default=list(TEST_CONFIGS),
                        choices=list(TEST_CONFIGS))
    parser.add_argument('--skip', nargs='*', default=[], choices=PARTS,
                        help='parts to leave out')
    parser.add_argument('--compile', action='store_true',
                        help='also measure predict, the encoder and the '
                        'training step with torch.compile (compiling takes '
                        'minutes)')
    parser.add_argument('--device', default=None,
                        help='default: cuda when available, else cpu')
    parser.add_argument('--videos-dir', default=None,
                        help='where to generate the videos (default: a '
                        'temporary directory)')
    return parser.parse_args(argv)


def model_parts(report: Dict[str, Any], archs: List[Tuple[str, Any]],
                label_file: str, device: torch.device, budget: Budget,
                args: argparse.Namespace) -> None:
    """Parts a, b and c for each architecture, into ``report``."""
    parts = [p for p in ('predict', 'encoder', 'train') if p not in args.skip]
    for part in parts:
        report[part] = []
    if 'predict' in parts:
        report['text_cache'] = []
    for arch, clip_arch in archs if parts else []:
        start = time.perf_counter()
        print(f'{arch}: building models', flush=True)
        built = build_models(clip_arch, label_file, device, args.compile)
        resolution = built['naive'].clip.visual.input_resolution
        if 'predict' in parts:
            report['text_cache'] += bench_text_cache(built['eager'], arch,
                                                     device)
            report['predict'] += bench_predict(built, arch, resolution,
                                               device, budget)
        if 'encoder' in parts:
            report['encoder'] += bench_encoder(built, arch, resolution,
                                               device, budget)
        if 'train' in parts:
            for key in ('graphs', 'compiled'):
                built.pop(key, None)
            for model in built.values():
                model.cpu()
            release_memory(device)
            report['train'].append(
                bench_train(built['naive'], arch,
                            'fp32, original', False, resolution,
                            device, budget))
            report['train'].append(
                bench_train(built['eager'], arch,
                            'bf16 AMP, fast, fused AdamW', True, resolution,
                            device, budget))
            if args.compile and device.type == 'cuda':
                # Launches bound the ViT-B/32 step: replay the encoder
                # from CUDA graphs, forward and backward.
                compiled = build_model(
                    clip_arch, label_file, built['eager'].state_dict(),
                    compile=dict(mode='reduce-overhead'))
                report['train'].append(
                    bench_train(compiled, arch,
                                'bf16 AMP, fast, fused AdamW, compile '
                                '(reduce-overhead)', True, resolution,
                                device, budget))
                del compiled
        del built
        release_memory(device)
        report['part_seconds'][arch] = time.perf_counter() - start


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark and write its report.

    Args:
        argv (list[str], optional): Arguments; default ``sys.argv[1:]``.

    Returns:
        int: The exit status.
    """
    args = parse_args(argv)
    budget = QUICK if args.quick else FULL
    os.makedirs(args.out_dir, exist_ok=True)
    started = time.perf_counter()
    report: Dict[str, Any] = dict(
        budget=asdict(budget), skipped=[], part_seconds={})
    with tempfile.TemporaryDirectory(prefix='actionclip_bench_') as temp:
        from models.text.prompts import load_labels
        labels = load_labels(LABEL_FILE)[:budget.num_labels]
        label_file = LABEL_FILE
        if len(labels) < 400:
            label_file = osp.join(temp, 'labels.txt')
            with open(label_file, 'w') as f:
                f.write('\n'.join(labels) + '\n')
        videos = None
        if {'decode', 'test_loop'} - set(args.skip):
            # Before CUDA starts: the writers are forked processes.
            print('generating videos', flush=True)
            start = time.perf_counter()
            videos = make_videos(
                args.videos_dir or osp.join(temp, 'videos'),
                budget.num_videos, budget.video_seconds, len(labels))
            report['part_seconds']['videos'] = time.perf_counter() - start
        device = torch.device(args.device or (
            'cuda' if torch.cuda.is_available() else 'cpu'))
        report['environment'] = environment(device, args.quick)
        report['environment']['labels'] = len(labels)
        if device.type != 'cuda':
            report['skipped'].append('CUDA graphs, fp16 autocast, '
                                     'AmpOptimWrapper and peak memory '
                                     '(no CUDA device)')
        archs = [('tiny (--quick)', QUICK_ARCH)] if args.quick else [
            (a, a) for a in args.archs
        ]
        model_parts(report, archs, label_file, device, budget, args)
        decode = None
        if 'decode' not in args.skip:
            decode = report['decode'] = bench_decode(videos, budget)
        if 'test_loop' not in args.skip:
            start = time.perf_counter()
            # On a CPU the variants differ in little but bf16.
            variants = TEST_LOOP_VARIANTS[:1 if device.type != 'cuda' else
                                          None]
            report['test_loop'] = [
                bench_test_loop(arch, clip_arch, label_file, videos,
                                osp.join(temp, f'runner_{i}_{j}'), decode,
                                variant, overrides, device)
                for i, (arch, clip_arch) in enumerate(archs)
                for j, (variant, overrides) in enumerate(variants)
            ]
            report['part_seconds']['test_loop'] = (
                time.perf_counter() - start)
    report['part_seconds']['total'] = time.perf_counter() - started
    with open(osp.join(args.out_dir, 'benchmark.json'), 'w') as f:
        json.dump(report, f, indent=2)
    markdown = to_markdown(report)
    with open(osp.join(args.out_dir, 'benchmark.md'), 'w') as f:
        f.write(markdown + '\n')
    print(markdown)
    return 0


if __name__ == '__main__':
    sys.exit(main())

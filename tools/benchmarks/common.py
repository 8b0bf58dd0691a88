"""What every part of the benchmark shares: the budgets, the clock and
the models measured.

Nothing here imports the ``models`` package at import time: its functions
do, once ``tools/benchmark.py`` has put the project root on ``sys.path``.
"""
import contextlib
import gc
import os.path as osp
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

import torch

#: The project root.
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LABEL_FILE = osp.join(ROOT, 'configs', 'label_map_k400.txt')
TEST_CONFIGS = {
    'ViT-B/32': 'actionclip_vit-base-p32-res224-clip-pre_1x1x8_k400-rgb.py',
    'ViT-B/16': 'actionclip_vit-base-p16-res224-clip-pre_1x1x8_k400-rgb.py',
}
#: The bf16 AMP fine-tuning configs (``mim train``).
TRAIN_CONFIGS = {
    'ViT-B/32':
    'actionclip_vit-base-p32-res224-clip-pre_g8xb16-amp_1x1x8_k400-rgb.py',
    'ViT-B/16':
    'actionclip_vit-base-p16-res224-clip-pre_g8xb16-amp_1x1x8_k400-rgb.py',
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
    #: Decode rate per core: seconds each decoding process runs (one
    #: process, then one per CPU at once).
    decode_rate_seconds: float = 8.0
    #: The test pipeline in DataLoader workers (VideoInit's num_threads):
    #: videos timed after the workers' first prefetch.
    loader_videos: int = 320
    #: Test and training loops: iterations timed after the warm-up (the
    #: first ``prefetch x workers + 2``, which the workers' head start
    #: makes cheap), at least; the test loop times at least
    #: ``loop_videos`` videos.
    loop_iters: int = 20
    #: Warm-up iterations of the loops; None: ``2 x workers + 2``.
    loop_skip: Optional[int] = None
    loop_videos: int = 640
    train_loop_iters: int = 20
    #: Seconds a loop's timed iterations may take before it is cut short
    #: (with fewer iterations, reported), so that a slow variant cannot
    #: overrun the run's time.
    loop_seconds: float = 25.0
    #: Samples a batch in the training loop (the configs' 16 per GPU).
    train_loop_batch: int = 16


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
    num_labels=40,
    decode_rate_seconds=0.3,
    loader_videos=2,
    loop_iters=1,
    loop_skip=1,
    loop_videos=2,
    train_loop_iters=1,
    loop_seconds=10.0,
    train_loop_batch=2)


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
        and, with ``compile_model``, ``compiled`` (also ``torch.compile``)
        and ``reduce_overhead`` (compiled encoders replayed from torch's own
        CUDA graphs instead), CUDA only.
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
            # The other CUDA-graph mechanism, on the same path.
            models['reduce_overhead'] = build(compile='reduce-overhead')
    for model in models.values():
        model.to(device).eval()
    return models


#: A variant's option (not a config key): the pipeline's VideoDecode backend.
DECODE_BACKEND = 'decode_backend'


def apply_overrides(cfg, overrides: Dict[str, Any], pipeline) -> None:
    """Merge a variant's config options into ``cfg``, and set its decoding
    backend on ``pipeline``'s ``VideoDecode`` step.

    Raises:
        ValueError: The variant names a backend and the pipeline has no
            ``VideoDecode`` step.
    """
    options = dict(overrides)
    backend = options.pop(DECODE_BACKEND, None)
    cfg.merge_from_dict(options)
    if backend is None:
        return
    steps = [step for step in pipeline if step['type'] == 'VideoDecode']
    if not steps:
        raise ValueError('the variant decodes with backend '
                         f'{backend!r}: the pipeline has no VideoDecode')
    for step in steps:
        step['backend'] = backend

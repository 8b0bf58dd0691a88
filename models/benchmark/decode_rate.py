"""The decode rate per core, and the host's physical decode bound.

Each measuring process decodes the 8 frames ``SampleFrames`` picks in test
mode, clip after clip, on one thread pinned to one CPU: with decord
(``num_threads=1``, as ``VideoInit`` opens them) and through ``VideoInit`` +
``VideoDecode(backend='pyav')`` as the pipelines read them. One process
gives the rate per core; one per CPU, timed over the same window, the
host's total.
"""
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from threading import BrokenBarrierError
from typing import Any, Dict, List, Optional, Sequence

#: Frames decoded per clip (the configs' 8 segments).
FRAMES = 8
#: The decoders measured, by ``VideoDecode``'s backend name.
DECODERS = dict(cpu='decord', pyav="VideoInit + VideoDecode(backend='pyav'"
                '): PyAV skipping unneeded frames')


def usable_cpus() -> List[int]:
    """The CPUs this process may run on."""
    if hasattr(os, 'sched_getaffinity'):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def sampled_indices(num_frames: int) -> List[int]:
    """The frames ``SampleFrames(clip_len=1, num_clips=FRAMES,
    test_mode=True)`` picks: the middle of :data:`FRAMES` equal segments."""
    interval = num_frames / FRAMES
    return [int(interval * i + interval / 2) for i in range(FRAMES)]


def _decord(path: str) -> None:
    import decord
    reader = decord.VideoReader(path, num_threads=1)
    reader.get_batch(sampled_indices(len(reader))).asnumpy()


def _pyav_pipeline():
    """A function reading the sampled frames of a clip through
    ``VideoInit`` and ``VideoDecode(backend='pyav')``; a RuntimeError where
    decord decoded it instead (the rate would not be PyAV's)."""
    import numpy as np

    from models.datasets.transforms import VideoDecode, VideoInit
    init, decode = VideoInit(), VideoDecode(backend='pyav')

    def read(path: str) -> None:
        results = init(dict(filename=path))
        results['frame_inds'] = np.asarray(
            sampled_indices(results['total_frames']))
        if decode(results).get('decoded_by') != 'pyav':
            raise RuntimeError(f'PyAV did not decode {path!r}')

    return read


def _share(barrier) -> None:
    """A measuring process's start: the barrier it waits at."""
    global _BARRIER
    _BARRIER = barrier


def _decode_clips(files, backend, seconds, offset, cpu):
    """One measuring process: pin, warm up, wait for the others, decode
    until the window closes; returns ``(clips, start, end)``."""
    try:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        decode = _pyav_pipeline() if backend == 'pyav' else _decord
        decode(files[offset % len(files)])  # first-open costs untimed
        _BARRIER.wait(timeout=600)
    except BaseException:  # the others would wait for this one
        _BARRIER.abort()
        raise
    start, clips = time.time(), 0
    while clips < 1 or time.time() - start < seconds:
        decode(files[(offset + clips) % len(files)])
        clips += 1
    return clips, start, time.time()


def run_processes(files: Sequence[str], count: int, seconds: float,
                  backend: str) -> float:
    """Clips/s of ``count`` processes decoding at once (each pinned to a
    CPU of its own where there are enough), over their common window; a
    RuntimeError naming a process's failure."""
    # Forked before any model runs here: the children use no torch.
    context = multiprocessing.get_context('fork')
    cpus = usable_cpus()
    jobs = [(list(files), backend, seconds, 7 * i,
             cpus[i] if count <= len(cpus) else None) for i in range(count)]
    with ProcessPoolExecutor(count, context, _share,
                             (context.Barrier(count), )) as pool:
        futures = [pool.submit(_decode_clips, *job) for job in jobs]
        # A process that dies breaks the pool: every future fails at once.
        errors = sorted(filter(None, (f.exception() for f in futures)),
                        key=lambda e: isinstance(e, BrokenBarrierError))
    if errors:  # the first cause, not the others' broken barrier
        raise RuntimeError('a decoding process failed: '
                           f'{type(errors[0]).__name__}: {errors[0]}')
    got = [future.result() for future in futures]
    window = max(r[2] for r in got) - min(r[1] for r in got)
    return sum(r[0] for r in got) / window


def bench_decode_rate(videos: Dict[str, Any],
                      seconds: float) -> List[Dict[str, Any]]:
    """A row per decoder of :data:`DECODERS`: clips/s of the ``videos``
    on one core and the host's total, each process decoding ``seconds``."""
    import av
    import decord
    processes = len(usable_cpus())
    rows = []
    for backend, name in DECODERS.items():
        one = run_processes(videos['files'], 1, seconds, backend)
        total = run_processes(videos['files'], processes, seconds, backend)
        version = f'decord {decord.__version__}' + (
            f', PyAV {av.__version__}' if backend == 'pyav' else '')
        rows.append(dict(
            decoder=f'{name} ({version}), one thread, one process per core',
            backend=backend, frames_per_clip=FRAMES, codec=videos['codec'],
            video_frames=videos.get('frames'), cpus=processes,
            clips_per_s_one_core=one, processes=processes,
            clips_per_s_total=total,
            clips_per_s_per_core=total / processes, seconds=seconds))
        print(f'  decode rate, {backend}: {one:.1f} clips/s on one core, '
              f'{total:.1f} with {processes} processes', flush=True)
    return rows


def decode_limit(rates: Optional[Sequence[Dict[str, Any]]],
                 pipeline: Sequence[Dict[str, Any]],
                 workers: int) -> Optional[float]:
    """What ``workers`` decode per second with the pipeline's decoder: the
    lesser of workers x its one-core rate and the host's total (None
    without a measured rate for that decoder)."""
    backends = {step.get('backend', 'cpu') for step in pipeline
                if step.get('type') == 'VideoDecode'}
    for row in rates or ():
        if backends == {row['backend']}:
            return min(workers * row['clips_per_s_one_core'],
                       row['clips_per_s_total'])
    return None

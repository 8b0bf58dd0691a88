"""The decode rate per core, and the host's physical decode bound.

Each measuring process decodes the 8 frames that ``SampleFrames`` picks in
test mode from clip after clip on ONE thread, pinned to one CPU: with
decord (``num_threads=1``, as ``VideoInit`` opens them; decord's own
default, ``num_threads=0``, uses several threads, which made an earlier
"per core" figure about three times too high), and with
``VideoDecode(backend='pyav')``'s reader, which skips the frames no
sampled frame needs (``models/datasets/pyav_frames.py``; each clip is
opened by decord first, as ``VideoInit`` does). One process alone
gives the rate per core; one process per CPU, started together and timed
over the same window, gives the host's total: the physical bound of CPU
decoding (cores x the rate per core, less what the cores share).

This module imports neither torch nor the ``models`` package: its
measuring processes load decord, and PyAV with the reader's own module.
"""
import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Frames decoded per clip (the configs' 8 segments).
FRAMES = 8
#: The decoders measured: decord, and VideoDecode(backend='pyav').
DECODERS = ('decord', 'pyav')
#: VideoDecode's backend for each.
BACKEND_OF = dict(decord='cpu', pyav='pyav')


def sampled_indices(num_frames: int, count: int = FRAMES) -> List[int]:
    """The frames ``SampleFrames(clip_len=1, num_clips=count,
    test_mode=True)`` picks: the middle of ``count`` equal segments."""
    interval = num_frames / count
    return [int(interval * i + interval / 2) for i in range(count)]


def _child(spec: Dict[str, Any]) -> Dict[str, Any]:
    """One measuring process: pin, warm up, wait for the start, decode
    until the window closes."""
    import decord
    cpu = spec.get('cpu')
    if cpu is not None and hasattr(os, 'sched_setaffinity'):
        os.sched_setaffinity(0, {cpu})
    files = spec['files']
    version = decord.__version__
    if spec['decoder'] == 'pyav':
        import av
        sys.path.insert(0, TOOLS)
        from light_imports import load_light
        read_frames = load_light('models.datasets.pyav_frames').read_frames
        version = f'{version}, PyAV {av.__version__}'

    def decode(path):
        reader = decord.VideoReader(path, num_threads=1)
        num_frames = len(reader)
        indices = sampled_indices(num_frames)
        if spec['decoder'] == 'pyav':
            del reader  # VideoInit's reader gives the frame count only
            read_frames(path, indices, num_frames)
        else:
            reader.get_batch(indices).asnumpy()

    decode(files[0])  # first-open costs out of the timing
    print('ready', flush=True)
    sys.stdin.readline()  # the start, for every process at once
    start = time.time()
    clips = 0
    while clips < 1 or time.time() - start < spec['seconds']:
        decode(files[(spec['offset'] + clips) % len(files)])
        clips += 1
    end = time.time()
    return dict(cpu=cpu, clips=clips, start=start, end=end,
                version=version)


def run_processes(files: Sequence[str], count: int, seconds: float,
                  decoder: str = 'decord') -> List[Dict[str, Any]]:
    """Start ``count`` measuring processes, each on a CPU of its own where
    there are enough, and time them over the same window.

    Args:
        files (list[str]): The clips, cycled through.
        count (int): Processes.
        seconds (float): How long each decodes.
        decoder (str): One of :data:`DECODERS`.

    Returns:
        list[dict]: Per process: ``cpu``, ``clips``, ``start`` and ``end``
        (wall clock), ``version`` (the decoders').

    Raises:
        RuntimeError: A process failed (its message is included).
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(
        os, 'sched_getaffinity') else []
    code = ('import json, sys; sys.path.insert(0, sys.argv[1]); '
            'from benchmarks.decode_rate import _child; '
            'print(json.dumps(_child(json.loads(sys.argv[2]))))')
    procs = []
    for index in range(count):
        spec = dict(files=list(files), seconds=seconds, decoder=decoder,
                    offset=index * 7,
                    cpu=cpus[index] if count <= len(cpus) else None)
        procs.append(
            subprocess.Popen(
                [sys.executable, '-c', code, TOOLS,
                 json.dumps(spec)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True))
    try:
        for proc in procs:
            if proc.stdout.readline().strip() != 'ready':
                raise RuntimeError('a decoding process failed to start: ' +
                                   proc.communicate()[1][-1500:])
        for proc in procs:
            proc.stdin.write('go\n')
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=seconds * 10 + 120)
            if proc.returncode:
                raise RuntimeError(
                    f'a decoding process failed (exit status '
                    f'{proc.returncode}): {err[-1500:]}')
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


def bench_decode_rate(videos: Dict[str, Any], seconds: float,
                      processes: Optional[int] = None
                      ) -> List[Dict[str, Any]]:
    """Decode rate per core (one process, one thread) and the host's total
    with one process per CPU, for each of :data:`DECODERS`.

    Args:
        videos (dict): ``files`` to decode and their ``codec``.
        seconds (float): How long each process decodes.
        processes (int, optional): Processes in parallel; default the CPU
            count (the CPUs this process may use).

    Returns:
        list[dict]: Per decoder (``backend``: ``VideoDecode``'s name for
        it): ``clips_per_s_one_core``; ``processes``,
        ``clips_per_s_total`` (the physical bound), its
        ``clips_per_s_per_core``; the codec.
    """
    cpus = (len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
            else os.cpu_count() or 1)
    processes = processes or cpus
    rows = []
    for decoder in DECODERS:
        (one, ) = run_processes(videos['files'], 1, seconds, decoder)
        one_rate = one['clips'] / (one['end'] - one['start'])
        many = run_processes(videos['files'], processes, seconds, decoder)
        window = max(r['end'] for r in many) - min(r['start'] for r in many)
        total = sum(r['clips'] for r in many) / window
        name = ('decord' if decoder == 'decord' else
                "VideoDecode(backend='pyav'): PyAV skipping unneeded "
                'frames, opened by decord')
        rows.append(dict(
            decoder=f"{name} ({one['version']}), one thread, one process "
            'per core',
            backend=BACKEND_OF[decoder],
            frames_per_clip=FRAMES,
            codec=videos['codec'],
            video_frames=videos.get('frames'),
            cpus=cpus,
            clips_per_s_one_core=one_rate,
            processes=processes,
            clips_per_s_total=total,
            clips_per_s_per_core=total / processes,
            physical_bound_clips_per_s=total,
            seconds=seconds))
        print(f'  decode rate, {decoder}: {one_rate:.1f} clips/s on one '
              f'core, {total:.1f} with {processes} processes', flush=True)
    return rows


def decode_limit(rates: Optional[Sequence[Dict[str, Any]]],
                 pipeline: Sequence[Dict[str, Any]],
                 workers: int) -> Optional[float]:
    """What ``workers`` can decode per second with the pipeline's decoder:
    the lesser of workers x its one-core rate and the host's total.

    Args:
        rates (list[dict], optional): :func:`bench_decode_rate`'s rows.
        pipeline (list[dict]): The loop's pipeline (its ``VideoDecode``
            names the backend; ``'cpu'`` when it names none).
        workers (int): DataLoader workers.

    Returns:
        float, optional: Clips/s; None without a measured rate for the
        pipeline's decoder (no part d).
    """
    backends = {step.get('backend', 'cpu') for step in pipeline
                if step.get('type') == 'VideoDecode'}
    for row in rates or ():
        if backends == {row['backend']}:
            return min(workers * row['clips_per_s_one_core'],
                       row['clips_per_s_total'])
    return None

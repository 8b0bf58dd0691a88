"""Decode throughput per core of the installed decord.

Writes K400-like clips (340x256, 25 fps, 10 s: 250 frames; H.264 with
libx264's defaults through PyAV where PyAV is importable, else MPEG-4
Part 2 through OpenCV; the JSON says which), then decodes 8 frames of each
(those ``SampleFrames`` picks for 8 segments in test mode) on one thread
pinned to one CPU, from the path as ``VideoInit`` does and from the bytes
as MMAction2's ``DecordInit`` does. Run it once per decoder on the same
``--workdir`` (the clips are kept and reused) to compare them.

``--gpu-context`` also tries, in a process of its own, decord and then
decord's own ``decord.gpu(0)`` reader on one clip; a process killed by a
signal is reported with the signal and the last step it finished.

The tool imports neither torch nor the project's ``models`` package (only
``models/datasets/decoder_info.py``, by path); its arguments are checked
before anything heavy is imported.

Example:
    python tools/decode_benchmark.py --workdir /tmp/k400like \\
        --out decode_decord06.json
    # with decord2 installed instead:
    python tools/decode_benchmark.py --workdir /tmp/k400like \\
        --gpu-context --out decode_decord2.json
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: Version of the JSON this tool writes.
FORMAT_VERSION = 1


def parse_size(text: str) -> tuple:
    """``'340x256'`` to ``(340, 256)``."""
    match = re.fullmatch(r'(\d+)x(\d+)', text)
    if not match or min(map(int, match.groups())) < 16:
        raise argparse.ArgumentTypeError(
            f'expected WIDTHxHEIGHT, each at least 16, got {text!r}')
    return int(match.group(1)), int(match.group(2))


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        epilog=__doc__.split('\n\n')[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--clips', type=int, default=24,
                        help='distinct clips decoded in each pass (24)')
    parser.add_argument('--repeats', type=int, default=3,
                        help='timed passes over the clips; the best and '
                        'the median are reported (3)')
    parser.add_argument('--frames', type=int, default=8,
                        help='frames decoded per clip (8)')
    parser.add_argument('--seconds', type=float, default=10.0,
                        help='clip length (10)')
    parser.add_argument(
        '--fps', type=int, default=25, help='frame rate of the clips (25)')
    parser.add_argument('--size', type=parse_size, default=(340, 256),
                        help='WIDTHxHEIGHT (340x256, as K400 is resized)')
    parser.add_argument(
        '--codec', choices=('auto', 'h264', 'mp4v'), default='auto',
        help='h264: libx264 through PyAV; mp4v: MPEG-4 Part 2 through '
        'OpenCV; auto: h264 where PyAV is importable (default)')
    parser.add_argument('--threads', type=int, default=1,
                        help="decord's num_threads (1, as DecordInit)")
    parser.add_argument('--source', choices=('path', 'bytes', 'both'),
                        default='both',
                        help='decode from the path (VideoInit), the bytes '
                        '(DecordInit) or both (default)')
    parser.add_argument('--cpu', type=int, default=None,
                        help='CPU to pin to (default: the first this '
                        'process may use); -1: no pinning')
    parser.add_argument('--workdir',
                        help='where the clips are written and reused '
                        '(default: a temporary folder, removed)')
    parser.add_argument('--gpu-id', type=int, default=0,
                        help='GPU of --gpu-context (0)')
    parser.add_argument('--gpu-context', action='store_true',
                        help="also try decord's own GPU reader "
                        '(decord.gpu(GPU_ID))')
    parser.add_argument('--probe-timeout', type=float, default=300,
                        help='seconds each probe process may run (300)')
    parser.add_argument('--out', help='write the results as JSON here')
    parser.add_argument('--probe', nargs=2, metavar=('ORDER', 'CLIP'),
                        help=argparse.SUPPRESS)  # the probes' child mode
    parser.add_argument('--write-clips', action='store_true',
                        help=argparse.SUPPRESS)  # the clip writer's mode
    return parser


def check_args(args: argparse.Namespace) -> Optional[str]:
    """What is wrong with the arguments, before anything is imported."""
    for name in ('clips', 'repeats', 'frames', 'fps', 'threads'):
        if getattr(args, name) < 1:
            return f'--{name} must be at least 1'
    if args.seconds <= 0:
        return '--seconds must be positive'
    if args.frames > round(args.seconds * args.fps):
        return (f'--frames {args.frames} is more than the '
                f'{round(args.seconds * args.fps)} frames of a clip')
    if (args.codec == 'h264' and importlib.util.find_spec('av') is None
            and len(_written(args.workdir, 'h264')) < args.clips):
        return ('--codec h264 needs PyAV (pip install av), or --workdir '
                'with the clips written before')
    if args.cpu is not None and args.cpu >= 0 and hasattr(
            os, 'sched_getaffinity') and args.cpu not in (
                os.sched_getaffinity(0)):
        return f'--cpu {args.cpu} is not among the CPUs this process may use'
    if args.probe_timeout <= 0:
        return '--probe-timeout must be positive'
    if args.out:
        folder = osp.dirname(osp.abspath(args.out))
        if not osp.isdir(folder) or not os.access(folder, os.W_OK):
            return f'--out: cannot write into {folder!r}'
    if args.workdir and osp.exists(args.workdir) and not osp.isdir(
            args.workdir):
        return f'--workdir {args.workdir!r} is not a folder'
    if args.workdir and osp.isdir(args.workdir):
        try:
            known = read_manifest(osp.join(args.workdir, 'clips.json'))
            for codec in ('h264', 'mp4v'):
                for index in range(args.clips):
                    refuse_foreign(args.workdir,
                                   f'clip_{codec}_{index:04d}.mp4', known)
        except ForeignFileError as error:
            return str(error)
    if args.out and args.workdir and osp.isfile(args.out) and any(
            osp.samefile(args.out, osp.join(args.workdir, name))
            for name in os.listdir(args.workdir)
            if osp.isfile(osp.join(args.workdir, name))):
        return f'--out {args.out!r} is a file of --workdir'
    return None


# ---------------------------------------------------------------------------
# Clips
# ---------------------------------------------------------------------------


def sample_indices(num_frames: int, count: int) -> List[int]:
    """The frames MMAction2's ``SampleFrames(clip_len=1, num_clips=count,
    test_mode=True)`` picks: the middle of ``count`` equal segments."""
    interval = num_frames / count
    return [int(interval * i + interval / 2) for i in range(count)]


def render_frames(index: int, size: tuple, num_frames: int):
    """RGB frames of one clip: a textured background that pans, objects
    that move, and grain, so that the encoder spends bits as on camera
    footage (about 430 kbit/s at 340x256 with libx264's defaults, as
    K400's resized clips; a flat synthetic picture would decode
    unrealistically fast)."""
    import numpy as np
    rng = np.random.default_rng(index)
    width, height = size
    # A blocky texture twice the frame's width, panned across.
    low = rng.integers(0, 256, (height // 4 + 2, width // 2 + 2, 3))
    texture = np.kron(low, np.ones((4, 4, 1)))[:height, :2 * width]
    texture = texture.astype(np.float32)
    objects = [(rng.uniform(0, width), rng.uniform(0, height),
                rng.uniform(-3, 3), rng.uniform(-2, 2),
                int(rng.integers(12, 48)), rng.integers(0, 256, 3))
               for _ in range(4)]
    for t in range(num_frames):
        shift = int(t * width / max(1, num_frames - 1))
        frame = texture[:, shift:shift + width].copy()
        for x, y, dx, dy, side, colour in objects:
            cx = int(x + dx * t) % width
            cy = int(y + dy * t) % height
            frame[cy:cy + side, cx:cx + side] = colour
        frame += rng.normal(0, 6, frame.shape)
        yield np.clip(frame, 0, 255).astype(np.uint8)


def write_clip_pyav(path: str, index: int, size: tuple, fps: int,
                    num_frames: int) -> None:
    """H.264 (libx264, its defaults: preset medium, CRF 23, keyframes at
    most 250 frames apart) in mp4, yuv420p."""
    import av
    with av.open(path, 'w') as container:
        stream = container.add_stream('libx264', rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = 'yuv420p'
        for frame in render_frames(index, size, num_frames):
            for packet in stream.encode(
                    av.VideoFrame.from_ndarray(frame, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_clip_opencv(path: str, index: int, size: tuple, fps: int,
                      num_frames: int) -> None:
    """MPEG-4 Part 2 (mp4v) through OpenCV."""
    import cv2
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                             size)
    if not writer.isOpened():
        raise RuntimeError(f'OpenCV cannot write {path}')
    for frame in render_frames(index, size, num_frames):
        writer.write(frame[:, :, ::-1])
    writer.release()


def _written(folder: Optional[str], codec: str) -> List[str]:
    """Clips of ``codec`` that a manifest in ``folder`` lists."""
    manifest = osp.join(folder or '', 'clips.json')
    if not folder or not osp.isfile(manifest):
        return []
    with open(manifest) as f:
        known = json.load(f)
    if known.get('spec', {}).get('codec') != codec:
        return []
    return [n for n in known.get('files', [])
            if osp.isfile(osp.join(folder, n))]


def safe_io():
    """The plugin's atomic writers, without importing torch."""
    from light_imports import load_light
    return load_light('models.utils.safe_io')


class ForeignFileError(ValueError):
    """The work folder holds a file this tool did not write."""


def read_manifest(manifest: str) -> Dict:
    """The clips a previous run wrote, from its ``clips.json``.

    Raises:
        ForeignFileError: ``clips.json`` is not this tool's (it is never
            overwritten then).
    """
    if not osp.exists(manifest):
        return {}
    try:
        with open(manifest) as f:
            known = json.load(f)
        if not (isinstance(known, dict) and isinstance(
                known.get('spec'), dict)
                and isinstance(known.get('files'), list)):
            raise ValueError('not a clip manifest')
    except (OSError, ValueError) as error:
        raise ForeignFileError(
            f'{manifest!r} is not a clip list of decode_benchmark.py '
            f'({error}); use an empty or new --workdir') from None
    return known


def refuse_foreign(folder: str, name: str, known: Dict) -> None:
    """Refuse to write ``name`` over a file the manifest does not list.

    Raises:
        ForeignFileError: ``folder/name`` exists and this tool did not
            write it.
    """
    path = osp.join(folder, name)
    if osp.lexists(path) and name not in known.get('files', []):
        raise ForeignFileError(
            f'{path!r} exists and was not written by decode_benchmark.py; '
            'use an empty or new --workdir')


def prepare_clips(args: argparse.Namespace, folder: str) -> Dict:
    """Write the clips into ``folder``, or reuse those written there
    before with the same settings.

    Returns:
        dict: ``files``, ``codec``, ``encoder``, the settings and sizes.
    """
    codec = args.codec
    if codec == 'auto':
        codec = 'h264' if importlib.util.find_spec('av') else 'mp4v'
    num_frames = round(args.seconds * args.fps)
    spec = dict(codec=codec, width=args.size[0], height=args.size[1],
                fps=args.fps, frames=num_frames)
    manifest = osp.join(folder, 'clips.json')
    known = read_manifest(manifest)
    # Clips of other settings are rewritten: they are ours too.
    ours = {'files': list(known.get('files', []))}
    if known.get('spec') != spec:
        # The encoder is imported only to write: clips written elsewhere
        # (a host without PyAV) are decoded as they are.
        if codec == 'h264':
            import av
            encoder = f'libx264 through PyAV {av.__version__}'
        else:
            import cv2
            encoder = f'mp4v through OpenCV {cv2.__version__}'
        known = dict(spec=spec, encoder=encoder, files=[])
    files = [f for f in known['files'] if osp.isfile(osp.join(folder, f))]
    write = write_clip_pyav if codec == 'h264' else write_clip_opencv
    start = time.perf_counter()
    for index in range(len(files), args.clips):
        name = f'clip_{codec}_{index:04d}.mp4'
        refuse_foreign(folder, name, ours)
        # Whole or not at all: an interrupted run leaves no half clip.
        with safe_io().atomic_path(osp.join(folder, name)) as tmp:
            write(tmp, index, args.size, args.fps, num_frames)
        files.append(name)
        print(f'  wrote {index + 1}/{args.clips} clips', end='\r',
              file=sys.stderr, flush=True)
    if len(files) > len(known['files']):
        print(file=sys.stderr)
    written = time.perf_counter() - start
    known['files'] = files
    with safe_io().atomic_write(manifest, 'w') as f:
        json.dump(known, f, indent=1)
    paths = [osp.abspath(osp.join(folder, f)) for f in files[:args.clips]]
    mean_bytes = sum(map(osp.getsize, paths)) / len(paths)
    return dict(files=paths, codec=codec, encoder=known['encoder'],
                width=args.size[0], height=args.size[1], fps=args.fps,
                seconds=args.seconds, frames=num_frames,
                mean_kib=round(mean_bytes / 1024, 1),
                kbit_per_s=round(mean_bytes * 8 / 1000 / args.seconds, 1),
                write_seconds=round(written, 2))


def write_clips_apart(args: argparse.Namespace, folder: str) -> Dict:
    """:func:`prepare_clips` in a child process.

    PyAV and OpenCV bundle FFmpeg libraries of their own, and decord
    loads its library with ``RTLD_GLOBAL``: in one process, the FFmpeg
    functions of one can end up called by the other (same symbol
    versions). The process that times decord loads decord's FFmpeg only.
    """
    cmd = [sys.executable, osp.abspath(__file__), '--write-clips',
           '--workdir', folder, '--clips', str(args.clips), '--seconds',
           str(args.seconds), '--fps', str(args.fps), '--size',
           f'{args.size[0]}x{args.size[1]}', '--codec', args.codec]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode:
        raise RuntimeError(f'writing the clips failed (exit status '
                           f'{proc.returncode}; its messages are above)')
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------
# Throughput
# ---------------------------------------------------------------------------


def load_decoder_info():
    """``models/datasets/decoder_info.py``, without the ``models`` package
    (torch and MMAction2, which this tool does not need)."""
    from light_imports import load_light
    return load_light('models.datasets.decoder_info')


def time_passes(files: Sequence[str], source: str, frames: int,
                threads: int, repeats: int) -> Dict:
    """Decode ``frames`` frames of every clip, ``repeats`` times.

    Args:
        files (list[str]): The clips.
        source (str): ``'path'`` or ``'bytes'``.
        frames (int): Frames per clip.
        threads (int): decord's ``num_threads``.
        repeats (int): Timed passes (after one untimed warm-up clip).

    Returns:
        dict: Clips and frames per second (best and median pass) and the
        per-clip times of the median pass.
    """
    import io

    import decord

    def decode(path):
        if source == 'bytes':
            with open(path, 'rb') as f:
                reader = decord.VideoReader(io.BytesIO(f.read()),
                                            num_threads=threads)
        else:
            reader = decord.VideoReader(path, num_threads=threads)
        batch = reader.get_batch(sample_indices(len(reader), frames))
        return batch.asnumpy().shape

    try:  # warm-up: first-open costs out of the timing
        shape = decode(files[0])
    except decord.DECORDError as error:
        if 'size must exactly match' not in str(error):
            raise
        # which widths decord cannot copy depends on the CPU
        raise SystemExit(
            f'decode_benchmark.py: error: decord cannot copy the frames of '
            f'{files[0]!r} on this CPU (docs/decoding.md): choose another '
            '--size, e.g. a width that is a multiple of 64') from None
    passes = []
    for _ in range(repeats):
        times = []
        for path in files:
            start = time.perf_counter()
            decode(path)
            times.append(time.perf_counter() - start)
        passes.append(times)
    totals = [sum(times) for times in passes]
    median_pass = passes[totals.index(sorted(totals)[len(totals) // 2])]
    per_clip = sorted(median_pass)
    best = min(totals)
    median = statistics.median(totals)
    return dict(
        frame_shape=list(shape[1:]),
        clips_per_s_best=round(len(files) / best, 2),
        clips_per_s_median=round(len(files) / median, 2),
        frames_per_s_median=round(len(files) * frames / median, 1),
        ms_per_clip_median=round(1000 * per_clip[len(per_clip) // 2], 2),
        ms_per_clip_p90=round(
            1000 * per_clip[min(len(per_clip) - 1,
                                int(0.9 * len(per_clip)))], 2),
        pass_seconds=[round(t, 3) for t in totals])


def pin(cpu: Optional[int]) -> Optional[int]:
    """Pin this process to one CPU, so that the rate is per core; the
    CPU, or ``None`` where not pinned."""
    if cpu == -1 or not hasattr(os, 'sched_setaffinity'):
        return None
    if cpu is None:
        cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


# ---------------------------------------------------------------------------
# Probes in child processes: decord.gpu
# ---------------------------------------------------------------------------


def _step(name: str, fn) -> None:
    """Run one probe step and print its outcome as a JSON line at once:
    if a later step kills the process, the finished ones are known."""
    start = time.perf_counter()
    try:
        result = dict(step=name, ok=True, detail=fn())
    except Exception as error:  # reported, the probe goes on
        result = dict(step=name, ok=False,
                      error=f'{type(error).__name__}: {str(error)[:300]}')
    result['seconds'] = round(time.perf_counter() - start, 3)
    print(json.dumps(result), flush=True)


def run_probe(order: str, clip: str, gpu_id: int) -> int:
    """The child side of a probe: the steps of ``order``.

    Args:
        order (str): ``decord-gpu``.
        clip (str): The video.
        gpu_id (int): The GPU.

    Returns:
        int: 0 (failures are reported per step).
    """

    def use_decord():
        import decord
        reader = decord.VideoReader(clip, num_threads=1)
        frames = reader.get_batch(sample_indices(len(reader), 8)).asnumpy()
        return dict(version=decord.__version__, shape=list(frames.shape),
                    mean=round(float(frames.mean()), 3))

    def use_decord_gpu():
        import decord
        reader = decord.VideoReader(clip, ctx=decord.gpu(gpu_id))
        frames = reader.get_batch(sample_indices(len(reader), 8))
        return dict(version=decord.__version__,
                    shape=list(frames.shape), type=type(frames).__name__)

    steps = dict(decord=use_decord, gpu=use_decord_gpu)
    for step in probe_plan(order):
        _step(step, steps[step.split(':')[1]])
    return 0


def probe_plan(order: str) -> List[str]:
    """The steps of a probe, e.g. ``['1:decord', '2:gpu']``."""
    names = order.split('-')
    return [f'{index + 1}:{name}' for index, name in enumerate(names)]


def probe(order: str, clip: str, args: argparse.Namespace) -> Dict:
    """Run one probe in a process of its own; how it ended.

    Returns:
        dict: ``steps`` (those that finished), ``exit`` (``'ok'``, the
        signal's name, ``'exit N'`` or ``'timeout'``) and ``stderr_tail``.
    """
    cmd = [sys.executable, osp.abspath(__file__), '--probe', order, clip,
           '--gpu-id', str(args.gpu_id)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              errors='replace', timeout=args.probe_timeout)
    except subprocess.TimeoutExpired as expired:
        out = expired.stdout or ''
        if isinstance(out, bytes):
            out = out.decode(errors='replace')
        return _ended(order, 'timeout', out, '')
    code = proc.returncode
    if code == 0:
        ended = 'ok'
    elif code < 0:
        ended = signal.Signals(-code).name
    else:
        ended = f'exit {code}'
    return _ended(order, ended, proc.stdout, proc.stderr)


def _ended(order: str, ended: str, stdout: str, stderr: str) -> Dict:
    """A probe's outcome; where it did not end well, the step it was in
    (the first that printed nothing)."""
    steps = []
    for line in stdout.splitlines():
        if line.startswith('{"step"'):
            steps.append(json.loads(line))
    result = dict(order=order, exit=ended, steps=steps,
                  stderr_tail=stderr[-1500:])
    plan = probe_plan(order)
    if ended != 'ok' and len(steps) < len(plan):
        result['died_in'] = plan[len(steps)]
    return result


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def host_info() -> Dict:
    """Where it ran."""
    model = platform.processor()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    usable = (len(os.sched_getaffinity(0))
              if hasattr(os, 'sched_getaffinity') else os.cpu_count())
    return dict(cpu=model, cpus_usable=usable, python=sys.version.split()[0],
                platform=platform.platform())


def run(args: argparse.Namespace) -> Dict:
    """Write or reuse the clips, time the decoder, run the probes."""
    report = dict(tool='tools/decode_benchmark.py', format=FORMAT_VERSION,
                  host=host_info())
    temporary = None
    folder = args.workdir
    if folder is None:
        temporary = tempfile.TemporaryDirectory(prefix='decode_benchmark_')
        folder = temporary.name
    os.makedirs(folder, exist_ok=True)
    try:
        clips = write_clips_apart(args, folder)
        start = time.perf_counter()
        import decord  # noqa: F401  (timed: decord2 loads ~40 libraries)
        report['decord_import_seconds'] = round(
            time.perf_counter() - start, 3)
        info = load_decoder_info().decoder_info()
        report['decoder'] = dict(vars(info), describe=info.describe(),
                                 maintained=info.maintained)
        print(f'decoder: {info.describe()}')
        report['clips'] = {k: v for k, v in clips.items() if k != 'files'}
        report['clips']['folder'] = None if temporary else osp.abspath(
            folder)
        print(f'clips: {len(clips["files"])} x {clips["frames"]} frames '
              f'{clips["width"]}x{clips["height"]}, {clips["encoder"]}, '
              f'{clips["kbit_per_s"]} kbit/s')
        allowed = (os.sched_getaffinity(0)
                   if hasattr(os, 'sched_getaffinity') else None)
        cpu = pin(args.cpu)
        report['settings'] = dict(frames_per_clip=args.frames,
                                  threads=args.threads, pinned_cpu=cpu,
                                  repeats=args.repeats)
        sources = ['path', 'bytes'] if args.source == 'both' else [
            args.source]
        report['throughput'] = {}
        for source in sources:
            result = time_passes(clips['files'], source, args.frames,
                                 args.threads, args.repeats)
            report['throughput'][source] = result
            print(f'from the {source}: {result["clips_per_s_median"]} '
                  f'clips/s per core (best {result["clips_per_s_best"]}), '
                  f'{result["ms_per_clip_median"]} ms a clip')
        if cpu is not None:  # the probes run unpinned
            os.sched_setaffinity(0, allowed)
        if args.gpu_context:
            order = 'decord-gpu'
            result = probe(order, clips['files'][0], args)
            report['gpu_context'] = result
            died = (f' in {result["died_in"]}'
                    if 'died_in' in result else '')
            print(f'probe {order}: {result["exit"]}{died}; ' + ', '.join(
                f'{s["step"]} {"ok" if s["ok"] else s["error"][:80]}'
                for s in result['steps']))
    finally:
        if temporary is not None:
            temporary.cleanup()
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse, check, run; exit status 2 for bad arguments."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.probe:
        return run_probe(args.probe[0], args.probe[1], args.gpu_id)
    problem = check_args(args)
    if problem:
        parser.error(problem)
    if args.write_clips:
        if not args.workdir:
            parser.error('--write-clips needs --workdir')
        os.makedirs(args.workdir, exist_ok=True)
        print(json.dumps(prepare_clips(args, args.workdir)))
        return 0
    report = run(args)
    if args.out:
        with safe_io().atomic_write(args.out, 'w') as f:
            json.dump(report, f, indent=1)
            f.write('\n')
        print(f'Wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

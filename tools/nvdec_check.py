"""How fast the NVDEC decode service decodes your clips, beside the CPU.

Three timed parts on the clips of ``--videos`` (each decodes the 8 frames
``SampleFrames`` picks in test mode, ``--frames`` to change):

a. ``cpu``: ``--workers`` processes decoding with decord, one thread each;
b. ``nvdec``: the NVDEC service alone, ``--slots`` clips at a time;
c. ``mixed``: ``--workers`` processes that send each clip to the service
   and decode it themselves when no slot is free (what
   ``VideoDecode(backend='nvdec')`` does in DataLoader workers).

Each reports clips/s (c: and the share the service decoded), then the
frames of ``--compare`` clips from the service are compared with decord's
(max and mean absolute difference). The tool imports neither torch nor the
``models`` package; arguments are checked before anything is decoded.

Example (on a GPU host with ``pip install PyNvVideoCodec``)::

    python tools/nvdec_check.py --videos /data/k400like --seconds 10 \\
        --workers 15 --slots 7 --out nvdec_check.json

Exit status: 0 when done; 1 when the service could not start (the CPU
part is still reported); 2 for bad arguments.
"""
import argparse
import json
import multiprocessing
import os.path as osp
import platform
import sys
import threading
import time
from typing import Dict, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from light_imports import load_light  # noqa: E402

_cli = load_light('models.apis.cli')
CliError = _cli.CliError

PARTS = ('cpu', 'nvdec', 'mixed')
#: Version of the JSON this tool writes.
FORMAT_VERSION = 1


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog='nvdec_check.py',
        description=__doc__.split('\n\n')[0],
        epilog=__doc__[__doc__.index('Example'):],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--videos', required=True, metavar='DIR',
                        help='folder of clips (walked recursively)')
    parser.add_argument('--seconds', type=float, default=10.0,
                        help='length of each timed part (default: 10)')
    parser.add_argument('--workers', type=int, default=None,
                        help='CPU decoding processes in parts cpu and '
                        'mixed (default: one per CPU, less one)')
    parser.add_argument('--slots', type=int, default=7,
                        help='clips the service decodes at once, one '
                        'decoder each (default: 7, the NVDEC engines of '
                        'an H200)')
    parser.add_argument('--frames', type=int, default=8,
                        help='frames decoded per clip (default: 8)')
    parser.add_argument('--compare', type=int, default=4,
                        help='clips whose service frames are compared '
                        'with decord\'s (default: 4; 0: none)')
    parser.add_argument('--gpu-id', type=int, default=0,
                        help='the GPU of the service (default: 0)')
    parser.add_argument('--parts', default=','.join(PARTS),
                        help='comma-separated parts to run (default: '
                        'cpu,nvdec,mixed)')
    parser.add_argument('--decoder',
                        default='models.datasets.nvdec_service:PyNvDecoder',
                        help='decoder class of the service, as '
                        'module:Class (default: PyNvVideoCodec\'s)')
    parser.add_argument('--out', help='write the results as JSON here')
    parser.add_argument('--no-progress', action='store_true',
                        help='hide the progress bar')
    parser.add_argument('--verbose', action='store_true',
                        help='show the decoders\' own log lines')
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Refuse bad arguments before anything is decoded.

    Raises:
        CliError: With the option and what to give.
    """
    import os
    if args.workers is None:
        args.workers = max(1, (os.cpu_count() or 2) - 1)
    for option, value, low in (('--seconds', args.seconds, 0.1),
                               ('--workers', args.workers, 1),
                               ('--slots', args.slots, 1),
                               ('--frames', args.frames, 1),
                               ('--compare', args.compare, 0)):
        if value < low:
            raise CliError(f'{option} must be >= {low:g}, got {value:g}')
    args.parts = [p.strip() for p in args.parts.split(',') if p.strip()]
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown or not args.parts:
        raise CliError(f'--parts {",".join(unknown) or "(empty)"}: choose '
                       f'from {",".join(PARTS)}')
    if ':' not in args.decoder:
        raise CliError(f'--decoder {args.decoder!r}: give module:Class')
    _cli.check_output_path(args.out, ('.json', ), '--out')
    video_files = load_light('models.apis.video_files')
    if osp.isfile(args.videos):
        raise CliError(f'--videos {args.videos!r} is a file; give the '
                       'folder of the clips')
    try:
        args.clips = video_files.find_videos([args.videos], unreadable={})
    except (OSError, ValueError) as error:
        raise CliError(f'--videos: {error}') from None
    if not args.clips:
        raise CliError(f'--videos {args.videos!r} holds no video files')
    if args.out:
        safe_io = load_light('models.utils.safe_io')
        try:
            safe_io.check_output_path(args.out, args.clips, '--out')
        except safe_io.OutputPathError as error:
            raise CliError(str(error)) from None


def sample_indices(num_frames: int, count: int) -> List[int]:
    """The frames ``SampleFrames(clip_len=1, num_clips=count,
    test_mode=True)`` picks: the middle of ``count`` equal segments."""
    interval = num_frames / count
    return [min(num_frames - 1, int(interval * i + interval / 2))
            for i in range(count)]


def decode_cpu(path: str, frames: int):
    """The sampled frames of ``path`` decoded by decord on this thread."""
    import decord
    reader = decord.VideoReader(path, num_threads=1)
    return reader.get_batch(sample_indices(len(reader), frames)).asnumpy()


def _frame_count(path: str) -> int:
    import decord
    return len(decord.VideoReader(path, num_threads=1))


def _worker(rank: int, clips: Sequence[str], frames: int, start_at: float,
            seconds: float, service, results) -> None:
    """One decoding process of parts cpu and mixed: clips from its own
    offset, round robin, until the part's time is up."""
    import decord  # noqa: F401  (imported before the clock starts)
    counts = dict(clips=0, nvdec=0)
    time.sleep(max(0.0, start_at - time.time()))
    end = start_at + seconds
    index = rank
    while time.time() < end:
        path = clips[index % len(clips)]
        index += 1
        if service is not None:
            count = _frame_count(path)  # VideoInit's reader, as in training
            if service.decode(path, sample_indices(count, frames)) is not None:
                counts['nvdec'] += 1
                counts['clips'] += 1
                continue
        decode_cpu(path, frames)
        counts['clips'] += 1
    results.put(counts)


def run_processes(args: argparse.Namespace, service) -> Dict:
    """Parts cpu (``service`` None) and mixed: ``--workers`` forked
    processes decoding for ``--seconds``."""
    context = multiprocessing.get_context('fork')  # no CUDA in this process
    results = context.Queue()
    start_at = time.time() + 1.0 + 0.05 * args.workers
    procs = [
        context.Process(
            target=_worker,
            args=(rank, args.clips, args.frames, start_at, args.seconds,
                  service, results),
            daemon=True) for rank in range(args.workers)
    ]
    for proc in procs:
        proc.start()
    counts = [results.get(timeout=args.seconds + 120) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    clips = sum(c['clips'] for c in counts)
    nvdec = sum(c['nvdec'] for c in counts)
    report = dict(workers=args.workers, clips=clips,
                  clips_per_s=round(clips / args.seconds, 2))
    if service is not None:
        report.update(nvdec_clips=nvdec,
                      nvdec_share=round(nvdec / max(1, clips), 3))
    return report


def warm_up(args: argparse.Namespace, service) -> None:
    """One clip per slot, untimed: each decoder thread creates its decoder
    (and the service its CUDA context) on its first clip."""
    path = args.clips[0]
    indices = sample_indices(_frame_count(path), args.frames)
    threads = [
        threading.Thread(
            target=service.decode, args=(path, indices),
            daemon=True) for _ in range(args.slots)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=service.timeout + 10)


def run_service_alone(args: argparse.Namespace, service) -> Dict:
    """Part nvdec: ``--slots`` threads keep every slot busy."""
    counts = [0] * args.slots
    failed = [0] * args.slots
    frame_counts = {p: _frame_count(p) for p in args.clips}
    end = time.time() + args.seconds

    def loop(rank: int) -> None:
        index = rank
        while time.time() < end:
            path = args.clips[index % len(args.clips)]
            index += 1
            indices = sample_indices(frame_counts[path], args.frames)
            if service.decode(path, indices) is None:
                failed[rank] += 1
                if not service.available:
                    return
            else:
                counts[rank] += 1

    threads = [threading.Thread(target=loop, args=(r, ), daemon=True)
               for r in range(args.slots)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=args.seconds + service.timeout + 10)
    return dict(slots=args.slots, clips=sum(counts),
                clips_per_s=round(sum(counts) / args.seconds, 2),
                not_served=sum(failed))


def compare_frames(args: argparse.Namespace, service) -> List[Dict]:
    """The service's frames against decord's on the first ``--compare``
    clips."""
    import numpy as np
    rows = []
    for path in args.clips[:args.compare]:
        cpu = decode_cpu(path, args.frames)
        gpu = service.decode(path, sample_indices(_frame_count(path),
                                                  args.frames))
        row = dict(video=path, cpu_shape=list(cpu.shape))
        if gpu is None:
            row['nvdec'] = 'not served (decoded on the CPU)'
        elif gpu.shape != cpu.shape:
            row['nvdec_shape'] = list(gpu.shape)
        else:
            diff = np.abs(gpu.astype(np.int16) - cpu.astype(np.int16))
            row.update(max_abs_diff=int(diff.max()),
                       mean_abs_diff=round(float(diff.mean()), 4))
        rows.append(row)
    return rows


def run(args: argparse.Namespace) -> int:
    """The parts asked for; prints a summary, writes ``--out``."""
    from tqdm import tqdm
    nvdec_service = load_light('models.datasets.nvdec_service')
    if not args.verbose:
        _cli.quiet_decoders()
    report = dict(format_version=FORMAT_VERSION, host=platform.node(),
                  python=platform.python_version(), videos=args.videos,
                  clips=len(args.clips), frames=args.frames,
                  seconds=args.seconds, decoder=args.decoder)
    status = 0
    service = None
    bar = tqdm(total=len(args.parts) + bool(args.compare), unit='part',
               disable=args.no_progress, file=sys.stderr)
    try:
        if 'cpu' in args.parts:
            bar.set_description('cpu')
            report['cpu'] = run_processes(args, None)
            bar.update()
        if set(args.parts) & {'nvdec', 'mixed'} or args.compare:
            service = nvdec_service.NvdecService(
                slots=args.slots, gpu_id=args.gpu_id, decoder=args.decoder)
            if not service.start():
                report['service'] = dict(unavailable=service.unavailable)
                status = 1
            else:
                warm_up(args, service)
                for part, fn in (('nvdec', run_service_alone),
                                 ('mixed', run_processes)):
                    if part in args.parts:
                        bar.set_description(part)
                        report[part] = fn(args, service)
                        bar.update()
                if args.compare:
                    bar.set_description('compare')
                    report['compare'] = compare_frames(args, service)
                    bar.update()
                report['service'] = dict(
                    slots=args.slots, gpu_id=args.gpu_id,
                    stats_in_this_process=dict(service.stats),
                    unavailable=service.unavailable)
    finally:
        bar.close()
        if service is not None:
            service.close()
    for part in PARTS:
        if part in report:
            extra = (f', {report[part]["nvdec_share"]:.0%} by NVDEC'
                     if 'nvdec_share' in report[part] else '')
            print(f'{part}: {report[part]["clips_per_s"]} clips/s{extra}')
    for row in report.get('compare', []):
        print(f'{osp.basename(row["video"])}: ' + ', '.join(
            f'{k} {v}' for k, v in row.items() if k != 'video'))
    if args.out:
        safe_io = load_light('models.utils.safe_io')
        with safe_io.atomic_write(args.out, 'w') as f:
            json.dump(report, f, indent=1)
            f.write('\n')
        print(f'Wrote {args.out}')
    return status


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse, check, run; exit status 2 for bad arguments."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_args(args)
    except CliError as error:
        print(f'{parser.prog}: error: {error}', file=sys.stderr)
        return 2
    return run(args)


if __name__ == '__main__':
    sys.exit(main())

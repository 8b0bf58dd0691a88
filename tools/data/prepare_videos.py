"""Resize and re-encode videos for fast decoding (H.264, a key frame every
16 frames with --dense), checked, with the annotation list of the new
folder. Through PyAV: no FFmpeg program is needed.

Examples (from the project root)::

    python tools/data/prepare_videos.py data/kinetics400/videos_val \\
        data/kinetics400/videos_val_256 --level 2 --dense --scale 256 \\
        --ann-file data/kinetics400/kinetics400_val_list_videos.txt
    python tools/data/prepare_videos.py data/ucf101/videos \\
        data/ucf101/videos_340x256 --level 2 --ext avi --size 340x256 \\
        --dense --label-map my_ucf101_classes.txt

Each output keeps its source's path below the output folder, with the
extension .mp4; audio is dropped, the display rotation applied. Outputs
are written whole or not at all and checked (decoded whole; the source's
frame count and duration): a re-run skips those that pass. The list
(--out-list, by default in the output folder) has the lines of --ann-file
with the new names, or, with --label-map, one line per video of the class
folders; an existing list is never written over. Exit status: 0, 1 when a
video failed (each is named with the reason), 2 for a wrong argument.
"""
import argparse
import functools
import multiprocessing
import os
import os.path as osp
import sys
from typing import Optional, Sequence

# tools/, for light_imports (this script sits one folder below it).
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from light_imports import load_light  # noqa: E402

prepare = load_light('models.datasets.prepare')


def build_parser() -> argparse.ArgumentParser:
    """The command line of this tool."""
    parser = load_light('models.apis.cli').tool_parser(__doc__)
    add = parser.add_argument
    add('src_dir', help='folder of the source videos')
    add('dst_dir', help='output folder (created; not the source folder)')
    add('--ann-file', help="the sources' MMAction2 list (paths relative to "
        'src_dir): prepares the listed videos and writes the same lines '
        'with the new names')
    add('--label-map', help='class names, line i for label i: lists the '
        'videos of the class folders (--level 2) with their labels')
    add('--out-list', help='the new list (default: DST_DIR/<name of '
        '--ann-file>, or DST_DIR/list_videos.txt with --label-map)')
    add('--level', type=int, choices=(1, 2), default=2,
        help='folder depth of the videos without --ann-file: 1 '
        '(src/*.ext) or 2 (src/<class>/*.ext) (default: 2)')
    add('--ext', nargs='+', default=list(prepare.VIDEO_EXTS),
        help='source extensions looked for without --ann-file (default: '
        'common video extensions)')
    add('--scale', type=int, default=256,
        help='short side of the outputs, the long side in proportion '
        '(default: 256)')
    add('--size', help='WxH: a fixed output size instead of --scale, '
        'e.g. 340x256')
    add('--keep-size', action='store_true', help="keep each video's size "
        '(odd sides cut by one pixel): only re-encode')
    add('--dense', action='store_true', help='a key frame every '
        f'{prepare.DENSE_GOP} frames (fast random access)')
    add('--gop', type=int, help="a key frame every GOP frames (default: "
        "libx264's choice, at most every 250 frames, or 16 with --dense)")
    add('--crf', type=int, default=23, help="libx264's quality, 0-51, lower "
        'is better and larger (default: 23)')
    add('--preset', default='medium', help="libx264's speed preset "
        '(default: medium)')
    cpus = (len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
            else os.cpu_count() or 1)
    add('--num-worker', type=int, default=cpus,
        help='processes, one per core (default: the CPUs this process may '
        'use, here %(default)s)')
    return parser


def parse_size(text: Optional[str]):
    """``(width, height)`` of ``WxH``, even sides; None for None."""
    if text is None:
        return None
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise prepare.PrepareError(f'--size {text!r}: give WxH, e.g. '
                                   '340x256') from None
    if width < 2 or height < 2 or width % 2 or height % 2:
        raise prepare.PrepareError(f'--size {text!r}: both sides must be '
                                   'even and at least 2 (H.264, yuv420p)')
    return width, height


def check_args(args: argparse.Namespace):
    """The jobs, list rows and list path; PrepareError for a wrong one."""
    error = prepare.PrepareError
    size = parse_size(args.size)
    if args.keep_size and size is not None:
        raise error('give --keep-size or --size, not both')
    if size is None and not args.keep_size and (args.scale < 2
                                                or args.scale % 2):
        raise error(f'--scale {args.scale}: give an even short side >= 2')
    if args.gop is not None and args.gop < 1:
        raise error(f'--gop {args.gop}: give a key-frame interval >= 1')
    if args.dense and args.gop is not None:
        raise error('give --dense or --gop, not both')
    if not 0 <= args.crf <= 51:
        raise error(f'--crf {args.crf}: give a value from 0 to 51')
    if args.num_worker < 1:
        raise error(f'--num-worker {args.num_worker}: give 1 or more')
    if args.ann_file and args.label_map:
        raise error('give --ann-file or --label-map, not both')
    for name in ('src_dir', 'ann_file', 'label_map'):
        path = getattr(args, name)
        kind = osp.isdir if name == 'src_dir' else osp.isfile
        if path is not None and not kind(path):
            raise error(f'{name.replace("_", "-")} {path!r} does not exist')
    if osp.exists(args.dst_dir) and not osp.isdir(args.dst_dir):
        raise error(f'dst_dir {args.dst_dir!r} is a file; give a folder')
    if args.ann_file:
        rows = prepare.read_list(args.ann_file)
    else:
        rels = prepare.find_sources(args.src_dir, args.level, args.ext,
                                    exclude=args.dst_dir)
        if not rels:
            exts = '/'.join(f'.{e}' for e in args.ext)
            raise error(f'src_dir {args.src_dir!r} holds no {exts} file '
                        f'{args.level} folder(s) down (see --level, --ext)')
        if args.label_map and args.level != 2:
            raise error('--label-map needs class folders: --level 2')
        rows = (prepare.rows_from_folders(rels, args.label_map)
                if args.label_map else [[rel] for rel in rels])
    missing = [r[0] for r in rows
               if not osp.isfile(osp.join(args.src_dir, r[0]))]
    if missing:
        raise error(f'{len(missing)} listed video(s) are not in '
                    f'{args.src_dir!r}, e.g. {missing[0]!r}')
    jobs = prepare.plan_jobs(args.src_dir, args.dst_dir, [r[0] for r in rows])
    out_list = args.out_list
    if out_list is None and (args.ann_file or args.label_map):
        out_list = osp.join(args.dst_dir, osp.basename(
            args.ann_file) if args.ann_file else 'list_videos.txt')
    if out_list:
        if not (args.ann_file or args.label_map):
            raise error('--out-list needs --ann-file or --label-map')
        prepare.check_list_path(out_list, prepare.list_lines(rows))
    return size, jobs, rows, out_list


def _work(job, options):
    """Prepare one video in a worker process."""
    src, dst = job
    return src, dst, *prepare.prepare_one(src, dst, **options)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Prepare the videos; see the module docstring for the exit status."""
    args = build_parser().parse_args(argv)
    try:
        size, jobs, rows, out_list = check_args(args)
        os.makedirs(args.dst_dir, exist_ok=True)
    except (prepare.PrepareError, OSError) as error:
        print(f'prepare_videos.py: error: {error}', file=sys.stderr)
        return 2
    from tqdm import tqdm
    options = dict(scale=None if size or args.keep_size else args.scale,
                   size=size, crf=args.crf, preset=args.preset,
                   gop=prepare.DENSE_GOP if args.dense else args.gop)
    counts, failed = dict(done=0, skipped=0, failed=0), {}
    with multiprocessing.get_context('fork').Pool(
            min(args.num_worker, len(jobs))) as pool:
        for src, dst, status, reason in tqdm(
                pool.imap_unordered(functools.partial(
                    _work, options=options), jobs), total=len(jobs),
                unit='video', desc='prepare'):
            counts[status] += 1
            if reason:
                failed[src] = reason
    for src, reason in sorted(failed.items()):
        print(f'FAILED {src}: {reason}', file=sys.stderr)
    print(f"{counts['done']} prepared, {counts['skipped']} already done, "
          f"{counts['failed']} failed -> {args.dst_dir}")
    if out_list:
        bad = {osp.relpath(src, args.src_dir) for src in failed}
        lines = prepare.list_lines(
            [r for r in rows if osp.normpath(r[0]) not in bad])
        if prepare.write_list(out_list, lines):
            left = f' ({len(bad)} failed left out)' if bad else ''
            print(f'annotation list: {out_list}{left}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())

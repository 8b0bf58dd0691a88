"""Find when something happens in long videos: slide windows over each
video, embed each window once, score every query, and print the segments
where a query scores high.

Window features are cached in the user's cache folder
(``$XDG_CACHE_HOME/actionclip/moments``, else ``~/.cache/actionclip``), per
video or folder, model, window and stride; asking
another question of the same videos decodes and embeds nothing again, and
a new video in the folder embeds only that video. Videos are decoded in
one streamed pass, in chunks: memory does not grow with their length.
Scores are the probability the model gives a query among the queries and
its own labels (``--background``); docs/find_moments.md says how windows,
scores and segments are defined.

Examples (from the project root)::

    python tools/find_moments.py long.mp4 "a circle shrinking" \\
        "a square moving up" --model work_dirs/quickstart/best.pth
    python tools/find_moments.py recordings/ "someone juggling balls" \\
        --window 4 --stride 2 --topk 3 --out moments.json \\
        --plot moments_plots/ --html moments.html

The model and running options are those of ``tools/zero_shot.py``; here
``--batch-size`` counts windows. Exit status: 0 when every video was
searched; 1 when some could not be read (the others are still searched;
the failures are listed at the end); 2 when an argument or input is wrong
or the model cannot be loaded.
"""
import argparse
import math
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from light_imports import load_light  # noqa: E402

_cli = load_light('models.apis.cli')
CliError = _cli.CliError
add_model_arguments = _cli.add_model_arguments
check_model_args = _cli.check_model_args
check_output_path = _cli.check_output_path
check_video_paths = _cli.check_video_paths
load_model_from_args = _cli.load_model_from_args
report_failures = _cli.report_failures
report_skipped = _cli.report_skipped
run_cli = _cli.run_cli

OUT_FORMATS = ('.json', '.csv')
HTML_FORMATS = ('.html', '.htm')

#: Suffixes of the ``--plot`` files of a video.
TIMELINE_SUFFIX = '_timeline.png'
SHEET_SUFFIX = '_segments.jpg'


def build_parser() -> argparse.ArgumentParser:
    """The command line of this tool.

    Returns:
        argparse.ArgumentParser: The parser.
    """
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        epilog=__doc__.split('\n\n', 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        'video',
        metavar='VIDEO_OR_FOLDER',
        help='a video file, or a folder walked with its subfolders for '
        '.mp4, .avi, .mkv, .webm, .mov ... files')
    parser.add_argument(
        'queries',
        nargs='+',
        metavar='QUERY',
        help='what to look for, in words; several queries compete for '
        'each window')
    parser.add_argument(
        '--window',
        type=float,
        default=None,
        metavar='SECONDS',
        help="window length (default: the model's frame count / 2 "
        'seconds, at least 1: 4 s for 8-frame models, 2 s for the '
        "quickstart's 4-frame model)")
    parser.add_argument(
        '--stride',
        type=float,
        default=None,
        metavar='SECONDS',
        help='step between window starts, at most the window (default: '
        'half the window)')
    parser.add_argument(
        '--window-frames',
        type=int,
        default=None,
        metavar='N',
        help='windows of N frames every N/2 frames, per video whatever its '
        'frame rate, instead of --window and --stride (e.g. the length of '
        "the model's training clips: 30 for the generated actions)")
    parser.add_argument(
        '--subtract-still',
        action='store_true',
        help="score = the window's score minus that of its middle frame "
        'held still (the scene alone): removes confident scores of still '
        'scenes, but also the appearance evidence of a query (one more '
        'forward pass per window; no more decoding)')
    parser.add_argument(
        '--threshold',
        type=float,
        default=None,
        help='lowest window score in a segment (default 0.5 for '
        'probabilities, also with --subtract-still; required when the '
        'score is a cosine similarity: one query and no background '
        'labels)')
    parser.add_argument(
        '--topk',
        type=int,
        default=5,
        help='segments shown per query and video, best first (default 5)')
    parser.add_argument(
        '--background',
        metavar='LABEL_FILE',
        help='labels the queries compete with, one a line (default: the '
        "model's own labels, when it has any)")
    parser.add_argument(
        '--no-background',
        action='store_true',
        help='let the queries compete only with each other (one query '
        'alone is then scored by cosine similarity)')
    parser.add_argument(
        '--cache',
        help='the window feature cache file (default: one per video or '
        'folder in $XDG_CACHE_HOME/actionclip/moments, else '
        '~/.cache/actionclip/moments)')
    parser.add_argument(
        '--no-cache',
        action='store_true',
        help='embed every window again and write no cache')
    parser.add_argument(
        '--chunk-frames',
        type=int,
        default=32,
        metavar='N',
        help='frames decoded at a time; memory holds at most this many '
        'decoded frames plus those that the windows overlapping one window '
        'take (default 32)')
    parser.add_argument(
        '--out',
        help='also write the result to a .json file (windows, scores and '
        'segments of every video) or a .csv file (one row per segment: '
        'video, query, rank, start_s, end_s, score, peak_s)')
    parser.add_argument(
        '--plot',
        metavar='DIR',
        help='write <video name>_timeline.png (each query\'s score over '
        'time, segments shaded) and <video name>_segments.jpg (frames of '
        'the top segments) per video into DIR')
    parser.add_argument(
        '--html',
        metavar='PAGE.html',
        help='write one self-contained report page: thumbnails, the '
        'timelines, and the video, which seeks to a segment on click')
    add_model_arguments(parser)
    for action in parser._actions:
        # The shared running options, as they apply here.
        if action.dest == 'batch_size':
            action.help = 'windows per forward pass (default 8)'
        elif action.dest == 'workers':
            action.help = ('not used: each video is decoded in one '
                           'streamed pass in this process; only 0 is '
                           'accepted')
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Check what needs no model or package, before torch is imported, so
    that a wrong argument answers at once.

    Args:
        args (argparse.Namespace): Parsed arguments.
    """
    if args.topk < 1:
        raise CliError(f'--topk must be >= 1, got {args.topk}')
    for option, value in (('--window', args.window), ('--stride',
                                                      args.stride)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise CliError(f'{option} must be a positive number of seconds'
                           f', got {value}')
    if args.window is not None and args.stride is not None \
            and args.stride > args.window:
        raise CliError(f'--stride {args.stride:g} is longer than --window '
                       f'{args.window:g}: the video between windows would '
                       'never be looked at')
    if args.window_frames is not None:
        if args.window_frames < 2:
            raise CliError(f'--window-frames must be >= 2, got '
                           f'{args.window_frames}')
        if args.window is not None or args.stride is not None:
            raise CliError('--window-frames replaces --window and --stride: '
                           'give one or the other')
    if args.threshold is not None and not math.isfinite(args.threshold):
        raise CliError(f'--threshold must be a number, got {args.threshold}')
    if args.chunk_frames < 1:
        raise CliError(f'--chunk-frames must be >= 1, got '
                       f'{args.chunk_frames}')
    seen = {}
    for query in args.queries:
        if not query.strip():
            raise CliError('A query is empty: describe what to look for')
        key = ' '.join(query.casefold().split())
        if key in seen:
            raise CliError(f'The queries {seen[key]!r} and {query!r} are the '
                           'same text: give each once')
        seen[key] = query
    if args.no_cache and args.cache:
        raise CliError('--cache and --no-cache contradict each other')
    if args.no_background and args.background:
        raise CliError('--background and --no-background contradict each '
                       'other')
    if args.background is not None and not osp.isfile(args.background):
        kind = load_light('models.utils.paths').special_file_kind(
            args.background)
        raise CliError(f'--background {args.background!r}'
                       + (f' is {kind}, not a regular file' if kind else
                          ': no such file')
                       + ' (give a file of one label a line)')
    if args.workers:
        raise CliError('--workers is not used by find_moments: each video '
                       'is decoded in one streamed pass in this process')
    check_output_path(args.out, OUT_FORMATS, '--out')
    check_output_path(args.html, HTML_FORMATS, '--html')
    check_not_the_cache(args, args.cache)
    if args.plot is not None and osp.exists(args.plot) \
            and not osp.isdir(args.plot):
        raise CliError(f'--plot {args.plot!r} is a file; give a folder '
                       '(created if missing)')
    check_model_args(args)
    check_video_paths([args.video], load_light('models.apis.video_files'))


def check_not_the_cache(args: argparse.Namespace,
                        cache: Optional[str]) -> None:
    """Refuse ``--out`` or ``--html`` naming the cache file, also one that
    does not exist yet: the run writes the cache, then the output over it.

    Args:
        args (argparse.Namespace): Parsed arguments.
        cache (str, optional): The cache file.
    """
    if cache is None:
        return
    for option, path in (('--out', args.out), ('--html', args.html)):
        if path is not None and osp.realpath(path) == osp.realpath(cache):
            raise CliError(f'{option} {path!r} is the --cache file '
                           f'{cache!r}: the result would replace the cache '
                           'just written; choose another name for one of '
                           'them')


def plot_paths(folder: str, videos: Sequence[str]) -> Dict[str, tuple]:
    """The ``--plot`` files of each video: ``<stem>_timeline.png`` and
    ``<stem>_segments.jpg`` in ``folder``, numbered where stems repeat.

    Args:
        folder (str): The ``--plot`` folder.
        videos (list[str]): Every video to search (named over all of them,
            so that one that fails does not rename the others' files).

    Returns:
        dict: ``{video: (timeline path, contact sheet path)}``.
    """
    paths, used = {}, set()
    for video in videos:
        stem = osp.splitext(osp.basename(video))[0]
        name, n = stem, 1
        while name in used:
            n += 1
            name = f'{stem}_{n}'
        used.add(name)
        paths[video] = (osp.join(folder, name + TIMELINE_SUFFIX),
                        osp.join(folder, name + SHEET_SUFFIX))
    return paths


def prepare_outputs(args: argparse.Namespace, videos: Sequence[str],
                    cache: Optional[str]) -> Dict[str, tuple]:
    """Refuse outputs that would overwrite an input and create the
    ``--plot`` folder, before the model is loaded.

    Args:
        args (argparse.Namespace): Parsed arguments.
        videos (list[str]): Every video to search.
        cache (str, optional): The cache file (an input too).

    Returns:
        dict: :func:`plot_paths` (empty without ``--plot``).
    """
    from models.utils.safe_io import OutputPathError
    from models.utils.safe_io import check_output_path as check_writable
    check_not_the_cache(args, cache)
    plots = plot_paths(args.plot, videos) if args.plot else {}
    inputs = [
        *videos, cache, args.background, args.config, args.checkpoint,
        args.clip, args.model
    ]
    outputs = [('--out', args.out), ('--html', args.html)]
    outputs += [('--plot', path) for pair in plots.values() for path in pair]
    for option, path in outputs:
        if path is None:
            continue
        try:
            check_writable(path, inputs, option)
        except OutputPathError as error:
            raise CliError(str(error)) from None
    if args.plot:
        try:
            os.makedirs(args.plot, exist_ok=True)
        except OSError as error:
            raise CliError(f'--plot {args.plot!r}: cannot create the folder '
                           f'({error.strerror or error})') from None
    return plots


def draw(result: dict, plots: Dict[str, tuple], html: Optional[str],
         failures: Dict[str, str]) -> None:
    """Write the ``--plot`` pictures and the ``--html`` page from the
    result document (:mod:`models.visualization`); a picture
    that cannot be made is a failure of its video, not of the run.

    Args:
        result (dict): The result document.
        plots (dict): :func:`plot_paths`, empty without ``--plot``.
        html (str, optional): The page to write.
        failures (dict): ``{video: message}``, added to.
    """
    from models.visualization.contact_sheet import write_contact_sheet
    from models.visualization.frames import FrameReadError
    from models.visualization.html_report import write_moments_page
    from models.visualization.timeline import plot_timeline
    for video in result['videos'] if plots else []:
        timeline, sheet = plots[video['video']]
        try:
            plot_timeline(video, result['queries'], timeline,
                          threshold=result['threshold'],
                          score_name=result['score'])
            print(f'Wrote {timeline}', file=sys.stderr)
            write_contact_sheet(video, sheet, queries=result['queries'])
            print(f'Wrote {sheet}', file=sys.stderr)
        except (OSError, ValueError, FrameReadError) as error:
            failures[video['video']] = f'--plot: {error}'
    if html:
        write_moments_page(result, html)
        print(f'Wrote {html}', file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Find the moments; see the module docstring for the exit status.

    Args:
        args (argparse.Namespace): Parsed arguments.

    Returns:
        int: The exit status.
    """
    from models.apis.feature_cache import check_cache_path
    from models.apis.moments import (background_warnings_printed,
                                     find_moments, format_segments,
                                     write_result)
    from models.apis.video_scoring import find_videos
    from models.apis.window_cache import default_window_cache_path
    from models.text.prompts import load_labels
    if args.plot or args.html:  # before any work: fails if missing
        import models.visualization.contact_sheet  # noqa: F401
        import models.visualization.html_report  # noqa: F401
        import models.visualization.timeline  # noqa: F401
    unlisted: Dict[str, str] = {}
    videos = find_videos([args.video], unreadable=unlisted)
    for name, message in unlisted.items():
        report_skipped(name, OSError(message))
    cache = None if args.no_cache else (
        args.cache or default_window_cache_path(args.video))
    if cache is not None:  # refused, or its folder made, before the work
        cache = check_cache_path(cache)
    plots = prepare_outputs(args, videos, cache)
    background: Optional[List[str]] = None
    if args.background:
        background = load_labels(args.background)
    elif args.no_background:
        background = []
    scorer = load_model_from_args(args)
    info: dict = {}
    with background_warnings_printed('find_moments.py'):
        result = find_moments(
            scorer,
            videos,
            args.queries,
            window_s=args.window,
            stride_s=args.stride,
            threshold=args.threshold,
            topk=args.topk,
            cache_path=cache,
            batch_size=args.batch_size,
            progress=not args.no_progress,
            on_failure=report_skipped,
            background=background,
            chunk_frames=args.chunk_frames,
            info=info,
            window_frames=args.window_frames,
            subtract_still=args.subtract_still)
    result['failures'] = {**unlisted, **result['failures']}
    stats = info['stats']
    if stats.cache_path:
        unwritten = stats.computed and not stats.saved
        where = (f', {len(stats.reused)} videos from the cache '
                 f'{stats.cache_path}{" (not written)" if unwritten else ""}')
    else:
        where = ' (no cache)'
    if result['window_frames']:
        windows = (f'window {result["window_frames"]} frames, stride '
                   f'{result["stride_frames"]} frames')
    else:
        windows = (f'window {result["window_s"]:g} s, stride '
                   f'{result["stride_s"]:g} s')
    print(f'Windows: {stats.windows} embedded from {len(stats.computed)} '
          f'videos{where}; {windows}; score: {result["score"]}, threshold '
          f'{result["threshold"]:g}',
          file=sys.stderr)
    if result['videos']:
        print(format_segments(result))
    if args.out:
        write_result(args.out, result)
        print(f'Wrote {args.out}', file=sys.stderr)
    failures = dict(result['failures'])
    draw(result, plots, args.html, failures)
    return report_failures(failures, len(videos) + len(unlisted))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse the command line and run; errors become one line and exit 2.

    Args:
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` by default.

    Returns:
        int: The exit status.
    """
    return run_cli(build_parser(), run, argv, check_args)


if __name__ == '__main__':
    sys.exit(main())

"""``tools/find_moments.py`` as a command: its outputs checked before the
model loads, the search run, its summary printed and its pictures drawn.

Only the standard library at import (the tool reads this file before
torch is imported, for its checks and ``--help``); the plugin's
standard-library modules are imported relatively, the rest by their full
name when the command runs.
"""
import argparse
import os
import os.path as osp
import sys
from typing import Callable, Dict, List, Optional, Sequence

from .cli import (CliError, check_writable, load_model_from_args,
                  report_failures, report_skipped)

#: Suffixes of the ``--plot`` files of a video.
TIMELINE_SUFFIX = '_timeline.png'
SHEET_SUFFIX = '_segments.jpg'


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
    check_not_the_cache(args, cache)
    plots = plot_paths(args.plot, videos) if args.plot else {}
    check_writable(
        [('--out', args.out), ('--html', args.html)]
        + [('--plot', path) for pair in plots.values() for path in pair],
        [*videos, cache, args.background, args.config, args.checkpoint,
         args.clip, args.model])
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


def summary(result: dict, stats) -> str:
    """The line telling what a search embedded, from where, and how.

    Args:
        result (dict): The result document.
        stats (models.apis.moments.WindowStats): What the search did.

    Returns:
        str: One line.
    """
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
    return (f'Windows: {stats.windows} embedded from {len(stats.computed)} '
            f'videos{where}; {windows}; score: {result["score"]}, threshold '
            f'{result["threshold"]:g}')


def run(args: argparse.Namespace,
        load_model: Callable = load_model_from_args) -> int:
    """Find the moments; ``tools/find_moments.py`` tells the exit status.

    Args:
        args (argparse.Namespace): Parsed arguments.
        load_model (callable): Loads the model the arguments name, after
            the outputs are checked.

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
    scorer = load_model(args)
    info: dict = {}
    with background_warnings_printed('find_moments.py'):
        result = find_moments(
            scorer, videos, args.queries, window_s=args.window,
            stride_s=args.stride, threshold=args.threshold, topk=args.topk,
            cache_path=cache, batch_size=args.batch_size,
            progress=not args.no_progress, on_failure=report_skipped,
            background=background, chunk_frames=args.chunk_frames, info=info,
            window_frames=args.window_frames,
            subtract_still=args.subtract_still)
    result['failures'] = {**unlisted, **result['failures']}
    print(summary(result, info['stats']), file=sys.stderr)
    if result['videos']:
        print(format_segments(result))
    if args.out:
        write_result(args.out, result)
        print(f'Wrote {args.out}', file=sys.stderr)
    failures = dict(result['failures'])
    draw(result, plots, args.html, failures)
    return report_failures(failures, len(videos) + len(unlisted))

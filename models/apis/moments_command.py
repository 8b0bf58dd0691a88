"""``tools/find_moments.py`` as a command: outputs checked before the model
loads, the search run, its summary printed and its pictures drawn.
Standard library only at import (the tool reads it before torch)."""
import argparse
import os.path as osp
import sys
from typing import Callable, Dict, List, Optional, Sequence

from ..utils.paths import unique_names
from .cli import (CliError, check_writable, load_model_from_args,
                  report_failures, report_skipped)


def check_not_the_cache(args: argparse.Namespace,
                        cache: Optional[str]) -> None:
    """Refuse ``--out`` or ``--html`` naming the cache file."""
    for option, path in (('--out', args.out), ('--html', args.html)):
        if None not in (path, cache) and \
                osp.realpath(path) == osp.realpath(cache):
            raise CliError(f'{option} {path!r} is the --cache file '
                           f'{cache!r}: the result would replace the cache '
                           'just written; choose another name for one of '
                           'them')


def plot_paths(folder: str, videos: Sequence[str]) -> Dict[str, tuple]:
    """``{video: (timeline path, contact sheet path)}`` in ``folder``,
    ``<stem>_2`` ... where stems repeat; named over every video, so one
    that fails does not rename the others' files."""
    return {video: (osp.join(folder, name + '_timeline.png'),
                    osp.join(folder, name + '_segments.jpg'))
            for video, name in unique_names(videos).items()}


def _prepare_outputs(args: argparse.Namespace, videos: Sequence[str],
                     cache: Optional[str]) -> Dict[str, tuple]:
    """Check the outputs and create their folders; the plots."""
    check_not_the_cache(args, cache)
    plots = plot_paths(args.plot, videos) if args.plot else {}
    check_writable(
        [('--out', args.out), ('--html', args.html)]
        + [('--plot', path) for pair in plots.values() for path in pair],
        [*videos, cache, args.background, args.config, args.checkpoint,
         args.clip, args.model])
    return plots


def _draw(result: dict, plots: Dict[str, tuple], html: Optional[str],
          failures: Dict[str, str]) -> None:
    """Write the ``--plot`` pictures (one that fails is its video's
    failure) and the ``--html`` page."""
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


def number(value: Optional[float]) -> str:
    """A setting as printed: ``'%g'``, or ``'?'`` when it is missing."""
    return '?' if value is None else f'{value:g}'


def window_text(document: dict) -> str:
    """``window W s, stride S s`` (or ``... frames``) of a document."""
    if document.get('window_frames'):
        return (f'window {document["window_frames"]} frames, stride '
                f'{document["stride_frames"]} frames')
    return (f'window {number(document["window_s"])} s, stride '
            f'{number(document["stride_s"])} s')


def _summary(result: dict, stats) -> str:
    """The line telling what a search embedded, from where, and how."""
    if stats.cache_path:
        unwritten = stats.computed and not stats.saved
        where = (f', {len(stats.reused)} videos from the cache '
                 f'{stats.cache_path}{" (not written)" if unwritten else ""}')
    else:
        where = ' (no cache)'
    return (f'Windows: {stats.windows} embedded from {len(stats.computed)} '
            f'videos{where}; {window_text(result)}; score: '
            f'{result["score"]}, threshold {result["threshold"]:g}')


def search_options(args: argparse.Namespace) -> dict:
    """``find_moments``' keyword arguments from a tool's options."""
    return dict(window_s=args.window, stride_s=args.stride,
                threshold=args.threshold, topk=args.topk,
                batch_size=args.batch_size, progress=not args.no_progress,
                on_failure=report_skipped, window_frames=args.window_frames,
                subtract_still=args.subtract_still)


def run(args: argparse.Namespace,
        load_model: Callable = load_model_from_args) -> int:
    """Find the moments; returns the exit status (``load_model(args)``
    runs after the outputs are checked)."""
    from models.apis.feature_cache import check_cache_path
    from models.apis.moments import (background_warnings_printed,
                                     find_moments, format_segments,
                                     write_result)
    from models.apis.video_scoring import find_videos
    from models.apis.feature_cache import default_window_cache_path
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
    plots = _prepare_outputs(args, videos, cache)
    background: Optional[List[str]] = (
        load_labels(args.background) if args.background else
        [] if args.no_background else None)
    scorer = load_model(args)
    info: dict = {}
    with background_warnings_printed('find_moments.py'):
        result = find_moments(scorer, videos, args.queries, cache_path=cache,
                              background=background, info=info,
                              chunk_frames=args.chunk_frames,
                              **search_options(args))
    result['failures'] = {**unlisted, **result['failures']}
    print(_summary(result, info['stats']), file=sys.stderr)
    if result['videos']:
        print(format_segments(result))
    if args.out:
        write_result(args.out, result)
        print(f'Wrote {args.out}', file=sys.stderr)
    failures = dict(result['failures'])
    _draw(result, plots, args.html, failures)
    return report_failures(failures, len(videos) + len(unlisted))

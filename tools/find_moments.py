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
import os.path as osp
import sys

from light_imports import load_light

cli = load_light('models.apis.cli')
CliError = cli.CliError
# The command's work, read without torch; plot_paths is also this module's.
command = load_light('models.apis.moments_command')
plot_paths = command.plot_paths
load_model_from_args = cli.load_model_from_args


def build_parser() -> argparse.ArgumentParser:
    """The command line of this tool."""
    parser = cli.tool_parser(__doc__)
    parser.add_argument(
        'video', metavar='VIDEO_OR_FOLDER',
        help='a video file, or a folder walked with its subfolders for '
        '.mp4, .avi, .mkv, .webm, .mov ... files')
    parser.add_argument(
        'queries', nargs='+', metavar='QUERY',
        help='what to look for, in words; several queries compete for '
        'each window')
    cli.add_window_arguments(parser)
    parser.add_argument(
        '--topk', type=int, default=5,
        help='segments shown per query and video, best first (default 5)')
    parser.add_argument(
        '--background', metavar='LABEL_FILE',
        help='labels the queries compete with, one a line (default: the '
        "model's own labels, when it has any)")
    parser.add_argument(
        '--no-background', action='store_true',
        help='let the queries compete only with each other (one query '
        'alone is then scored by cosine similarity)')
    parser.add_argument(
        '--cache',
        help='the window feature cache file (default: one per video or '
        'folder in $XDG_CACHE_HOME/actionclip/moments, else '
        '~/.cache/actionclip/moments)')
    parser.add_argument('--no-cache', action='store_true',
                        help='embed every window again and write no cache')
    parser.add_argument(
        '--chunk-frames', type=int, default=32, metavar='N',
        help='frames decoded at a time; memory holds at most this many '
        'decoded frames plus those that the windows overlapping one window '
        'take (default 32)')
    parser.add_argument(
        '--out',
        help='also write the result to a .json file (windows, scores and '
        'segments of every video) or a .csv file (one row per segment: '
        'video, query, rank, start_s, end_s, score, peak_s)')
    parser.add_argument(
        '--plot', metavar='DIR',
        help='write <video name>_timeline.png (each query\'s score over '
        'time, segments shaded) and <video name>_segments.jpg (frames of '
        'the top segments) per video into DIR')
    parser.add_argument(
        '--html', metavar='PAGE.html',
        help='write one self-contained report page: thumbnails, the '
        'timelines, and the video, which seeks to a segment on click')
    cli.add_model_arguments(parser, windows=True)
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Check what needs no model, before torch is imported."""
    cli.check_minimums(('--topk', args.topk, 1),
                       ('--chunk-frames', args.chunk_frames, 1))
    cli.check_window_args(args)
    try:
        cli.check_queries(args.queries)
    except ValueError as error:
        raise CliError(str(error)) from None
    for name in ('cache', 'background'):
        if getattr(args, name) and getattr(args, f'no_{name}'):
            raise CliError(f'--{name} and --no-{name} contradict each other')
    cli.check_input_file('--background', args.background,
                         ' (give a file of one label a line)')
    cli.check_output_path(args.out, ('.json', '.csv'), '--out')
    cli.check_output_path(args.html, ('.html', '.htm'), '--html')
    command.check_not_the_cache(args, args.cache)
    if args.plot is not None and osp.exists(args.plot) \
            and not osp.isdir(args.plot):
        raise CliError(f'--plot {args.plot!r} is a file; give a folder '
                       '(created if missing)')
    cli.check_model_args(args)
    cli.check_video_paths([args.video], load_light('models.apis.video_files'))


# The model loader is looked up at each run (a test replaces it).
main = cli.tool_main(
    build_parser, lambda args: command.run(args, load_model_from_args),
    check_args)

if __name__ == '__main__':
    sys.exit(main())

"""Zero-shot action recognition from the command line: score videos against
labels you type, with no training.

Examples (from the project root)::

    python tools/zero_shot.py my_video.mp4 \
        --labels "juggling balls,riding a unicycle,reading a book"
    python tools/zero_shot.py videos/ --label-file labels.txt --topk 3 \\
        --out results.csv --viz annotated.mp4
    python tools/zero_shot.py small.mp4 --labels "..." --viz small.gif \\
        --target-resolution 480 -1 --font-scale 0.6
    python tools/zero_shot.py my_video.mp4 --labels "..." --clip ViT-B/32
    python tools/zero_shot.py my_video.mp4 --labels "..." \\
        --config CONFIG.py --checkpoint work_dirs/.../best.pth

Exit status: 0 when every video was scored; 1 when some videos could not be
read (the others are still scored, printed and written; the failures are
listed at the end); 2 when an argument or input is wrong or the model cannot
be loaded (nothing is scored).
"""
import argparse
import sys
from typing import Dict, List

from light_imports import load_light

cli = load_light('models.apis.cli')
CliError = cli.CliError
DEFAULT_MODEL = cli.DEFAULT_MODEL
load_model_from_args = cli.load_model_from_args

# The --viz drawing (its limits name the options' defaults in --help),
# read without torch; its names are also this module's.
_viz = load_light('models.visualization.prediction_video')


def __getattr__(name: str):
    return getattr(_viz, name)


def read_labels(args: argparse.Namespace) -> List[str]:
    """The labels of ``--labels`` or ``--label-file``."""
    load_labels = load_light('models.text.prompts').load_labels
    if args.labels is not None and args.label_file is not None:
        raise CliError('Give --labels or --label-file, not both')
    if args.label_file is not None:
        return load_labels(args.label_file)
    if args.labels is None or not args.labels.strip(' ,'):
        raise CliError(
            'No labels: pass --labels "label one,label two" or --label-file '
            'FILE (one label per line)')
    labels = [label.strip() for label in args.labels.split(',')]
    if '' in labels:
        raise CliError(f'--labels {args.labels!r} has an empty label '
                       '(two commas in a row?); labels with commas need '
                       '--label-file')
    return load_labels(labels)


def build_parser() -> argparse.ArgumentParser:
    """The command line of this tool."""
    parser = cli.tool_parser(__doc__, last=True)
    parser.add_argument(
        'videos', nargs='+', metavar='VIDEO_OR_FOLDER',
        help='video files, or folders walked for .mp4, .avi, .mkv, .webm, '
        '.mov ... files')
    parser.add_argument(
        '--labels', help='comma-separated labels: "juggling,reading a book"')
    parser.add_argument('--label-file', help='a file with one label a line')
    parser.add_argument(
        '--template', action='append',
        help="prompt template with {} for the label, e.g. 'a video of {}'; "
        "repeat for an ensemble, or give a file of one template a line "
        "(default: the model's templates, ActionCLIP's 16)")
    parser.add_argument('--topk', type=int, default=5,
                        help='labels shown per video (default 5)')
    parser.add_argument(
        '--out', help='also write the results to a .json or .csv file')
    parser.add_argument(
        '--viz',
        help='write each video with its top-k in a band under it (.mp4 or '
        '.gif; with several videos, one file each: OUT_<video name>.mp4). '
        'MP4 is H.264 where this OpenCV can encode it, else MPEG-4 Part 2 '
        '(mp4v); the Wrote line names the codec. GIFs '
        f'are scaled down to {_viz.GIF_MAX_SIDE} pixels a side, at most '
        f'{_viz.GIF_MAX_FPS} frames a second and {_viz.GIF_MAX_FRAMES} frames')
    parser.add_argument(
        '--font-scale', type=float, default=None,
        help='OpenCV font scale of the --viz text (default: follows the '
        f'frame width, at least {_viz.MIN_FONT_SCALE})')
    parser.add_argument(
        '--target-resolution', nargs=2, type=int, default=None,
        metavar=('W', 'H'),
        help='size of the video in --viz files, -1 for one side keeping '
        "the aspect ratio, as in MMAction2's demo/demo.py (default: the "
        f'video\'s, scaled up to {_viz.VIZ_MIN_WIDTH} pixels wide when '
        'narrower); the text goes in a band under it')
    cli.add_model_arguments(parser)
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Check what needs no model, before torch is imported."""
    cli.check_minimums(('--topk', args.topk, 1))
    cli.check_output_path(args.out, ('.json', '.csv'), '--out')
    cli.check_output_path(args.viz, ('.mp4', '.gif'), '--viz')
    if args.font_scale is not None and not 0 < args.font_scale <= 20:
        raise CliError(f'--font-scale must be in (0, 20], got '
                       f'{args.font_scale}')
    target = args.target_resolution or [1, 1]
    if any(side == 0 or side < -1 for side in target) or target == [-1, -1]:
        raise CliError('--target-resolution W H: positive sizes, or -1 for '
                       f'one of them, got {target[0]} {target[1]}')
    # Inline labels and templates whole, files for being there.
    prompts = load_light('models.text.prompts')
    require_file = load_light('models.utils.paths').require_file
    try:
        if args.label_file is None or args.labels is not None:
            read_labels(args)
        else:
            require_file(args.label_file, '--label-file')
        templates = args.template or []
        if len(templates) == 1 and '{' not in templates[0] \
                and prompts.names_a_file(templates[0]):
            require_file(templates[0], '--template file')
        elif templates:
            prompts.load_templates(templates)
    except (OSError, ValueError) as error:
        raise CliError(str(error)) from None
    cli.check_model_args(args)
    cli.check_video_paths(args.videos, load_light('models.apis.video_files'))


def run(args: argparse.Namespace) -> int:
    """Score the videos; see the module docstring for the exit status."""
    from models.apis.predictions import format_table, write_results
    from models.apis.video_scoring import (embed_videos, find_videos,
                                           label_text_features, score_labels,
                                           top_k)
    from models.text.prompts import load_templates
    labels = read_labels(args)
    # One --template may name a file of templates, as the config's
    # template may; several are templates themselves.
    spec = args.template[0] if args.template and len(
        args.template) == 1 else args.template
    templates = load_templates(spec) if spec else None
    videos = find_videos(args.videos)
    # Named over all videos, so that a video that fails does not change the
    # others' file names; checked before the model loads.
    viz = _viz.viz_paths(args.viz, videos) if args.viz else {}
    cli.check_writable(
        [('--out', args.out)] + [('--viz', path) for path in viz.values()],
        [*videos, args.label_file, args.config, args.checkpoint, args.clip,
         args.model])
    scorer = load_model_from_args(args)
    templates = templates or scorer.templates
    text = label_text_features(scorer.model, labels, templates)
    features, failures = embed_videos(
        scorer, videos, args.batch_size, not args.no_progress,
        cli.report_skipped, cli.decode_workers(args, scorer.device))
    results: Dict[str, list] = {}
    if features:
        import torch
        probs = score_labels(torch.stack(list(features.values())), text,
                             float(scorer.model.logit_scale_at_test()))
        results = dict(zip(features, top_k(probs, labels, args.topk)))
    for video, predictions in results.items():
        print(format_table(video, predictions), end='\n\n')
    if args.out:
        write_results(
            args.out, results, failures,
            dict(model=scorer.describe(), labels=labels, templates=templates,
                 topk=min(args.topk, len(labels))))
        print(f'Wrote {args.out}', file=sys.stderr)
    for video, predictions in results.items() if args.viz else ():
        info: dict = {}
        try:
            _viz.write_annotated_video(video, viz[video], predictions,
                                       args.font_scale,
                                       args.target_resolution, args.verbose,
                                       info)
        except OSError as error:
            failures[video] = f'--viz: {error}'
            continue
        print(f'Wrote {viz[video]} ({info["codec"]})', file=sys.stderr)
    return cli.report_failures(failures, len(videos))


main = cli.tool_main(build_parser, run, check_args)


if __name__ == '__main__':
    sys.exit(main())

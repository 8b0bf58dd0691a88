"""Measure how well find_moments finds actions in long videos whose times
are known: segment recall and precision at temporal IoU thresholds, per
label and over all labels, for each set of videos.

Each ground-truth file (``tools/generate_videos.py --long N`` writes
``ground_truth_trained.json`` and ``ground_truth_zeroshot.json``) is one
set: its videos are searched with every label of the set as a query, in
one ``find_moments`` run, and the segments found are matched one to one to
the true ones (``models/evaluation/moment_metrics.py``). The time of each
run and the windows embedded per second are reported with the figures.
``--predictions`` evaluates saved ``find_moments.py --out`` documents
instead, without a model.

Examples (from the project root)::

    python tools/generate_videos.py --long 4 --long-minutes 3 \\
        --size-scale 0.667 --seed 1
    L=data/synthetic_actions/long
    python tools/eval_moments.py $L/ground_truth_trained.json \\
        $L/ground_truth_zeroshot.json --model work_dirs/quickstart/best.pth \\
        --out moments_report.json --results-dir moments_results
    python tools/eval_moments.py $L/ground_truth_zeroshot.json \\
        --label-file $L/label_map_all.txt --model CKPT   # 22 labels compete
    python tools/eval_moments.py $L/ground_truth_trained.json \\
        --predictions moments_results/trained.json

The model and running options are those of ``tools/zero_shot.py``
(``models/apis/cli.py``). Exit status: 0 when the figures are reported; 1
when a video could not be read (no figures: they would describe fewer
videos than the ground truth); 2 when an argument or input is wrong or the
model cannot be loaded.
"""
import argparse
import os.path as osp
import sys

from light_imports import load_light

# Standard-library modules, read before torch.
cli = load_light('models.apis.cli')
moments_eval = load_light('models.evaluation.moments_eval')
metrics = load_light('models.evaluation.moment_metrics')
CliError = cli.CliError

OUT_FORMATS = ('.json', '.csv')
#: Segments kept per query and video by default: every one found (a video
#: of a few minutes holds a few dozen actions).
DEFAULT_TOPK = 1000


def build_parser() -> argparse.ArgumentParser:
    """The command line of this tool."""
    parser = cli.tool_parser(__doc__)
    parser.add_argument(
        'ground_truth', nargs='+', metavar='GROUND_TRUTH',
        help='ground-truth JSON files of long videos (generate_videos.py '
        '--long writes them), one set each')
    cli.add_window_arguments(parser)
    parser.add_argument(
        '--topk', type=int, default=DEFAULT_TOPK,
        help='segments kept per query and video, best first (default '
        f'{DEFAULT_TOPK}: all of them)')
    parser.add_argument(
        '--iou', type=float, nargs='+',
        default=list(metrics.DEFAULT_IOU_THRESHOLDS), metavar='T',
        help='temporal IoU thresholds of a match (default: '
        f'{" ".join(map(str, metrics.DEFAULT_IOU_THRESHOLDS))}; 0.5 is '
        'the headline figure)')
    parser.add_argument(
        '--label-file',
        help='ask every label of this file (one a line) in every set, '
        "instead of the set's own labels: e.g. label_map_all.txt, where "
        'the held-out classes compete with the trained ones')
    parser.add_argument(
        '--predictions', nargs='+', metavar='RESULT',
        help='evaluate these find_moments.py --out JSON documents, one per '
        'GROUND_TRUTH in order, instead of running a model')
    parser.add_argument(
        '--cache',
        help='window-feature cache file for find_moments (default: none, '
        'so that the time measured includes decoding and embedding)')
    parser.add_argument(
        '--results-dir', metavar='DIR',
        help="also write each set's find_moments document there as "
        '<set>.json (what find_moments.py --out writes), for --predictions '
        'or pictures later')
    parser.add_argument(
        '--out',
        help='also write the report to a .json file (figures per set and '
        'label, timing, model, machine) or a .csv file (one row per set, '
        'label and IoU threshold); default: none')
    parser.add_argument(
        '--no-background', action='store_true',
        help="score among the queries only, without the model's own "
        "labels as background (find_moments' background=[])")
    cli.add_model_arguments(parser, windows=True)
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Check what needs no model, before torch; read the ground truth
    (``args.truths``) and the labels asked per set (``args.queries``)."""
    cli.check_minimums(('--topk', args.topk, 1))
    cli.check_window_args(args)
    if not all(0 < t <= 1 for t in args.iou):
        raise CliError(f'--iou thresholds must be in (0, 1], got '
                       f'{" ".join(map(str, args.iou))}')
    cli.check_output_path(args.out, OUT_FORMATS, '--out')
    if args.results_dir and osp.isfile(args.results_dir):
        raise CliError(f'--results-dir {args.results_dir!r} is a file; '
                       'give a folder')
    if args.predictions:
        if len(args.predictions) != len(args.ground_truth):
            raise CliError(
                f'--predictions gives {len(args.predictions)} documents for '
                f'{len(args.ground_truth)} GROUND_TRUTH files: give one per '
                'file, in the same order')
        model_options = [
            f'--{o.replace("_", "-")}'
            for o in ('model', 'config', 'checkpoint', 'clip', 'cache',
                      'results_dir', 'window', 'stride', 'window_frames',
                      'threshold', 'no_background', 'subtract_still')
            if getattr(args, o) not in (None, False)]
        if model_options:
            raise CliError('--predictions are evaluated as they are, '
                           f'without a model: leave out '
                           f'{", ".join(model_options)}')
    else:
        cli.check_model_args(args)
    try:
        args.truths = [moments_eval.read_ground_truth(path)
                       for path in args.ground_truth]
        args.queries = moments_eval.queries_of_sets(args.truths,
                                                    args.label_file)
    except ValueError as error:
        raise CliError(str(error)) from None


main = cli.tool_main(build_parser, moments_eval.run, check_args)


if __name__ == '__main__':
    sys.exit(main())

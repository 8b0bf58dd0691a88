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
import contextlib
import json
import math
import os
import os.path as osp
import platform
import re
import sys
import time
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
load_model_from_args = _cli.load_model_from_args
report_failures = _cli.report_failures
report_skipped = _cli.report_skipped
run_cli = _cli.run_cli
_metrics = load_light('models.evaluation.moment_metrics')

OUT_FORMATS = ('.json', '.csv')
#: Segments kept per query and video by default: every one found (a video
#: of a few minutes holds a few dozen actions).
DEFAULT_TOPK = 1000
CSV_HEADER = ('set', 'label', 'iou', 'num_truth', 'num_predicted',
              'matched', 'recall', 'precision', 'f1', 'mean_best_iou')


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
        'ground_truth',
        nargs='+',
        metavar='GROUND_TRUTH',
        help='ground-truth JSON files of long videos (generate_videos.py '
        '--long writes them), one set each')
    parser.add_argument(
        '--window',
        type=float,
        metavar='S',
        help="window length in seconds (default: find_moments' own, from "
        "the model's frame count)")
    parser.add_argument(
        '--stride',
        type=float,
        metavar='S',
        help="seconds between window starts (default: find_moments' own)")
    parser.add_argument(
        '--window-frames',
        type=int,
        metavar='N',
        help='windows of N frames every N/2 frames instead of --window and '
        '--stride (a length in seconds then depends on the frame rate, as '
        "the training clips' did: 20 to 40 frames for the generated "
        'actions)')
    parser.add_argument(
        '--threshold',
        type=float,
        help="lowest window score of a segment (default: find_moments' "
        'own)')
    parser.add_argument(
        '--topk',
        type=int,
        default=DEFAULT_TOPK,
        help='segments kept per query and video, best first (default '
        f'{DEFAULT_TOPK}: all of them)')
    parser.add_argument(
        '--iou',
        type=float,
        nargs='+',
        default=list(_metrics.DEFAULT_IOU_THRESHOLDS),
        metavar='T',
        help='temporal IoU thresholds of a match (default: '
        f'{" ".join(map(str, _metrics.DEFAULT_IOU_THRESHOLDS))}; 0.5 is '
        'the headline figure)')
    parser.add_argument(
        '--label-file',
        help='ask every label of this file (one a line) in every set, '
        "instead of the set's own labels: e.g. label_map_all.txt, where "
        'the held-out classes compete with the trained ones')
    parser.add_argument(
        '--predictions',
        nargs='+',
        metavar='RESULT',
        help='evaluate these find_moments.py --out JSON documents, one per '
        'GROUND_TRUTH in order, instead of running a model')
    parser.add_argument(
        '--cache',
        help='window-feature cache file for find_moments (default: none, '
        'so that the time measured includes decoding and embedding)')
    parser.add_argument(
        '--results-dir',
        metavar='DIR',
        help="also write each set's find_moments document there as "
        '<set>.json (what find_moments.py --out writes), for --predictions '
        'or pictures later')
    parser.add_argument(
        '--out',
        help='also write the report to a .json file (figures per set and '
        'label, timing, model, machine) or a .csv file (one row per set, '
        'label and IoU threshold); default: none')
    parser.add_argument(
        '--no-background',
        action='store_true',
        help="score among the queries only, without the model's own "
        "labels as background (find_moments' background=[])")
    parser.add_argument(
        '--subtract-still',
        action='store_true',
        help="score each window minus its middle frame held still "
        "(find_moments' subtract_still=True)")
    add_model_arguments(parser)
    for action in parser._actions:
        # The shared running options, as they apply to find_moments.
        if action.dest == 'batch_size':
            action.help = 'windows per forward pass (default 8)'
        elif action.dest == 'workers':
            action.help = ('not used: each video is decoded in one '
                           'streamed pass in this process; only 0 is '
                           'accepted')
    return parser


# ---------------------------------------------------------------------------
# Reading the inputs (standard library only: before torch)
# ---------------------------------------------------------------------------


def _load_json(path: str, what: str) -> dict:
    if not osp.isfile(path):
        problem = 'is a folder' if osp.isdir(path) else 'does not exist'
        raise CliError(f'{what} {path!r} {problem}')
    try:
        with open(path, encoding='utf-8') as f:
            document = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CliError(f'{what} {path!r} is not readable JSON ({error})')
    if not isinstance(document, dict):
        raise CliError(f'{what} {path!r} does not hold a JSON object')
    return document


def read_ground_truth(path: str) -> dict:
    """Read and check a ground-truth file of long videos.

    Args:
        path (str): The JSON file (``generate_videos.py --long``).

    Returns:
        dict: The document, with each video's ``path`` added (its file,
        resolved against the ground truth's folder).

    Raises:
        CliError: When the file is missing or malformed, or names a video
            that does not exist.
    """
    truth = _load_json(path, 'GROUND_TRUTH')
    where = f'GROUND_TRUTH {path!r}'
    labels, videos = truth.get('labels'), truth.get('videos')
    if not (isinstance(labels, list) and labels
            and all(isinstance(x, str) and x.strip() for x in labels)
            and len(set(labels)) == len(labels)):
        raise CliError(f'{where}: "labels" must be a list of distinct, '
                       'non-empty label texts')
    if not (isinstance(videos, list) and videos):
        raise CliError(f'{where}: "videos" must be a non-empty list '
                       '(generate_videos.py --long writes one)')
    folder = osp.dirname(osp.abspath(path))
    seen = set()
    for k, video in enumerate(videos):
        if not (isinstance(video, dict) and isinstance(video.get('video'),
                                                       str)
                and isinstance(video.get('segments'), list)):
            raise CliError(f'{where}: video {k} needs "video" (a path) and '
                           '"segments" (a list)')
        name = video['video']
        video['path'] = osp.normpath(osp.join(folder, name))
        if video['path'] in seen:
            raise CliError(f'{where}: {name!r} is listed twice')
        seen.add(video['path'])
        if not osp.isfile(video['path']):
            raise CliError(f'{where}: its video {name!r} does not exist '
                           f'({video["path"]})')
        duration = video.get('duration_s')
        if not (isinstance(duration, (int, float)) and duration > 0):
            raise CliError(f'{where}: {name!r} needs a positive duration_s')
        for segment in video['segments']:
            if not isinstance(segment, dict) or \
                    segment.get('label') not in labels:
                raise CliError(f'{where}: {name!r} has a segment whose '
                               f'label is not among "labels": {segment!r}')
            try:
                _, end = _metrics.segment_interval(segment, name)
            except ValueError as error:
                raise CliError(f'{where}: {error}') from None
            if end > duration + 1e-6:
                raise CliError(f'{where}: {name!r} has a segment ending at '
                               f'{end} s, after the video ({duration} s)')
    truth.setdefault('set', osp.splitext(osp.basename(path))[0])
    # The set names the --results-dir file: a plain name, no path.
    if not (isinstance(truth['set'], str)
            and re.fullmatch(r'[\w.-]+', truth['set'])
            and truth['set'] not in ('.', '..')):
        raise CliError(f'{where}: "set" must be a plain name (letters, '
                       f'digits, "_", "-", "."), got {truth["set"]!r}')
    truth['file'] = path
    return truth


def read_labels(path: str) -> List[str]:
    """The labels of a label file, one a line (blank lines skipped).

    Args:
        path (str): The file.

    Returns:
        list[str]: The labels, in order.
    """
    if not osp.isfile(path):
        raise CliError(f'--label-file {path!r} does not exist')
    with open(path, encoding='utf-8') as f:
        labels = [line.strip() for line in f if line.strip()]
    if not labels:
        raise CliError(f'--label-file {path!r} holds no labels')
    if len(set(labels)) != len(labels):
        raise CliError(f'--label-file {path!r} repeats a label')
    return labels


def check_args(args: argparse.Namespace) -> None:
    """Check what needs no model or package, before torch is imported, so
    that a wrong argument answers at once; the ground truth is read here.

    Args:
        args (argparse.Namespace): Parsed arguments (``truths`` and
            ``queries`` are added: the ground-truth documents, and the
            labels asked in each set).
    """
    if args.topk < 1:
        raise CliError(f'--topk must be >= 1, got {args.topk}')
    for option in ('window', 'stride'):
        value = getattr(args, option)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise CliError(f'--{option} must be a positive number of '
                           f'seconds, got {value:g}')
    if args.window is not None and args.stride is not None \
            and args.stride > args.window:
        raise CliError(f'--stride {args.stride:g} is longer than --window '
                       f'{args.window:g}: the video between windows would '
                       'never be looked at')
    if args.workers:
        raise CliError('--workers is not used by find_moments: each video '
                       'is decoded in one streamed pass in this process')
    if args.window_frames is not None:
        if args.window_frames < 2:
            raise CliError(f'--window-frames must be >= 2, got '
                           f'{args.window_frames}')
        if args.window is not None or args.stride is not None:
            raise CliError('--window-frames replaces --window and --stride: '
                           'give one or the other')
    if args.threshold is not None and not math.isfinite(args.threshold):
        raise CliError(f'--threshold must be a number, got {args.threshold}')
    if not all(0 < t <= 1 for t in args.iou):
        raise CliError(f'--iou thresholds must be in (0, 1], got '
                       f'{" ".join(map(str, args.iou))}')
    check_output_path(args.out, OUT_FORMATS, '--out')
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
                      'threshold')
            if getattr(args, o) is not None
        ] + (['--no-background'] if args.no_background else []) + (
            ['--subtract-still'] if args.subtract_still else [])
        if model_options:
            raise CliError('--predictions are evaluated as they are, '
                           f'without a model: leave out '
                           f'{", ".join(model_options)}')
    else:
        check_model_args(args)
    args.truths = [read_ground_truth(path) for path in args.ground_truth]
    names = [truth['set'] for truth in args.truths]
    if len(set(names)) != len(names):
        raise CliError(f'The GROUND_TRUTH files name the same set twice '
                       f'({names}): give each set once')
    extra = read_labels(args.label_file) if args.label_file else None
    args.queries = []
    for truth in args.truths:
        if extra is None:
            args.queries.append(list(truth['labels']))
            continue
        missing = [x for x in truth['labels'] if x not in extra]
        if missing:
            raise CliError(f'--label-file {args.label_file!r} lacks labels '
                           f'of {truth["file"]!r}: {missing}')
        args.queries.append(extra)


# ---------------------------------------------------------------------------
# Matching a find_moments document to the ground truth
# ---------------------------------------------------------------------------


def _same_path(a: str, b: str) -> bool:
    if osp.realpath(a) == osp.realpath(b):
        return True
    try:
        return osp.samefile(a, b)
    except OSError:
        return False


def predictions_by_video(result: dict, truth: dict,
                         queries: Sequence[str]) -> Dict[str, dict]:
    """The segments a find_moments document found in each ground-truth
    video, after checking that it answers this ground truth.

    Args:
        result (dict): ``find_moments``' document (or a saved one).
        truth (dict): From :func:`read_ground_truth`.
        queries (list[str]): The labels that were to be asked.

    Returns:
        dict: ``{ground-truth video name: {label: [segment, ...]}}``.

    Raises:
        ValueError: When the document asked other queries, misses a video
            or describes a video of another length.
    """
    where = f'the find_moments result for {truth["file"]!r}'
    if not isinstance(result, dict) or not isinstance(
            result.get('videos'), list):
        raise ValueError(f'{where} is not a find_moments document (no '
                         '"videos" list)')
    if list(result.get('queries', [])) != list(queries):
        raise ValueError(f'{where} asked {result.get("queries")}, not the '
                         f'labels {list(queries)}')
    found = {}
    for video in truth['videos']:
        matches = [
            entry for entry in result['videos']
            if isinstance(entry, dict) and isinstance(entry.get('video'), str)
            and _same_path(entry['video'], video['path'])
        ]
        if not matches:
            raise ValueError(f'{where} has no entry for {video["path"]!r}')
        entry = matches[0]
        # One frame of slack: decoders may count the last frame or not.
        slack = 1.5 / float(video.get('fps') or 1)
        if abs(float(entry.get('duration_s', -1)) -
               video['duration_s']) > slack:
            raise ValueError(
                f'{video["path"]!r} lasts {entry.get("duration_s")} s for '
                f'find_moments but {video["duration_s"]} s in the ground '
                'truth: it is not the video the ground truth describes; '
                'generate the long videos again')
        segments = entry.get('segments')
        if not isinstance(segments, dict):
            raise ValueError(f'{where}: {video["path"]!r} has no '
                             '"segments" per query')
        found[video['video']] = segments
    return found


def truth_by_video(truth: dict) -> Dict[str, list]:
    """``{video name: [{label, start_s, end_s}, ...]}`` of a ground truth.

    Args:
        truth (dict): From :func:`read_ground_truth`.

    Returns:
        dict: The true segments of each video.
    """
    return {video['video']: video['segments'] for video in truth['videos']}


# ---------------------------------------------------------------------------
# Running and reporting
# ---------------------------------------------------------------------------


def run_find_moments(scorer, truth: dict, queries: Sequence[str],
                     args: argparse.Namespace) -> dict:
    """Search one set's videos with its labels, timed.

    Args:
        scorer (ScoringModel): The loaded model.
        truth (dict): From :func:`read_ground_truth`.
        queries (list[str]): The labels to ask.
        args (argparse.Namespace): Parsed arguments.

    Returns:
        dict: ``result`` (find_moments' document), ``seconds``,
        ``windows`` (of all videos), ``windows_embedded`` (not read from
        the cache), ``videos_from_cache`` and ``windows_per_s`` (embedded
        windows per second of the run, decoding included; None when all
        came from the cache).
    """
    from models.apis.moments import find_moments
    info: dict = {}
    start = time.perf_counter()
    result = find_moments(
        scorer, [video['path'] for video in truth['videos']],
        list(queries),
        window_s=args.window,
        stride_s=args.stride,
        threshold=args.threshold,
        topk=args.topk,
        cache_path=args.cache,
        batch_size=args.batch_size,
        progress=not args.no_progress,
        on_failure=report_skipped,
        background=[] if args.no_background else None,
        info=info,
        window_frames=args.window_frames,
        subtract_still=args.subtract_still)
    seconds = time.perf_counter() - start
    # Windows read from --cache cost no decoding: only those embedded in
    # this run count in the rate.
    embedded = info['stats'].windows
    reused = len(info['stats'].reused)
    return dict(
        result=result,
        seconds=seconds,
        windows=sum(len(v.get('windows', [])) for v in result['videos']),
        windows_embedded=embedded,
        videos_from_cache=reused,
        windows_per_s=embedded / seconds if embedded and seconds > 0 else
        None)


def set_report(truth: dict, queries: Sequence[str], result: dict,
               iou: Sequence[float]) -> dict:
    """The figures of one set.

    Args:
        truth (dict): From :func:`read_ground_truth`.
        queries (list[str]): The labels asked.
        result (dict): find_moments' document for the set's videos.
        iou (list[float]): IoU thresholds.

    Returns:
        dict: ``set``, ``ground_truth``, ``videos``, ``queries``, the
        search settings (``window_s`` and ``stride_s``, or
        ``window_frames`` and ``stride_frames``; ``score``, ``threshold``)
        and ``overall`` and ``per_label`` figures
        (:func:`models.evaluation.moment_metrics.evaluate_moments`).
    """
    figures = _metrics.evaluate_moments(
        predictions_by_video(result, truth, queries), truth_by_video(truth),
        queries, iou)
    return dict(
        set=truth['set'],
        ground_truth=truth['file'],
        videos=len(truth['videos']),
        duration_s=sum(v['duration_s'] for v in truth['videos']),
        queries=list(queries),
        window_s=result.get('window_s'),
        stride_s=result.get('stride_s'),
        window_frames=result.get('window_frames'),
        stride_frames=result.get('stride_frames'),
        score=result.get('score'),
        threshold=result.get('threshold'),
        overall=figures['overall'],
        per_label=figures['per_label'])


def _setting(value) -> str:
    return '?' if value is None else f'{value:g}'


def _fmt(value: Optional[float]) -> str:
    return '   -' if value is None else f'{value:.3f}'


def print_set(report: dict, iou: Sequence[float]) -> None:
    """Print one set's figures: a table over the IoU thresholds, then
    recall and precision per label at the headline threshold.

    Args:
        report (dict): From :func:`set_report` (with ``timing`` when a
            model ran).
        iou (list[float]): IoU thresholds.
    """
    overall = report['overall']
    if report.get('window_frames'):
        windows = (f'window {report["window_frames"]} frames, stride '
                   f'{report["stride_frames"]} frames')
    else:
        windows = (f'window {_setting(report["window_s"])} s, stride '
                   f'{_setting(report["stride_s"])} s')
    print(f'\n{report["set"]}: {report["videos"]} videos, '
          f'{report["duration_s"] / 60:.1f} min, {overall["num_truth"]} '
          f'true segments, {len(report["queries"])} queries; '
          f'{overall["num_predicted"]} segments found ({windows}, score '
          f'{report["score"]}, threshold {_setting(report["threshold"])})')
    timing = report.get('timing')
    if timing and timing['windows_per_s'] is not None:
        print(f'  {timing["seconds"]:.1f} s, {timing["windows_embedded"]} '
              f'windows embedded: {timing["windows_per_s"]:.1f} windows/s'
              + (f' ({timing["videos_from_cache"]} videos from the cache)'
                 if timing['videos_from_cache'] else ''))
    elif timing:
        print(f'  {timing["seconds"]:.1f} s, every window from the cache')
    print(f'  mean best IoU of a true segment: '
          f'{_fmt(overall["mean_best_iou"])}')
    print('  IoU   recall  precision  F1')
    for t in iou:
        row = overall['at'][_metrics.threshold_key(t)]
        print(f'  {t:<4g}  {_fmt(row["recall"])}   {_fmt(row["precision"])}'
              f'      {_fmt(row["f1"])}')
    key = _metrics.threshold_key(0.5 if 0.5 in iou else iou[0])
    width = max(len(label) for label in report['queries'])
    print(f'  per label at IoU {key}: true, found, recall, precision')
    for label, figures in report['per_label'].items():
        row = figures['at'][key]
        print(f'    {label:<{width}}  {figures["num_truth"]:>4} '
              f'{figures["num_predicted"]:>5}  {_fmt(row["recall"])}  '
              f'{_fmt(row["precision"])}')


def write_report(path: str, report: dict) -> None:
    """Write the report as JSON or CSV (by the extension), whole or not at
    all.

    Args:
        path (str): ``.json`` or ``.csv`` file.
        report (dict): The whole report (``sets`` ...).
    """
    from models.utils.safe_io import write_json_or_csv

    def rows():
        for one in report['sets']:
            labels = [('(all)', one['overall']), *one['per_label'].items()]
            for label, figures in labels:
                for key, row in figures['at'].items():
                    yield [
                        one['set'], label, key, figures['num_truth'],
                        figures['num_predicted'], row['matched'],
                        *('' if row[k] is None else f'{row[k]:.6f}'
                          for k in ('recall', 'precision', 'f1')),
                        '' if figures['mean_best_iou'] is None else
                        f'{figures["mean_best_iou"]:.6f}'
                    ]

    write_json_or_csv(path, report, CSV_HEADER, rows(), indent=1)


def machine() -> dict:
    """Where the run happened, for the report.

    Returns:
        dict: ``platform``, ``processor`` and ``cpus``.
    """
    return dict(platform=platform.platform(),
                processor=platform.processor() or platform.machine(),
                cpus=os.cpu_count())


def prepare_outputs(args: argparse.Namespace) -> None:
    """Refuse outputs that would overwrite an input, before the model is
    loaded, and create the results folder."""
    from models.utils.safe_io import OutputPathError
    from models.utils.safe_io import check_output_path as check_writable
    inputs = [*args.ground_truth, *(args.predictions or []),
              args.label_file, args.config, args.checkpoint, args.model,
              args.clip, args.cache,
              *(v['path'] for t in args.truths for v in t['videos'])]
    try:
        if args.out:
            check_writable(args.out, inputs, '--out')
        if args.results_dir:
            for truth in args.truths:
                check_writable(result_path(args, truth), inputs,
                               '--results-dir')
    except OutputPathError as error:
        raise CliError(str(error)) from None


def result_path(args: argparse.Namespace, truth: dict) -> str:
    """Where ``--results-dir`` puts a set's find_moments document."""
    return osp.join(args.results_dir, f'{truth["set"]}.json')


def run(args: argparse.Namespace) -> int:
    """Evaluate every set; see the module docstring for the exit status.

    Args:
        args (argparse.Namespace): Parsed arguments (after
            :func:`check_args`).

    Returns:
        int: The exit status.
    """
    with contextlib.ExitStack() as stack:
        return _run(args, stack)


def _run(args: argparse.Namespace, stack: contextlib.ExitStack) -> int:
    from models.apis.moments import background_warnings_printed
    from models.utils.safe_io import atomic_write
    prepare_outputs(args)
    report = dict(iou_thresholds=list(args.iou), machine=machine(), sets=[])
    if args.predictions:
        results = [_load_json(path, '--predictions')
                   for path in args.predictions]
        runs = [dict(result=r) for r in results]
        report['model'] = results[0].get('model')
        report['predictions'] = list(args.predictions)
    else:
        start = time.perf_counter()
        scorer = load_model_from_args(args)
        report['model'] = scorer.describe()
        report['device'] = str(scorer.device)
        report['model_load_s'] = time.perf_counter() - start
        runs = []
        # Once for all the sets: the model's label file is missing for
        # every one of them.
        stack.enter_context(background_warnings_printed('eval_moments.py'))
        for truth, queries in zip(args.truths, args.queries):
            print(f'Searching {len(truth["videos"])} videos of '
                  f'{truth["set"]} for {len(queries)} labels',
                  file=sys.stderr)
            one = run_find_moments(scorer, truth, queries, args)
            runs.append(one)
            if args.results_dir:
                with atomic_write(result_path(args, truth), 'w') as f:
                    json.dump(one['result'], f, ensure_ascii=False)
                    f.write('\n')
            failures = one['result'].get('failures') or {}
            if failures:
                # Figures over the readable videos alone would describe
                # another test set: none are given.
                print('No figures: the ground truth describes videos that '
                      'could not be read.', file=sys.stderr)
                return report_failures(failures, len(truth['videos']))
    for truth, queries, one in zip(args.truths, args.queries, runs):
        failures = one['result'].get('failures') or {}
        if failures:
            print(f'No figures: {truth["file"]!r} has videos that could '
                  'not be read.', file=sys.stderr)
            return report_failures(failures, len(truth['videos']))
        figures = set_report(truth, queries, one['result'], args.iou)
        if 'seconds' in one:
            figures['timing'] = {
                k: one[k]
                for k in ('seconds', 'windows', 'windows_embedded',
                          'videos_from_cache', 'windows_per_s')
            }
        report['sets'].append(figures)
        print_set(figures, args.iou)
    if args.out:
        write_report(args.out, report)
        print(f'Wrote {args.out}', file=sys.stderr)
    return 0


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

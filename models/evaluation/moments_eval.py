"""Evaluate find_moments on long videos whose times are known
(``tools/eval_moments.py``). Standard library at the top (the tool checks
the ground truth before torch); what needs torch is imported by its full
name when a set is searched.
"""
import argparse
import json
import os
import os.path as osp
import platform
import re
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

from ..utils.paths import file_identity, not_a_file
from ..utils.safe_io import same_file
from .moment_metrics import evaluate_moments, segment_interval, threshold_key

#: The columns of a ``.csv`` report: one row per set, label and threshold.
CSV_HEADER = ('set', 'label', 'iou', 'num_truth', 'num_predicted',
              'matched', 'recall', 'precision', 'f1', 'mean_best_iou')


def _load_json(path: str, what: str) -> dict:
    if not osp.isfile(path):
        raise ValueError(f'{what} {path!r} {not_a_file(path)}')
    try:
        document = json.loads(Path(path).read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f'{what} {path!r} is not readable JSON ({error})')
    if not isinstance(document, dict):
        raise ValueError(f'{what} {path!r} does not hold a JSON object')
    return document


def read_ground_truth(path: str) -> dict:
    """The checked ground truth of long videos (``generate_videos.py
    --long``'s JSON) with each video's ``path`` (resolved against the
    file's folder), ``set`` (default: the file's name) and ``file``; a
    ValueError when it or a video is missing, malformed or unlike its
    manifest."""
    truth = _load_json(path, 'GROUND_TRUTH')
    where = f'GROUND_TRUTH {path!r}'
    labels, videos = truth.get('labels'), truth.get('videos')
    if not (isinstance(labels, list) and labels
            and all(isinstance(x, str) and x.strip() for x in labels)
            and len(set(labels)) == len(labels)):
        raise ValueError(f'{where}: "labels" must be a list of distinct, '
                         'non-empty label texts')
    if not (isinstance(videos, list) and videos):
        raise ValueError(f'{where}: "videos" must be a non-empty list '
                         '(generate_videos.py --long writes one)')
    folder = osp.dirname(osp.abspath(path))
    seen = set()
    for k, video in enumerate(videos):
        if not (isinstance(video, dict) and isinstance(video.get('video'),
                                                       str)
                and isinstance(video.get('segments'), list)):
            raise ValueError(f'{where}: video {k} needs "video" (a path) '
                             'and "segments" (a list)')
        name = video['video']
        video['path'] = osp.normpath(osp.join(folder, name))
        if video['path'] in seen:
            raise ValueError(f'{where}: {name!r} is listed twice')
        seen.add(video['path'])
        if not osp.isfile(video['path']):
            raise ValueError(f'{where}: its video {name!r} '
                             f'{not_a_file(video["path"])} '
                             f'({video["path"]})')
        duration = video.get('duration_s')
        if not (isinstance(duration, (int, float)) and duration > 0):
            raise ValueError(f'{where}: {name!r} needs a positive '
                             'duration_s')
        for segment in video['segments']:
            if not isinstance(segment, dict) or \
                    segment.get('label') not in labels:
                raise ValueError(f'{where}: {name!r} has a segment whose '
                                 'label is not among "labels": '
                                 f'{segment!r}')
            _, end = segment_interval(segment, f'{where}: {name}')
            if end > duration + 1e-6:
                raise ValueError(f'{where}: {name!r} has a segment ending '
                                 f'at {end} s, after the video ({duration} '
                                 's)')
    truth.setdefault('set', osp.splitext(osp.basename(path))[0])
    # The set names the --results-dir file: a plain name, no path.
    if not (isinstance(truth['set'], str)
            and re.fullmatch(r'[\w.-]+', truth['set'])
            and truth['set'] not in ('.', '..')):
        raise ValueError(f'{where}: "set" must be a plain name (letters, '
                         f'digits, "_", "-", "."), got {truth["set"]!r}')
    truth['file'] = path
    _check_manifest(truth)
    return truth


def _check_manifest(truth: dict) -> None:
    """Refuse a set whose files are not those its ``manifest.json`` lists
    (changed, or an interrupted run); without a manifest, refuse only a
    set whose ground truth names its ``generator`` (which writes one)."""
    folder = osp.dirname(osp.abspath(truth['file']))
    manifest = osp.join(folder, 'manifest.json')
    if not osp.exists(manifest):
        if 'generator' in truth:
            raise ValueError(
                f'{truth["file"]!r} was written by {truth["generator"]} '
                f'with a manifest, and {manifest!r} is missing (the set '
                'was moved without it, or its writing interrupted): '
                'generate the set again, or remove the "generator" key '
                'to use the file as ground truth of your own')
        return
    files = _load_json(manifest, 'The manifest').get('files')
    if not isinstance(files, dict):
        raise ValueError(f'The manifest {manifest!r} has no "files"')
    for name in [osp.basename(truth['file']),
                 *(v['video'] for v in truth['videos'])]:
        entry = files.get(osp.normpath(name))
        path = osp.join(folder, name)
        if not isinstance(entry, dict):
            raise ValueError(f'{path!r} is not listed in the manifest '
                             f'{manifest!r} of its set: generate the set '
                             'again')
        if file_identity(path) != {
                key: entry.get(key) for key in ('size_bytes', 'sha256')}:
            raise ValueError(f'{path!r} is not the file the manifest '
                             f'{manifest!r} lists (the set was changed, or '
                             'its writing interrupted): generate the set '
                             'again')


def queries_of_sets(truths: Sequence[dict],
                    label_file: Optional[str] = None) -> List[List[str]]:
    """Each set's queries: its labels, or all of ``label_file`` (one a
    line, blank lines skipped); a ValueError when two files name one set,
    or the file is unreadable, empty, repeats or lacks a label."""
    names = [truth['set'] for truth in truths]
    if len(set(names)) != len(names):
        raise ValueError(f'The GROUND_TRUTH files name the same set twice '
                         f'({names}): give each set once')
    if label_file is None:
        return [list(truth['labels']) for truth in truths]
    if not osp.isfile(label_file):
        raise ValueError(f'--label-file {label_file!r} '
                         f'{not_a_file(label_file)}')
    try:
        # utf-8-sig: a byte-order mark is not part of the first label.
        with open(label_file, encoding='utf-8-sig') as f:
            extra = [line.strip() for line in f if line.strip()]
    except UnicodeDecodeError as error:
        raise ValueError(f'--label-file {label_file!r} is not UTF-8 text '
                         f'(byte {error.start}); save it as UTF-8') from None
    if not extra:
        raise ValueError(f'--label-file {label_file!r} holds no labels')
    if len(set(extra)) != len(extra):
        raise ValueError(f'--label-file {label_file!r} repeats a label')
    for truth in truths:
        missing = [x for x in truth['labels'] if x not in extra]
        if missing:
            raise ValueError(f'--label-file {label_file!r} lacks labels of '
                             f'{truth["file"]!r}: {missing}')
    return [extra for _ in truths]


def _predictions_by_video(result: dict, truth: dict,
                          queries: Sequence[str]) -> Dict[str, dict]:
    """``{ground-truth video: {label: [segment, ...]}}`` of a find_moments
    document; a ValueError unless it asked ``queries`` of ``truth``'s
    videos (the same files: length, size, rate and count)."""
    where = f'the find_moments result for {truth["file"]!r}'
    if not isinstance(result.get('videos'), list):  # result: a JSON object
        raise ValueError(f'{where} is not a find_moments document (no '
                         '"videos" list)')
    if list(result.get('queries', [])) != list(queries):
        raise ValueError(f'{where} asked {result.get("queries")}, not the '
                         f'labels {list(queries)}')
    found = {}
    for video in truth['videos']:
        entry = next((
            e for e in result['videos']
            if isinstance(e, dict) and isinstance(e.get('video'), str)
            and same_file(e['video'], video['path'])), None)
        if entry is None:
            raise ValueError(f'{where} has no entry for {video["path"]!r}')
        # Slack of one frame: decoders may count the last frame or not.
        told = [(entry.get('duration_s', -1), video['duration_s'], 's',
                 1.5 / float(video.get('fps') or 1)),
                (entry.get('size_bytes'), osp.getsize(video['path']),
                 'bytes', 1e-3),
                (entry.get('fps'), video.get('fps'), 'frames a second', 1e-3),
                (entry.get('num_frames'), video.get('num_frames'), 'frames',
                 1)]
        for predicted, true, unit, slack in told:
            if predicted is not None and true is not None and abs(
                    float(predicted) - float(true)) > slack:
                raise ValueError(
                    f'The predictions for {video["path"]!r} were made on a '
                    f'video of {predicted} {unit}, the ground truth\'s has '
                    f'{true}: they are of another video, not the video the '
                    'ground truth describes; run find_moments on this one')
        segments = entry.get('segments')
        if not isinstance(segments, dict):
            raise ValueError(f'{where}: {video["path"]!r} has no '
                             '"segments" per query')
        found[video['video']] = segments
    return found


def _set_report(truth: dict, queries: Sequence[str], result: dict,
                iou: Sequence[float]) -> dict:
    figures = evaluate_moments(
        _predictions_by_video(result, truth, queries),
        {video['video']: video['segments'] for video in truth['videos']},
        queries, iou)
    return dict(
        set=truth['set'], ground_truth=truth['file'],
        videos=len(truth['videos']),
        duration_s=sum(v['duration_s'] for v in truth['videos']),
        queries=list(queries),
        **{key: result.get(key)
           for key in ('window_s', 'stride_s', 'window_frames',
                       'stride_frames', 'score', 'threshold')},
        overall=figures['overall'], per_label=figures['per_label'])


def _fmt(value: Optional[float]) -> str:
    return '   -' if value is None else f'{value:.3f}'


def _print_set(report: dict, iou: Sequence[float]) -> None:
    """Print one set's table over ``iou``, then per label at 0.5."""
    from ..apis.moments_command import number, window_text
    overall = report['overall']
    print(f'\n{report["set"]}: {report["videos"]} videos, '
          f'{report["duration_s"] / 60:.1f} min, {overall["num_truth"]} '
          f'true segments, {len(report["queries"])} queries; '
          f'{overall["num_predicted"]} segments found ({window_text(report)}, '
          f'score {report["score"]}, threshold {number(report["threshold"])})')
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
        row = overall['at'][threshold_key(t)]
        print(f'  {t:<4g}  {_fmt(row["recall"])}   {_fmt(row["precision"])}'
              f'      {_fmt(row["f1"])}')
    key = threshold_key(0.5 if 0.5 in iou else iou[0])
    width = max(len(label) for label in report['queries'])
    print(f'  per label at IoU {key}: true, found, recall, precision')
    for label, figures in report['per_label'].items():
        row = figures['at'][key]
        print(f'    {label:<{width}}  {figures["num_truth"]:>4} '
              f'{figures["num_predicted"]:>5}  {_fmt(row["recall"])}  '
              f'{_fmt(row["precision"])}')


def _write_report(path: str, report: dict) -> None:
    from ..utils.safe_io import write_json_or_csv
    rows = ([one['set'], label, key, figures['num_truth'],
             figures['num_predicted'], row['matched'],
             *('' if value is None else f'{value:.6f}' for value in (
                 row['recall'], row['precision'], row['f1'],
                 figures['mean_best_iou']))]
            for one in report['sets']
            for label, figures in [('(all)', one['overall']),
                                   *one['per_label'].items()]
            for key, row in figures['at'].items())
    write_json_or_csv(path, report, CSV_HEADER, rows, indent=1)


def _result_path(args: argparse.Namespace, truth: dict) -> str:
    return osp.join(args.results_dir, f'{truth["set"]}.json')


def run(args: argparse.Namespace) -> int:
    """Evaluate every set of ``tools/eval_moments.py``'s checked options
    (``truths``, ``queries``), print and write the report. Returns the exit
    status: 1, and no figures, when a video could not be read (they would
    describe fewer videos than the ground truth)."""
    from ..apis.cli import check_writable, report_failures
    check_writable(
        [('--out', args.out)] + [('--results-dir', _result_path(args, truth))
                                 for truth in args.truths
                                 if args.results_dir],
        [*args.ground_truth, *(args.predictions or []), args.label_file,
         args.config, args.checkpoint, args.model, args.clip, args.cache,
         *(v['path'] for t in args.truths for v in t['videos'])])
    report = dict(iou_thresholds=list(args.iou), machine=dict(
        platform=platform.platform(),
        processor=platform.processor() or platform.machine(),
        cpus=os.cpu_count()), sets=[])
    if args.predictions:
        runs = [dict(result=_load_json(path, '--predictions'))
                for path in args.predictions]
        report['model'] = runs[0]['result'].get('model')
        report['predictions'] = list(args.predictions)
    else:
        runs = list(_search_sets(args, report))
    for truth, one in zip(args.truths, runs):
        failures = one['result'].get('failures') or {}
        if failures:
            print(f'No figures: {truth["file"]!r} has videos that could '
                  'not be read.', file=sys.stderr)
            return report_failures(failures, len(truth['videos']))
    for truth, queries, one in zip(args.truths, args.queries, runs):
        figures = _set_report(truth, queries, one['result'], args.iou)
        if 'timing' in one:
            figures['timing'] = one['timing']
        report['sets'].append(figures)
        _print_set(figures, args.iou)
    if args.out:
        _write_report(args.out, report)
        print(f'Wrote {args.out}', file=sys.stderr)
    return 0


def _search_sets(args: argparse.Namespace, report: dict) -> Iterator[dict]:
    """Load the model (described in ``report``) and search each set, up
    to the first with a video that could not be read: ``result`` and
    ``timing`` (``windows_per_s`` counts embedded windows, not cached)."""
    from ..apis.cli import load_model_from_args
    from ..apis.moments_command import search_options
    from ..utils.safe_io import write_json_or_csv
    from models.apis.moments import background_warnings_printed, find_moments
    start = time.perf_counter()
    scorer = load_model_from_args(args)
    report['model'] = scorer.describe()
    report['device'] = str(scorer.device)
    report['model_load_s'] = time.perf_counter() - start
    with background_warnings_printed('eval_moments.py'):
        for truth, queries in zip(args.truths, args.queries):
            print(f'Searching {len(truth["videos"])} videos of '
                  f'{truth["set"]} for {len(queries)} labels',
                  file=sys.stderr)
            info: dict = {}
            start = time.perf_counter()
            result = find_moments(
                scorer, [video['path'] for video in truth['videos']],
                list(queries), cache_path=args.cache,
                background=[] if args.no_background else None, info=info,
                **search_options(args))
            seconds = time.perf_counter() - start
            embedded = info['stats'].windows
            if args.results_dir:
                write_json_or_csv(_result_path(args, truth), result, (), (),
                                  indent=None)
            yield dict(result=result, timing=dict(
                seconds=seconds,
                windows=sum(len(v.get('windows', []))
                            for v in result['videos']),
                windows_embedded=embedded,
                videos_from_cache=len(info['stats'].reused),
                windows_per_s=embedded / seconds if embedded and seconds > 0
                else None))
            if result.get('failures'):
                return

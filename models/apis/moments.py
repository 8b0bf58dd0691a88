"""Find when something happens in long videos: windows slid over each video
are embedded once, scored against text queries, and the neighbouring
high-scoring windows merged into segments (:mod:`.windows` places the
windows, :mod:`.window_stream` embeds them in one streamed pass,
:mod:`.window_cache` keeps their features, :mod:`.segments` merges them).
This module scores them and returns the result document that
``tools/find_moments.py --out r.json`` writes.

Scores: a window's score for a query is the probability the model gives
the query among the *candidates*: the queries and a background label set
(the model's own labels by default, minus those worded like a query), the
softmax of ``100 * cosine`` per prompt template and view, averaged, as
``tools/zero_shot.py`` scores labels. A query that does not happen so
leaves its probability to the label that does, and several queries compete
as they should (a window is one action). Without background, several
queries compete among themselves; one query alone is scored by its plain
cosine similarity, which has no natural threshold: one must be given. A
model whose label file (named by its config) is missing has no labels:
:class:`BackgroundWarning` says so, and so does the document.

Options measured in docs/moments_accuracy.md, off by default:
``window_frames=N`` (windows of N frames every N // 2 instead of seconds)
and ``subtract_still=True`` (:func:`still_subtracted`).

Example:
    >>> scorer = load_scoring_model(name='work_dirs/quickstart/best.pth')
    >>> result = find_moments(scorer, ['long.mp4'],
    ...                       ['a circle shrinking', 'a square moving up'])
    >>> result['videos'][0]['segments']['a circle shrinking'][0]
    {'start_s': 12.0, 'end_s': 15.0, 'score': 0.97, 'peak_s': 13.0}
"""
import contextlib
import os
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from models.apis.feature_cache import stat_videos
from models.apis.segments import merge_segments
from models.apis.window_cache import VideoWindows, WindowCache
from models.apis.window_stream import (DEFAULT_CHUNK_FRAMES, embed_windows,
                                       embed_windows_and_stills, open_video)
from models.apis.windows import (check_window, check_window_frames,
                                 default_window, frame_window, plan_windows)
from models.datasets.transforms import VideoReadError

#: Threshold on probabilities when none is given: the query is more likely
#: than all the other candidates together.
DEFAULT_PROBABILITY_THRESHOLD = 0.5

#: Seconds between writes of the window cache during a run (and one at
#: its end): an interrupted run loses at most this much work.
SAVE_EVERY_S = 60.0

#: Header of the CSV result file.
CSV_COLUMNS = ('video', 'query', 'rank', 'start_s', 'end_s', 'score',
               'peak_s')

#: Called with ``(video, error)`` for each video that cannot be read.
OnFailure = Callable[[str, Exception], None]


def _same_text(text: str) -> str:
    return ' '.join(text.casefold().split())


def check_queries(queries: Sequence[str]) -> List[str]:
    """The queries (what to look for), stripped; a ValueError when none,
    empty or repeated (a repeated query would share its probability with
    itself)."""
    if isinstance(queries, str):
        queries = [queries]
    queries = [str(q).strip() for q in queries]
    if not queries:
        raise ValueError('No query: say what to look for')
    if '' in queries:
        raise ValueError(f'Query {queries.index("") + 1} is empty: describe '
                         'what to look for')
    seen = {}
    for query in queries:
        key = _same_text(query)
        if key in seen:
            raise ValueError(f'The queries {seen[key]!r} and {query!r} are '
                             'the same text: give each once')
        seen[key] = query
    return queries


class BackgroundWarning(UserWarning):
    """The model's label set could not be read: the queries are scored
    without the background labels they would otherwise compete with."""


@contextlib.contextmanager
def background_warnings_printed(prog: str):
    """Within it, a :class:`BackgroundWarning` is printed to stderr at once
    as one line, ``<prog>: warning: <message>`` (``prog``: the tool's
    name), once per message."""
    with warnings.catch_warnings():
        shown = warnings.showwarning
        seen = set()

        def show(message, category, *args, **kwargs):
            if not issubclass(category, BackgroundWarning):
                return shown(message, category, *args, **kwargs)
            if str(message) not in seen:
                seen.add(str(message))
                print(f'{prog}: warning: {message}', file=sys.stderr)

        warnings.showwarning = show
        warnings.simplefilter('always', BackgroundWarning)
        yield


def _missing_label_file(scorer) -> Optional[str]:
    """The label file the model's config names when it cannot be read
    here (what left the model without labels), else None."""
    from models.apis.loading import PROJECT_ROOT
    config = getattr(scorer, 'config', None)
    try:
        named = config.model.get('labels_or_label_file')
    except AttributeError:
        return None
    if not isinstance(named, str) or any(
            os.path.isfile(path)
            for path in (named, os.path.join(PROJECT_ROOT, named))):
        return None
    return named


def _background_source(scorer, background: Optional[Sequence[str]],
                       used: Sequence[str]) -> dict:
    """The document's ``background``: its ``source``, how many ``labels``
    are ``used``, ``why`` there are none, and the ``warning`` to give when
    the model's label file is missing."""
    if background is not None:
        if background:
            return dict(source='given', labels=len(used))
        return dict(source='none', labels=0,
                    why='no background asked (background=[], '
                    '--no-background)')
    if getattr(scorer.model, 'labels', None):
        return dict(source='model', labels=len(used))
    missing = _missing_label_file(scorer)
    if missing is None:
        return dict(source='none', labels=0,
                    why='the model has no labels (e.g. plain CLIP weights)')
    warning = (f"The model's label file {missing!r} (named by its config) "
               'does not exist here: the queries are scored WITHOUT '
               "background labels, among themselves only (one query by "
               'cosine similarity), so a query that does not happen can '
               'still take most of the probability. Put the label file '
               'there, or give one with find_moments.py --background FILE '
               '(background= in the API)')
    return dict(source='none', labels=0,
                why=f'label file {missing!r} not found',
                missing_label_file=missing, warning=warning)


@dataclass
class QueryScoring:
    """How windows are scored against the queries."""

    name: str  # the score's short name (the document's ``score``)
    kind: str  # 'probability' or 'cosine'
    text: torch.Tensor  # (P, L, D) prompts: the queries, then background
    num_queries: int
    background: List[str]
    logit_scale: float = 100.0  # the model's scale of the cosines


def query_scoring(model, queries: Sequence[str],
                  background: Optional[Sequence[str]] = None,
                  templates: Optional[Sequence[str]] = None) -> QueryScoring:
    """Encode the queries and the background labels once.

    Args:
        model (ActionClip): The model.
        queries (list[str]): What to look for.
        background (list[str], optional): Labels the queries compete
            with; the model's own labels when None; none when empty.
            Labels worded like a query (case and spaces aside) are left
            out.
        templates (list[str], optional): Prompt templates; the model's by
            default.

    Returns:
        QueryScoring: The prompt features and the score's definition.
    """
    from models.apis.video_scoring import label_text_features
    queries = check_queries(queries)
    if background is None:
        background = list(getattr(model, 'labels', None) or [])
    asked = {_same_text(q) for q in queries}
    background = [
        label for label in dict.fromkeys(str(b).strip() for b in background)
        if label and _same_text(label) not in asked
    ]
    text = label_text_features(model, queries + background, templates)
    if background:
        kind = 'probability'
        name = (f'probability among the {len(queries)} queries and '
                f'{len(background)} background labels')
    elif len(queries) > 1:
        kind = 'probability'
        name = f'probability among the {len(queries)} queries'
    else:
        kind, name = 'cosine', 'cosine similarity'
    return QueryScoring(name, kind, text, len(queries), background,
                        float(model.logit_scale_at_test()))


def window_scores(features: torch.Tensor,
                  scoring: QueryScoring) -> torch.Tensor:
    """Each window's score for each query: ``(K, Q)`` float32 scores of
    ``(K, V, D)`` normalised window ``features``; a ValueError when a
    score is not finite (broken weights or features)."""
    from models.apis.video_scoring import score_labels
    features = features.float()
    text = scoring.text.float()
    if scoring.kind == 'probability':
        scores = score_labels(features, text, scoring.logit_scale)[
            :, :scoring.num_queries]
    else:  # the mean cosine over views and templates
        scores = torch.einsum('kvd,pqd->kq', features, text)[
            :, :scoring.num_queries] / (features.shape[1] * text.shape[0])
    if not torch.isfinite(scores).all():
        raise ValueError('Non-finite window scores: the model or its '
                         'features are broken; no segment can be trusted')
    return scores


def resolve_threshold(threshold: Optional[float],
                      scoring: QueryScoring,
                      subtract_still: bool = False) -> float:
    """The ``threshold`` given, checked, else the default of the score's
    kind; a ValueError when none is given for cosine scores, or for a
    threshold outside the range of the scores (wider with
    ``subtract_still``: differences, :func:`still_subtracted`)."""
    probability = scoring.kind == 'probability'
    if threshold is None:
        if probability:
            return DEFAULT_PROBABILITY_THRESHOLD
        raise ValueError(
            'One query and no background labels to compare it with (the '
            'model has no labels): the scores are cosine similarities, '
            'which have no natural threshold. Give the threshold (e.g. '
            '0.25 for OpenAI CLIP weights), several queries, or background '
            'labels')
    what = 'probabilities' if probability else 'cosine similarities'
    if subtract_still:  # differences of two scores
        low, high = (-1, 1) if probability else (-2, 2)
    else:
        low, high = (0, 1) if probability else (-1, 1)
    if not low <= threshold <= high:
        raise ValueError(f'The scores are {what}'
                         f'{" minus " + what if subtract_still else ""}: the '
                         f'threshold must be in [{low}, {high}], got '
                         f'{threshold}')
    return float(threshold)


#: What ``subtract_still`` adds to the score's name.
STILL_SUFFIX = (", minus the same for the window's middle frame held "
                'still')


def still_subtracted(windows: VideoWindows,
                     scoring: QueryScoring) -> torch.Tensor:
    """A window's score minus that of its middle frame repeated (its still
    picture, through the same model): a still scene then scores about 0
    whatever label it resembles; an action keeps what its motion adds.
    ``(K, Q)`` scores, in ``[-1, 1]`` for probabilities, of ``windows``
    with their ``stills``.
    """
    if windows.stills is None:
        raise ValueError(f'No still-picture features for {windows.video!r}'
                         ': embed them with subtract_still')
    return (window_scores(windows.features, scoring) -
            window_scores(windows.stills, scoring))


@dataclass
class WindowStats:
    """What :func:`video_windows` did."""

    computed: List[str]  # videos decoded and embedded
    reused: List[str]  # videos whose cached windows were used
    windows: int  # windows embedded
    cache_path: Optional[str]
    saved: bool  # whether the cache file was written


def video_windows(
    scorer, videos: Sequence[str], window_s: Optional[float],
    stride_s: Optional[float], cache_path: Optional[str] = None,
    batch_size: int = 8, progress: bool = True,
    on_failure: Optional[OnFailure] = None,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    window_frames: Optional[int] = None, stills: bool = False
) -> Tuple[Dict[str, VideoWindows], Dict[str, str], WindowStats]:
    """The windows of each video and their features: from the cache when
    current, else decoded in one streamed pass and embedded.

    Args:
        scorer, videos, window_s, stride_s, cache_path, batch_size,
        progress, on_failure, chunk_frames, window_frames: As
            :func:`find_moments`'s (``window_s`` and ``stride_s`` None with
            ``window_frames``). The cache is written every
            :data:`SAVE_EVERY_S` seconds and at the end, also of an
            interrupted run.
        stills (bool): Also embed (and cache) each window's still picture
            in the same pass of decoding.

    Returns:
        tuple: ``({video: VideoWindows}, {video: error message},
        WindowStats)``, videos in input order.
    """
    from tqdm import tqdm
    if window_frames is not None:
        check_window_frames(window_frames)
    else:
        check_window(window_s, stride_s)
    cache = (WindowCache(cache_path, scorer.identity, window_s, stride_s,
                         window_frames) if cache_path else None)
    stats, failed = stat_videos(videos, on_failure)
    found: Dict[str, VideoWindows] = {}
    for video, stat in stats.items():
        cached = cache.lookup(video, stat, stills) if cache else None
        if cached is not None:
            found[video] = cached
    reused, todo = list(found), [v for v in stats if v not in found]
    computed, saved, count = [], False, 0
    last_save = time.monotonic()
    try:
        # Shown once the first video's windows are counted (the total
        # grows as each video is opened).
        with tqdm(total=0, unit='window', disable=not (progress and todo),
                  dynamic_ncols=True, delay=0.1) as bar:
            for video in todo:
                try:
                    windows = _embed_video(scorer, video, window_s,
                                           stride_s, batch_size,
                                           chunk_frames, bar, window_frames,
                                           stills)
                except (VideoReadError, FileNotFoundError) as error:
                    failed[video] = str(error)
                    if on_failure is not None:
                        on_failure(video, error)
                    continue
                found[video] = windows
                computed.append(video)
                count += len(windows.windows)
                if cache is not None:
                    cache.add(stats[video], windows)
                    # Each write rewrites the whole file: not after every
                    # short video of a large folder.
                    if time.monotonic() - last_save >= SAVE_EVERY_S:
                        saved = cache.save() or saved
                        last_save = time.monotonic()
    finally:
        # Also when interrupted: the videos finished are kept.
        if cache is not None:
            saved = cache.save() or saved
    return ({v: found[v] for v in videos if v in found},
            {v: failed[v] for v in videos if v in failed},
            WindowStats(computed, reused, count,
                        cache.path if cache else None, saved))


def _embed_video(scorer, video: str, window_s: Optional[float],
                 stride_s: Optional[float], batch_size: int,
                 chunk_frames: int, bar, window_frames: Optional[int] = None,
                 stills: bool = False) -> VideoWindows:
    with contextlib.closing(open_video(scorer, video)) as stream:
        try:
            if window_frames is not None:
                window_s, stride_s = frame_window(window_frames, stream.fps)
            plan = plan_windows(stream.num_frames, stream.fps, window_s,
                                stride_s, stream.sampler, stream.frame_times)
        except ValueError as error:
            raise VideoReadError(f'Cannot find the windows of video '
                                 f'{video!r}: {error}') from None
        # With stills, one window costs two forward passes.
        bar.total += len(plan) * (2 if stills else 1)
        bar.refresh()
        if stills:
            features, still = embed_windows_and_stills(
                scorer, stream, plan, batch_size, chunk_frames, bar)
        else:
            features, still = embed_windows(scorer, stream, plan, batch_size,
                                            chunk_frames, bar), None
    return VideoWindows(video, plan.num_frames, plan.fps, plan.times,
                        features, still)


def video_result(windows: VideoWindows, queries: Sequence[str],
                 scoring: QueryScoring, threshold: float, topk: int,
                 subtract_still: bool = False) -> dict:
    """One video's entry of the result document (``video``,
    ``duration_s``, ``fps``, ``num_frames``, ``windows``, ``scores``,
    ``segments`` and ``size_bytes``: see ``docs/find_moments.md``), its
    ``topk`` segments per query made of windows scoring ``threshold`` or
    more (by :func:`still_subtracted` with ``subtract_still``)."""
    scores = (still_subtracted(windows, scoring) if subtract_still else
              window_scores(windows.features, scoring))
    per_query = {q: scores[:, i].tolist() for i, q in enumerate(queries)}
    try:  # what tells this file from another of the same name
        size = os.path.getsize(windows.video)
    except OSError:
        size = None
    return dict(
        video=windows.video, duration_s=windows.duration_s, fps=windows.fps,
        num_frames=windows.num_frames,
        windows=[[start, end] for start, end in windows.windows],
        scores=per_query,
        segments={q: merge_segments(per_query[q], windows.windows,
                                    windows.duration_s, threshold, topk)
                  for q in queries},
        size_bytes=size)


def find_moments(scorer, videos: Sequence[str], queries: Sequence[str],
                 window_s: Optional[float] = None,
                 stride_s: Optional[float] = None,
                 threshold: Optional[float] = None, topk: int = 5,
                 cache_path: Optional[str] = None, batch_size: int = 8,
                 progress: bool = True,
                 on_failure: Optional[OnFailure] = None,
                 background: Optional[Sequence[str]] = None,
                 chunk_frames: int = DEFAULT_CHUNK_FRAMES,
                 info: Optional[dict] = None,
                 window_frames: Optional[int] = None,
                 subtract_still: bool = False) -> dict:
    """Find when each query happens in each video.

    Args:
        scorer (ScoringModel): From
            :func:`models.apis.video_scoring.load_scoring_model`.
        videos (list[str]): Video files (not folders).
        queries (list[str]): What to look for.
        window_s (float, optional): Window length in seconds; by default
            from the model's frame count (:func:`default_window`).
        stride_s (float, optional): Stride in seconds; half the window by
            default.
        threshold (float, optional): Lowest score of a window in a
            segment; 0.5 for probabilities, required for cosine scores.
        topk (int): Segments kept per query and video, best first.
        cache_path (str, optional): Window cache file; none by default.
        batch_size (int): Windows per forward pass.
        progress (bool): Show a progress bar over the windows.
        on_failure (callable, optional): Called with ``(video, error)``
            for each video that cannot be read.
        background (list[str], optional): Labels the queries compete
            with (see :func:`query_scoring`).
        chunk_frames (int): Frames decoded at a time.
        info (dict, optional): Receives ``stats``: the
            :class:`WindowStats` of the run.
        window_frames (int, optional): Windows of this many frames every
            ``window_frames // 2`` frames, per video whatever its frame
            rate, instead of ``window_s`` and ``stride_s``.
        subtract_still (bool): Score each window minus its still picture
            (:func:`still_subtracted`): one more forward pass per window,
            no more decoding.

    Returns:
        dict: The result document (plain JSON types; see
        ``docs/find_moments.md``).

    Warns:
        BackgroundWarning: The model's label file, named by its config,
            cannot be read: the queries are scored without background.
    """
    queries = check_queries(queries)
    if topk < 1:
        raise ValueError(f'topk must be >= 1, got {topk}')
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    if window_frames is not None:
        if window_s is not None or stride_s is not None:
            raise ValueError('window_frames replaces window_s and stride_s:'
                             ' give one or the other')
        check_window_frames(window_frames)
        window_frames = int(window_frames)
    else:
        default_w, _ = default_window(scorer.model.num_segs)
        window_s = float(window_s if window_s is not None else default_w)
        stride_s = float(stride_s if stride_s is not None else window_s / 2)
        check_window(window_s, stride_s)
    # The text and the threshold first: a wrong query or threshold is
    # refused before any video is decoded.
    scoring = query_scoring(scorer.model, queries, background)
    threshold = resolve_threshold(threshold, scoring, subtract_still)
    source = _background_source(scorer, background, scoring.background)
    if 'warning' in source:
        warnings.warn(source['warning'], BackgroundWarning, stacklevel=2)
    windows, failures, stats = video_windows(
        scorer, videos, window_s, stride_s, cache_path, batch_size,
        progress, on_failure, chunk_frames, window_frames, subtract_still)
    if info is not None:
        info['stats'] = stats
    return dict(
        model=scorer.describe(), queries=queries, window_s=window_s,
        stride_s=stride_s, window_frames=window_frames,
        stride_frames=(max(1, window_frames // 2)
                       if window_frames is not None else None),
        score=scoring.name + (STILL_SUFFIX if subtract_still else ''),
        background=source, threshold=threshold,
        videos=[video_result(w, queries, scoring, threshold, topk,
                             subtract_still) for w in windows.values()],
        failures=failures)


def write_result(path: str, result: dict) -> None:
    """Write a :func:`find_moments` document to a ``.json`` file, or a
    ``.csv`` one (one row per segment: :data:`CSV_COLUMNS`), whole or not
    at all."""
    from models.utils.safe_io import write_json_or_csv
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    rows = ([
        video['video'], query, rank, f'{seg["start_s"]:.3f}',
        f'{seg["end_s"]:.3f}', f'{seg["score"]:.6f}', f'{seg["peak_s"]:.3f}'
    ] for video in result['videos'] for query in result['queries']
            for rank, seg in enumerate(video['segments'][query], 1))
    write_json_or_csv(path, result, CSV_COLUMNS, rows)


def format_time(seconds: float) -> str:
    """A time in seconds as ``mm:ss.s``, or ``h:mm:ss.s`` from an hour on."""
    tenths = int(round(seconds * 10))
    hours, rest = divmod(tenths, 36000)
    minutes, rest = divmod(rest, 600)
    text = f'{minutes:02d}:{rest // 10:02d}.{rest % 10}'
    return f'{hours}:{text}' if hours else text


def format_segments(result: dict) -> str:
    """The printed answer of a :func:`find_moments` document: per video,
    per query, its segments as ``start-end (score)``."""
    lines = []
    for video in result['videos']:
        lines.append(f'{video["video"]} ({format_time(video["duration_s"])}'
                     f', {len(video["windows"])} windows)')
        for query in result['queries']:
            segments = video['segments'][query]
            found = ', '.join(
                f'{format_time(s["start_s"])}-{format_time(s["end_s"])} '
                f'({s["score"]:.2f})' for s in segments) or 'none'
            lines.append(f'  {query}: {found}')
    return '\n'.join(lines)

"""Find when something happens in long videos: windows slid over each video
(:mod:`.windows`, :mod:`.window_stream`, :mod:`.feature_cache`) are scored
against text queries and the high-scoring ones merged into segments
(:mod:`.segments`); the result is the document ``find_moments.py --out``
writes.

A window's score for a query is the probability the model gives it among
the queries and the background labels (the model's own by default, minus
those worded like a query), as ``tools/zero_shot.py`` scores labels;
without background the queries compete among themselves, and one query
alone is scored by cosine similarity, which needs a threshold. A model
whose label file is missing warns (:class:`BackgroundWarning`).

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

from models.apis.feature_cache import (CacheStats, VideoWindows,
                                       WindowCache, stat_videos)
from models.apis.cli import check_queries, same_text
from models.apis.segments import merge_segments
from models.apis.window_stream import (DEFAULT_CHUNK_FRAMES, embed_windows,
                                       embed_windows_and_stills, open_video)
from models.apis.windows import (check_window, check_window_frames,
                                 default_window, frame_window, plan_windows)
from models.datasets.transforms import VideoReadError

#: Default threshold on probabilities: more likely than all others together.
DEFAULT_PROBABILITY_THRESHOLD = 0.5

#: Seconds between writes of the window cache during a run.
SAVE_EVERY_S = 60.0

CSV_COLUMNS = ('video', 'query', 'rank', 'start_s', 'end_s', 'score',
               'peak_s')

OnFailure = Callable[[str, Exception], None]


class BackgroundWarning(UserWarning):
    """The model's labels could not be read: no background labels."""


@contextlib.contextmanager
def background_warnings_printed(prog: str):
    """Print each :class:`BackgroundWarning` once, at once, to stderr as
    ``<prog>: warning: <message>``."""
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


def _background_source(scorer, background: Optional[Sequence[str]],
                       used: Sequence[str]) -> dict:
    """The document's ``background``."""
    if background is not None:
        if background:
            return dict(source='given', labels=len(used))
        return dict(source='none', labels=0,
                    why='no background asked (background=[], '
                    '--no-background)')
    if getattr(scorer.model, 'labels', None):
        return dict(source='model', labels=len(used))
    from models.apis.loading import _labels_of
    model_cfg = getattr(getattr(scorer, 'config', None), 'model', None) or {}
    missing = model_cfg.get('labels_or_label_file')  # a file missing here?
    if not isinstance(missing, str) or _labels_of(model_cfg) is not None:
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
    """Encode the queries and the ``background`` labels (the model's own
    when None, none when empty; those worded like a query are left out)."""
    from models.apis.video_scoring import label_text_features
    queries = check_queries(queries)
    if background is None:
        background = list(getattr(model, 'labels', None) or [])
    asked = {same_text(q) for q in queries}
    background = [
        label for label in dict.fromkeys(str(b).strip() for b in background)
        if label and same_text(label) not in asked
    ]
    text = label_text_features(model, queries + background, templates)
    kind, name = 'cosine', 'cosine similarity'
    if background or len(queries) > 1:
        kind = 'probability'
        name = f'probability among the {len(queries)} queries' + (
            f' and {len(background)} background labels' if background
            else '')
    return QueryScoring(name, kind, text, len(queries), background,
                        float(model.logit_scale_at_test()))


def window_scores(features: torch.Tensor,
                  scoring: QueryScoring) -> torch.Tensor:
    """``(K, Q)`` float32 scores of ``(K, V, D)`` window features; a
    ValueError when one is not finite."""
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
    """The ``threshold`` given, checked against the scores' range, else
    the default; a ValueError when none is given for cosine scores."""
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
    low, high = (0, 1) if probability else (-1, 1)
    if subtract_still:  # differences of two scores
        low, high = low - high, high - low
    if not low <= threshold <= high:
        raise ValueError(f'The scores are {what}'
                         f'{" minus " + what if subtract_still else ""}: the '
                         f'threshold must be in [{low}, {high}], got '
                         f'{threshold}')
    return float(threshold)


#: What ``subtract_still`` adds to the score's name.
STILL_SUFFIX = (", minus the same for the window's middle frame held "
                'still')


def video_windows(
    scorer, videos: Sequence[str], window_s: Optional[float],
    stride_s: Optional[float], cache_path: Optional[str] = None,
    batch_size: int = 8, progress: bool = True,
    on_failure: Optional[OnFailure] = None,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    window_frames: Optional[int] = None, stills: bool = False
) -> Tuple[Dict[str, VideoWindows], Dict[str, str], CacheStats]:
    """``({video: VideoWindows}, {video: error message}, CacheStats)`` in
    input order: each video's windows and features (and its stills' with
    ``stills``), from the cache when current, else embedded (arguments as
    :func:`find_moments`'s). The cache is written every
    :data:`SAVE_EVERY_S` seconds and at the end, also of an interrupted
    run."""
    from tqdm import tqdm
    cache = (WindowCache(cache_path, scorer.identity, window_s, stride_s,
                         window_frames) if cache_path else None)
    stats, failed = stat_videos(videos, on_failure)
    found = {video: cache.lookup(video, stat, stills)
             for video, stat in stats.items()} if cache else {}
    found = {video: windows for video, windows in found.items() if windows}
    reused, todo = list(found), [v for v in stats if v not in found]
    computed, saved = [], False
    last_save = time.monotonic()
    try:
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
                if cache is not None:
                    cache.add(stats[video], windows)
                    if time.monotonic() - last_save >= SAVE_EVERY_S:
                        saved = cache.save() or saved
                        last_save = time.monotonic()
    finally:
        if cache is not None:
            saved = cache.save() or saved
    failed = {v: failed[v] for v in videos if v in failed}
    return ({v: found[v] for v in videos if v in found}, failed,
            CacheStats(computed, reused, failed, cache and cache.path, saved,
                       sum(len(found[v].windows) for v in computed)))


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
    """One video's entry of the result document (docs/find_moments.md)."""
    scores = window_scores(windows.features, scoring)
    if subtract_still:  # a still scene scores about 0, motion keeps its own
        scores = scores - window_scores(windows.stills, scoring)
    per_query = {q: scores[:, i].tolist() for i, q in enumerate(queries)}
    size = None  # what tells this file from another of the same name
    with contextlib.suppress(OSError):
        size = os.path.getsize(windows.video)
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
    """Find when each query happens in each video file.

    Args:
        window_s, stride_s (float, optional): In seconds; by default
            :func:`default_window` of the model's frame count.
        threshold (float, optional): Lowest window score in a segment; 0.5
            for probabilities, required for cosine scores.
        topk (int): Segments kept per query and video.
        cache_path (str, optional): Window cache file; none by default.
        on_failure (callable, optional): ``(video, error)`` of each video
            that cannot be read.
        background (list[str], optional): See :func:`query_scoring`.
        info (dict, optional): Receives ``stats`` (a ``CacheStats``).
        window_frames (int, optional): Windows of this many frames every
            ``window_frames // 2``, instead of ``window_s``/``stride_s``.
        subtract_still (bool): Score windows minus their stills (each
            window's middle frame held still).

    Returns:
        dict: The result document (docs/find_moments.md); a
        :class:`BackgroundWarning` where the model's label file cannot be
        read.
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
        window_s = float(default_window(scorer.model.num_segs)[0]
                         if window_s is None else window_s)
        stride_s = float(stride_s if stride_s is not None else window_s / 2)
        check_window(window_s, stride_s)
    # A wrong query or threshold is refused before any decoding.
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
    """Write a :func:`find_moments` document to ``.json``, or ``.csv`` (a
    row per segment), whole or not at all."""
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
    """Per video and query, its segments as ``start-end (score)``."""
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

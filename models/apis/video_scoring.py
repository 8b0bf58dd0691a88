"""Score video files against text: load a model, embed the videos in
batches, and compare them with labels or a free-text query.

Example:
    >>> scorer = load_scoring_model(name='ViT-B/32-8')
    >>> videos = find_videos(['clips/'])
    >>> features, failures = embed_videos(scorer, videos)
    >>> text = label_text_features(scorer.model, ['juggling', 'reading'])
    >>> probs = score_labels(torch.stack(list(features.values())), text)
"""
import functools
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch.utils.data import DataLoader

from models.apis.loading import LoadedModel, load_model
from models.apis.video_files import (VIDEO_EXTENSIONS, NoVideosError,  # noqa
                                     find_videos, path_problem)
from models.datasets.transforms import VideoReadError
from models.engine.refusals import refusal_types
from models.recognizers.actionclip import ActionClip, label_probabilities
from models.text.prompts import load_templates, tokenize
from models.text.text_features import PromptBank, l2_normalize

#: What a wrong input raises (not a bug): tools report it in one line.
INPUT_ERRORS = (OSError, ValueError) + refusal_types()


ScoringModel = LoadedModel


def load_scoring_model(name: Optional[str] = None,
                       config: Optional[str] = None,
                       checkpoint: Optional[str] = None,
                       clip: Optional[str] = None,
                       num_frames: int = 8,
                       device: Union[str, torch.device] = 'cpu'
                       ) -> ScoringModel:
    """Load a model from exactly one source: a released ``name`` or
    checkpoint path, a ``config`` with its ``checkpoint``, or ``clip``
    weights (see :func:`models.apis.loading.load_model`)."""
    if sum(s is not None for s in (name, config, clip)) != 1:
        raise ValueError('Give exactly one model source: a released name, a '
                         'config with its checkpoint, or CLIP weights')
    if (config is None) != (checkpoint is None):
        raise ValueError('A config and its checkpoint go together: give both')
    return load_model(checkpoint=name if name is not None else checkpoint,
                      config=config, clip=clip, num_frames=num_frames,
                      device=device)


@torch.no_grad()
def encode_frames(model: ActionClip, frames: torch.Tensor) -> torch.Tensor:
    """``(N, V, D)`` L2-normalised float32 CPU features of
    ``(N, V * T, C, H, W)`` normalised frames."""
    features = l2_normalize(model.encode_video(frames).float())
    return features.view(len(frames), -1, features.shape[-1]).cpu()


def _decode(pipeline: Callable[[str], dict],
            videos: Sequence[str]) -> List[tuple]:
    """``(video, packed, error)`` of each video (a DataLoader's collate)."""
    items = []
    for video in videos:
        try:
            items.append((video, pipeline(video), None))
        except (VideoReadError, FileNotFoundError) as error:
            items.append((video, None, error))
    return items


def embed_videos(
    scorer: ScoringModel,
    videos: Sequence[str],
    batch_size: int = 8,
    progress: bool = True,
    on_failure: Optional[Callable[[str, Exception], None]] = None,
    num_workers: int = 0
) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """Embed videos in batches, decoded by a DataLoader (``num_workers``
    processes; 0: this one); unreadable files are skipped, each given to
    ``on_failure(video, error)`` as its batch arrives.

    Returns:
        tuple: ``(features, failures)``: ``{video: (V, D) features}`` in
        input order and ``{video: error message}``.
    """
    from tqdm import tqdm
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    if num_workers < 0:
        raise ValueError(f'num_workers must be >= 0, got {num_workers}')
    loader = DataLoader(
        list(videos), batch_size=batch_size,
        # Workers beyond the number of batches would only start and wait.
        num_workers=min(num_workers, math.ceil(len(videos) / batch_size)),
        collate_fn=functools.partial(_decode, scorer.preprocess.pipeline))
    features: Dict[str, torch.Tensor] = {}
    failures: Dict[str, str] = {}
    with tqdm(total=len(videos), unit='video', disable=not progress,
              dynamic_ncols=True) as bar:
        for batch in loader:
            # Frames of different sizes (aspect kept) go in separate
            # groups: padding would change their features.
            groups: Dict[tuple, list] = {}
            for video, packed, error in batch:
                if error is None:
                    groups.setdefault(tuple(packed['inputs'].shape),
                                      []).append((video, packed))
                    continue
                failures[video] = str(error)
                if on_failure is not None:
                    on_failure(video, error)
            for group in groups.values():
                frames = scorer.preprocess.normalize([p for _, p in group])
                for (video, _), feats in zip(
                        group, encode_frames(scorer.model, frames)):
                    features[video] = feats
            bar.update(len(batch))
    # Same-shape groups may finish out of order: back to the input order.
    return {v: features[v] for v in videos if v in features}, failures


def label_text_features(model: ActionClip,
                        labels: Sequence[str],
                        templates: Optional[Sequence[str]] = None
                        ) -> torch.Tensor:
    """``(num_templates, num_labels, D)`` L2-normalised float32 CPU
    features of every prompt (the model's templates by default)."""
    templates = load_templates(list(templates)) if templates else \
        model.templates
    return PromptBank(labels, templates).features(model.clip).float().cpu()


@torch.no_grad()
def query_text_features(model: ActionClip, query: str) -> torch.Tensor:
    """``(D, )`` L2-normalised float32 CPU feature of a query, as written."""
    if not query.strip():
        raise ValueError('The query is empty: describe what to look for')
    feature = model.encode_text(tokenize([query]))
    return l2_normalize(feature.float())[0].cpu()


#: ``(N, L)`` probabilities of ``(N, V, D)`` and ``(P, L, D)`` features.
score_labels = label_probabilities


def query_similarity(video_features: torch.Tensor,
                     query_feature: torch.Tensor) -> torch.Tensor:
    """``(N, )`` cosine similarities of ``(N, V, D)`` video features (mean
    over views) with a ``(D, )`` query feature."""
    return (video_features @ query_feature).mean(dim=1)


def top_k(probs: torch.Tensor, labels: Sequence[str],
          k: int) -> List[List[Tuple[str, float]]]:
    """The ``k`` best ``(label, probability)`` of each row of ``probs``."""
    values, indices = probs.topk(min(k, len(labels)), dim=-1)
    return [[(labels[i], float(v)) for v, i in zip(row_v, row_i)]
            for row_v, row_i in zip(values.tolist(), indices.tolist())]

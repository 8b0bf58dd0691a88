"""Score video files against text: load a model from one of three sources,
embed the videos in batches, and compare them with labels or a free-text
query (``tools/zero_shot.py``, ``tools/search_videos.py``). Finding the
files is :mod:`models.apis.video_files`' job (re-exported here).

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

#: What a wrong input (a path, a label, a model file, the network) raises
#: here, as opposed to a bug: command lines report these in one line. The
#: refusals are those MMAction2's scripts report the same way.
INPUT_ERRORS = (OSError, ValueError) + refusal_types()


#: A model ready to embed videos, with its preprocessing and identity.
ScoringModel = LoadedModel


def load_scoring_model(name: Optional[str] = None,
                       config: Optional[str] = None,
                       checkpoint: Optional[str] = None,
                       clip: Optional[str] = None,
                       num_frames: int = 8,
                       device: Union[str, torch.device] = 'cpu'
                       ) -> ScoringModel:
    """Load a model from exactly one source, through
    :func:`models.apis.loading.load_model` (the one loading path).

    Args:
        name (str, optional): A released ActionCLIP name (``'ViT-B/32-8'``)
            or the path of an ActionCLIP checkpoint; a checkpoint written by
            a training run is built from the config it records.
        config (str, optional): An MMAction2 config building ``ActionClip``;
            needs ``checkpoint``. Videos go through its ``test_pipeline``.
        checkpoint (str, optional): Weights trained with ``config``.
        clip (str, optional): Plain CLIP weights: an OpenAI name
            (``'ViT-B/32'``, cached in ``~/.cache/clip``) or a CLIP ``.pt``
            file; frames are fused by temporal mean pooling.
        num_frames (int): Frames sampled per video with ``clip``.
        device (str | torch.device): Where to run.

    Returns:
        ScoringModel: The model, its preprocessing and its identity.
    """
    if sum(s is not None for s in (name, config, clip)) != 1:
        raise ValueError('Give exactly one model source: a released name, a '
                         'config with its checkpoint, or CLIP weights')
    if (config is None) != (checkpoint is None):
        raise ValueError('A config and its checkpoint go together: give both')
    return load_model(
        checkpoint=name if name is not None else checkpoint,
        config=config,
        clip=clip,
        num_frames=num_frames,
        device=device)


@torch.no_grad()
def encode_frames(model: ActionClip, frames: torch.Tensor) -> torch.Tensor:
    """``(N, V, D)`` L2-normalised float32 features on the CPU of each
    view of each video, from ``(N, V * T, C, H, W)`` normalised frames."""
    features = l2_normalize(model.encode_video(frames).float())
    return features.view(len(frames), -1, features.shape[-1]).cpu()


def _decode(pipeline: Callable[[str], dict],
            videos: Sequence[str]) -> List[tuple]:
    """``(video, packed, error)`` of each video, decoded by the test
    pipeline in a DataLoader worker: one that cannot be read is an item
    too, so that it is reported and the others still embedded."""
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
    """Embed videos in batches; unreadable files are skipped, not fatal.
    A DataLoader decodes them with the model's test pipeline (in
    ``num_workers`` processes while the model runs).

    Args:
        scorer (ScoringModel): From :func:`load_scoring_model`.
        videos (list[str]): Video files.
        batch_size (int): Videos per forward pass.
        progress (bool): Show a tqdm progress bar on stderr.
        on_failure (callable, optional): Called with ``(video, error)`` as
            soon as the batch holding a video that cannot be read arrives
            (e.g. to report it), in input order.
        num_workers (int): Processes decoding videos; 0 decodes in this
            one.

    Returns:
        tuple: ``(features, failures)``: ``{video: (V, D) features}`` in
        the order of ``videos``, and ``{video: error message}``.
    """
    from tqdm import tqdm
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    if num_workers < 0:
        raise ValueError(f'num_workers must be >= 0, got {num_workers}')
    loader = DataLoader(
        list(videos),
        batch_size=batch_size,
        # Workers beyond the number of batches would only start and wait.
        num_workers=min(num_workers, math.ceil(len(videos) / batch_size)),
        collate_fn=functools.partial(_decode, scorer.preprocess.pipeline))
    features: Dict[str, torch.Tensor] = {}
    failures: Dict[str, str] = {}
    with tqdm(total=len(videos), unit='video', disable=not progress,
              dynamic_ncols=True) as bar:
        for batch in loader:
            # A pipeline that keeps the aspect ratio gives frames of
            # different sizes, which cannot be stacked into one tensor (the
            # data preprocessor would pad them, changing their features).
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
    """``(num_templates, num_labels, D)`` L2-normalised float32 features
    on the CPU of every (template, label) prompt, encoded once; the model's
    own templates (ActionCLIP's 16 by default) when none are given."""
    templates = load_templates(list(templates)) if templates else \
        model.templates
    bank = PromptBank(labels, templates)
    return bank.features(model.clip).float().cpu()


@torch.no_grad()
def query_text_features(model: ActionClip, query: str) -> torch.Tensor:
    """``(D, )`` L2-normalised float32 feature on the CPU of a free-text
    query, used as written (no template)."""
    if not query.strip():
        raise ValueError('The query is empty: describe what to look for')
    feature = model.encode_text(tokenize([query]))
    return l2_normalize(feature.float())[0].cpu()


#: Label probabilities of stored features: ``ActionClip.predict_scores``'s
#: own computation (``(N, V, D)`` and ``(P, L, D)`` features to ``(N, L)``).
score_labels = label_probabilities


def query_similarity(video_features: torch.Tensor,
                     query_feature: torch.Tensor) -> torch.Tensor:
    """``(N, )`` cosine similarities of ``(N, V, D)`` normalised video
    features (averaged over the views) with a ``(D, )`` query feature."""
    return (video_features @ query_feature).mean(dim=1)


def top_k(probs: torch.Tensor, labels: Sequence[str],
          k: int) -> List[List[Tuple[str, float]]]:
    """The ``k`` (at most ``L``) most probable labels of each video, from
    ``(N, L)`` probabilities: ``(label, probability)`` pairs, best first."""
    values, indices = probs.topk(min(k, len(labels)), dim=-1)
    return [[(labels[i], float(v)) for v, i in zip(row_v, row_i)]
            for row_v, row_i in zip(values.tolist(), indices.tolist())]

"""Video preprocessing on MMAction2's own pieces, as
``mmaction.apis.inference_recognizer`` does it: the config's
``test_pipeline`` through mmengine's :class:`~mmengine.dataset.Compose`
(decoding up to ``PackActionInputs``), then the model's own
``data_preprocessor`` (stacking, normalisation, the move to the model's
device).

The two halves are kept apart so that decoding can run in
:class:`~torch.utils.data.DataLoader` workers
(:func:`models.apis.video_scoring.embed_videos`) while the data
preprocessor, which lives on the model's device, runs in the main process.

Example:
    >>> preprocess = Preprocess(cfg.test_pipeline, model.data_preprocessor)
    >>> frames = preprocess('my_video.mp4')  # (V * T, C, H, W)
    >>> features = model.encode_video(frames.unsqueeze(0))
"""
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope
from torch import nn

from models.datasets.transforms import VideoReadError, describe_read_error
from models.recognizers.actionclip import CLIP_MEAN, CLIP_STD
from models.utils.paths import check_not_special

#: Readers of configs replaced by ours, which open the file by path.
_SAFER_READERS = {
    'DecordInit': 'VideoInit',
    'mmaction.DecordInit': 'VideoInit',
    'DecordDecode': 'VideoDecode',
    'mmaction.DecordDecode': 'VideoDecode',
}

#: The training-time frame cache (:mod:`models.datasets.frame_cache`)
#: decodes whole videos into memory and keeps them on disk: new videos are
#: read as they are, to the same frames.
_UNCACHED_READERS = {
    'CachedVideoInit': 'VideoInit',
    'CachedVideoDecode': 'VideoDecode',
}

#: A video file, or the dict a test pipeline starts from (``filename``,
#: optionally ``start_index``, ``modality`` ...).
Video = Union[str, Dict[str, Any]]


def released_test_pipeline(num_segs: int,
                           input_size: int = 224) -> List[dict]:
    """The transform configs of the released models' test pipeline:
    ``num_segs`` frames sampled uniformly, the short side resized to
    ``8/7`` of the crop, a centre crop of ``input_size``, then
    ``PackActionInputs``."""
    return [
        dict(type='VideoInit'),
        dict(
            type='SampleFrames',
            clip_len=1,
            frame_interval=1,
            num_clips=num_segs,
            test_mode=True),
        dict(type='VideoDecode'),
        dict(type='Resize', scale=(-1, round(input_size * 8 / 7))),
        dict(type='CenterCrop', crop_size=input_size),
        dict(type='FormatShape', input_format='NCHW'),
        dict(type='PackActionInputs'),
    ]


class VideoPipeline:
    """A test pipeline as a callable: a video to the packed dict
    (``inputs``: ``(V * T, C, H, W)`` uint8 frames, ``data_samples``).

    It holds no model, so it can run in ``DataLoader`` workers.

    Args:
        pipeline (list[dict]): Transform configs of MMAction2's scope,
            ending with ``FormatShape(input_format='NCHW')`` and then
            ``PackActionInputs`` (added when missing: older configs of
            this project's loader were accepted without it).

    Raises:
        ValueError: The pipeline does not give NCHW frames, the layout
            ``ActionClip.encode_video`` takes.
    """

    def __init__(self, pipeline: Sequence[dict]):
        # MMAction2's DecordInit hands decord the file's bytes, whose
        # in-memory reader can crash the process on a truncated AVI, MKV or
        # WebM (docs/decoding.md); VideoInit opens the path and names the
        # file on error. Same frames otherwise.
        steps = [
            dict(type=_UNCACHED_READERS[t['type']])
            if t['type'] in _UNCACHED_READERS else dict(
                t, type=_SAFER_READERS.get(t['type'], t['type']))
            for t in pipeline
        ]
        if not steps or steps[-1]['type'] != 'PackActionInputs':
            steps.append(dict(type='PackActionInputs'))
        if (len(steps) < 2 or steps[-2]['type'] != 'FormatShape'
                or steps[-2].get('input_format') != 'NCHW'):
            raise ValueError(
                'The test pipeline must end with FormatShape(input_format='
                f"'NCHW') (then PackActionInputs), got {steps[-2:]}")
        #: The transform configs, as built.
        self.steps = steps
        # The project's transforms (VideoInit ...) and MMAction2's are
        # registered in its scope, whatever the caller's scope is.
        with DefaultScope.overwrite_default_scope('mmaction'):
            self.compose = Compose(steps)

    def __call__(self, video: Video) -> dict:
        """Decode one video (a path, or a dict with ``filename``;
        ``start_index`` and ``modality`` default to 0 and ``'RGB'``, as
        ``inference_recognizer`` sets them) to ``PackActionInputs``'s
        ``inputs`` and ``data_samples``; FileNotFoundError for a missing
        file, :class:`VideoReadError` naming it when it cannot be
        decoded."""
        results = dict(filename=video) if isinstance(video, str) else dict(
            video)
        results.setdefault('start_index', 0)
        results.setdefault('modality', 'RGB')
        filename = results.get('filename')
        if filename:  # never opened: a FIFO would block
            check_not_special(filename, 'Video file')
        if not filename or not osp.isfile(filename):
            raise FileNotFoundError(f'Video file {filename!r} does not exist')
        try:
            packed = self.compose(results)
        except Exception as error:
            # decord's own message names neither the file nor the cause.
            raise VideoReadError(describe_read_error(filename,
                                                     error)) from error
        if packed is None:  # Compose's way of saying a transform gave up
            raise VideoReadError(
                describe_read_error(filename,
                                    ValueError('the pipeline dropped it')))
        return packed


class Preprocess:
    """A video to the normalised ``(V * T, C, H, W)`` frames a model takes:
    its test pipeline, then its data preprocessor.

    Args:
        pipeline (list[dict] | VideoPipeline): The test pipeline.
        data_preprocessor (nn.Module): The model's
            (``model.data_preprocessor``); its output is on its device,
            the model's.
        num_segs (int, optional): Frames the model fuses per view, where
            known.
    """

    def __init__(self,
                 pipeline: Union[Sequence[dict], VideoPipeline],
                 data_preprocessor: nn.Module,
                 num_segs: Optional[int] = None):
        if not isinstance(pipeline, VideoPipeline):
            pipeline = VideoPipeline(pipeline)
        self.pipeline = pipeline
        self.data_preprocessor = data_preprocessor
        #: Frames the model fuses per view, where known.
        self.num_segs = num_segs

    def __call__(self, video: Video) -> torch.Tensor:
        """Decode and normalise one video (as :meth:`VideoPipeline.__call__`
        takes it): ``(V * T, C, H, W)`` float32 frames on the data
        preprocessor's device."""
        return self.normalize([self.pipeline(video)])[0]

    def normalize(self, packed: Sequence[dict]) -> torch.Tensor:
        """Stack and normalise decoded videos (outputs of :attr:`pipeline`,
        all of one shape: the data preprocessor would pad different ones)
        to ``(N, V * T, C, H, W)`` float32 frames on its device."""
        data = dict(
            inputs=[p['inputs'] for p in packed],
            data_samples=[p['data_samples'] for p in packed])
        with torch.no_grad():
            return self.data_preprocessor(data, training=False)['inputs']


class VideoPreprocess(Preprocess):
    """The released models' preprocessing without a model: their test
    pipeline and ``ActionClip``'s default data preprocessor (CLIP's mean
    and std), on the CPU.

    Args:
        num_segs (int): Frames sampled uniformly over the video.
        input_size (int): Side of the centre crop.
    """

    def __init__(self, num_segs: int, input_size: int = 224):
        from mmaction.registry import MODELS
        with DefaultScope.overwrite_default_scope('mmaction'):
            data_preprocessor = MODELS.build(
                dict(
                    type='ActionDataPreprocessor',
                    mean=list(CLIP_MEAN),
                    std=list(CLIP_STD),
                    format_shape='NCHW'))
        super().__init__(
            released_test_pipeline(num_segs, input_size), data_preprocessor,
            num_segs)

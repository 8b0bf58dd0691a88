"""Video preprocessing as ``mmaction.apis.inference_recognizer`` does it:
the ``test_pipeline`` through mmengine's ``Compose``, then the model's
``data_preprocessor``; apart, so decoding can run in DataLoader workers.

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

_SAFER_READERS = {'DecordInit': 'VideoInit', 'DecordDecode': 'VideoDecode'}

#: Training's frame cache keeps whole videos on disk: read new ones plainly.
_UNCACHED_READERS = {
    'CachedVideoInit': 'VideoInit',
    'CachedVideoDecode': 'VideoDecode',
}

Video = Union[str, Dict[str, Any]]


def released_test_pipeline(num_segs: int,
                           input_size: int = 224) -> List[dict]:
    """The released models' test pipeline: ``num_segs`` uniform frames,
    short side to ``8/7`` of the crop, centre crop of ``input_size``."""
    return [
        dict(type='VideoInit'),
        dict(type='SampleFrames', clip_len=1, frame_interval=1,
             num_clips=num_segs, test_mode=True),
        dict(type='VideoDecode'),
        dict(type='Resize', scale=(-1, round(input_size * 8 / 7))),
        dict(type='CenterCrop', crop_size=input_size),
        dict(type='FormatShape', input_format='NCHW'),
        dict(type='PackActionInputs'),
    ]


class VideoPipeline:
    """A test pipeline (ending with ``FormatShape(input_format='NCHW')``,
    ``PackActionInputs`` added when missing, else a ValueError) as a
    callable: a video to the packed dict (``inputs``: ``(V * T, C, H, W)``
    uint8 frames). Holds no model, so it can run in DataLoader workers."""

    def __init__(self, pipeline: Sequence[dict]):
        # DecordInit's in-memory reader can crash on a truncated file
        # (docs/decoding.md); VideoInit opens the path: same frames.
        steps = [
            dict(type=_UNCACHED_READERS[t['type']])
            if t['type'] in _UNCACHED_READERS else dict(
                t, type=_SAFER_READERS.get(t['type'].removeprefix('mmaction.'),
                                           t['type']))
            for t in pipeline
        ]
        if not steps or steps[-1]['type'] != 'PackActionInputs':
            steps.append(dict(type='PackActionInputs'))
        if (len(steps) < 2 or steps[-2]['type'] != 'FormatShape'
                or steps[-2].get('input_format') != 'NCHW'):
            raise ValueError(
                'The test pipeline must end with FormatShape(input_format='
                f"'NCHW') (then PackActionInputs), got {steps[-2:]}")
        self.steps = steps
        with DefaultScope.overwrite_default_scope('mmaction'):
            self.compose = Compose(steps)

    def __call__(self, video: Video) -> dict:
        """Decode a path, or a dict with ``filename``; FileNotFoundError or
        :class:`VideoReadError` naming the file."""
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
    """A video to the normalised ``(V * T, C, H, W)`` frames a model takes,
    on its device: the test pipeline, then ``data_preprocessor``."""

    def __init__(self,
                 pipeline: Sequence[dict],
                 data_preprocessor: nn.Module,
                 num_segs: Optional[int] = None):
        self.pipeline = VideoPipeline(pipeline)
        self.data_preprocessor = data_preprocessor
        self.num_segs = num_segs

    def __call__(self, video: Video) -> torch.Tensor:
        """Decode and normalise one video."""
        return self.normalize([self.pipeline(video)])[0]

    def normalize(self, packed: Sequence[dict]) -> torch.Tensor:
        """Stack and normalise decoded videos of one shape to
        ``(N, V * T, C, H, W)`` float32 frames."""
        data = dict(inputs=[p['inputs'] for p in packed],
                    data_samples=[p['data_samples'] for p in packed])
        with torch.no_grad():
            return self.data_preprocessor(data, training=False)['inputs']


class VideoPreprocess(Preprocess):
    """The released models' preprocessing without a model, on the CPU."""

    def __init__(self, num_segs: int, input_size: int = 224):
        from mmaction.registry import MODELS
        with DefaultScope.overwrite_default_scope('mmaction'):
            data_preprocessor = MODELS.build(dict(
                type='ActionDataPreprocessor', mean=list(CLIP_MEAN),
                std=list(CLIP_STD), format_shape='NCHW'))
        super().__init__(released_test_pipeline(num_segs, input_size),
                         data_preprocessor, num_segs)

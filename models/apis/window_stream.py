"""The windows of a video decoded in one pass and embedded in batches, in
memory bounded by the chunk size whatever the video's length.

The test pipeline is split where it decodes (:func:`split_pipeline`):
``VideoInit`` opens the video once, the sampling steps choose each window's
frames, ``VideoDecode``'s readers (PyAV, else decord, else OpenCV) decode
them in ascending chunks, each dropped once its last window is formed; the
steps after decoding make of each window what the pipeline makes of a clip
cut to it.

Example:
    >>> stream = open_video(scorer, 'talk.mp4')
    >>> plan = plan_windows(stream.num_frames, stream.fps, 2.0, 1.0,
    ...                     stream.sampler)
    >>> features = embed_windows(scorer, stream, plan)   # (K, V, D)
"""
import dataclasses
import os.path as osp
from collections import namedtuple
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from models.apis.windows import WindowPlan, WindowSampler, still_sample
from models.datasets.transforms import (FallbackFrames, VideoReadError,
                                        _OpenCVFrames, _SequentialOpenCV,
                                        describe_read_error)
from models.utils.paths import check_not_special

#: Frames decoded at a time by default: a few windows' worth.
DEFAULT_CHUNK_FRAMES = 32

_INIT_TYPES = ('VideoInit', 'mmaction.VideoInit')
_DECODE_TYPES = ('VideoDecode', 'mmaction.VideoDecode')


class NonFiniteFeaturesError(ValueError):
    """The model gave NaN or infinite features."""


#: A test pipeline split at its opening and decoding steps.
PipelineParts = namedtuple('PipelineParts', 'init sampling decode post')


def split_pipeline(steps: Sequence[dict]) -> PipelineParts:
    """Split ``VideoPipeline.steps``; a ValueError unless ``VideoInit``
    comes first and ``VideoDecode`` later."""
    types = [step.get('type') for step in steps]
    decode = next((i for i, t in enumerate(types) if t in _DECODE_TYPES),
                  None)
    if not types or types[0] not in _INIT_TYPES or decode is None:
        raise ValueError(
            'Finding moments streams videos with decord: the test pipeline '
            'must open them with DecordInit or VideoInit first and decode '
            f'them with DecordDecode or VideoDecode, got {types}')
    return PipelineParts(
        dict(steps[0]), [dict(s) for s in steps[1:decode]],
        dict(steps[decode]), [dict(s) for s in steps[decode + 1:]])


def varying_times(filename: str, num_frames: int,
                  fps: float) -> Optional[np.ndarray]:
    """The frames' presentation times and the end, in seconds, or None
    where they are ``frame / fps`` or PyAV cannot give them."""
    from models.datasets.pyav_frames import frame_times
    times = frame_times(filename)
    if times is None or len(times) != num_frames + 1 or not times[-1] > 0:
        return None
    # A constant rate: every stamp within 0.1 ms of frame / fps.
    constant = np.allclose(times, np.arange(num_frames + 1) / fps, rtol=0,
                           atol=1e-4)
    return None if constant else times


class VideoStream:
    """One video opened by the model's pipeline, its frames read in
    ascending order (FileNotFoundError or VideoReadError if it cannot)."""

    def __init__(self, filename: str, parts: PipelineParts):
        from mmaction.registry import TRANSFORMS
        from mmengine.dataset import Compose
        from mmengine.registry import DefaultScope
        if osp.isdir(filename):
            raise VideoReadError(
                f'{filename!r} is a folder, not a video: list its videos '
                'with models.apis.video_files.find_videos')
        check_not_special(filename, 'Video file')  # a FIFO would block
        if not osp.isfile(filename):
            raise FileNotFoundError(f'Video file {filename!r} does not exist')
        self.filename = filename
        with DefaultScope.overwrite_default_scope('mmaction'):
            init = TRANSFORMS.build(parts.init)
            self._decode = TRANSFORMS.build(parts.decode)
            self.sampler = WindowSampler(parts.sampling)
            self.post = Compose(parts.post)  # makes a window of the frames
        try:
            results = init(
                dict(filename=filename, start_index=0, modality='RGB'))
        except Exception as error:
            raise VideoReadError(describe_read_error(filename,
                                                     error)) from error
        self._reader = results['video_reader']
        self.num_frames = int(results['total_frames'])
        self.fps = float(results['avg_fps'])
        self.frame_times = varying_times(filename, self.num_frames,
                                         self.fps)
        if self.frame_times is not None:  # a varying rate: the mean
            self.fps = self.num_frames / float(self.frame_times[-1])
        if not self.num_frames:
            raise VideoReadError(
                f'Video file {filename!r} has no frames; check that it '
                'plays, or copy or download it again')
        self._pyav = None
        self._opencv: Optional[_SequentialOpenCV] = None
        opencv_only = isinstance(self._reader, _OpenCVFrames)
        # backend='pyav': decord's get_batch, seeking across gaps between
        # windows, misreads open-GOP H.264 and B-frame MPEG-4 (decoding.md)
        pyav = getattr(self._decode, 'backend', 'cpu') == 'pyav'
        self._frames = FallbackFrames(
            filename, pyav=self._read_pyav if pyav else None,
            decord=None if opencv_only else lambda inds: (
                self._decode._decord_load_frames(self._reader,
                                                 np.asarray(inds))),
            opencv=self._read_opencv)

    def _read_pyav(self, indices: Sequence[int]) -> List[np.ndarray]:
        from models.datasets.pyav_frames import InOrderReader
        if self._pyav is None:
            self._pyav = InOrderReader.open(self.filename, self.num_frames)
        return self._pyav.read(indices)

    def _read_opencv(self, indices: Sequence[int]) -> List[np.ndarray]:
        if self._opencv is None:
            # OpenCV's count: the frames it can actually decode.
            reader = self._reader if isinstance(
                self._reader, _OpenCVFrames) else _OpenCVFrames(self.filename)
            self._opencv = _SequentialOpenCV(self.filename, len(reader))
        return self._opencv.read(indices)

    def read(self, indices: Sequence[int]) -> List[np.ndarray]:
        """``(H, W, 3)`` RGB frames at ascending indices, as the decoding
        step would give them."""
        return self._frames.read(indices)

    def close(self) -> None:
        for reader in (self._opencv, self._pyav):
            if reader is not None:
                reader.close()
        self._reader = None


class WindowFrames:
    """The decoded frames of each window of ``plan``, each frame decoded
    once, ``chunk_frames`` at a time, and held only until its last window
    is formed (:attr:`peak_held`: the most frames held at once)."""

    def __init__(self, stream: VideoStream, plan: WindowPlan,
                 chunk_frames: int = DEFAULT_CHUNK_FRAMES):
        if chunk_frames < 1:
            raise ValueError(f'chunk_frames must be >= 1, got {chunk_frames}')
        self.stream = stream
        self.plan = plan
        self.chunk_frames = chunk_frames
        self.peak_held = 0

    def __iter__(self) -> Iterator[Tuple[int, List[np.ndarray]]]:
        """Yield ``(window index, frames in the model's order)``."""
        indices = self.plan.frame_indices
        last_use = {i: k for k, inds in enumerate(indices)
                    for i in inds.tolist()}
        needed = sorted(last_use)
        held: Dict[int, np.ndarray] = {}
        decoded = 0  # frames of ``needed`` decoded so far
        for k, inds in enumerate(indices):
            inds = inds.tolist()
            top = max(inds)
            while not decoded or needed[decoded - 1] < top:
                chunk = needed[decoded:decoded + self.chunk_frames]
                for index, frame in zip(chunk, self.stream.read(chunk)):
                    if frame.base is not None:
                        # A view would keep its whole chunk alive.
                        frame = frame.copy()
                    # Shared by overlapping windows: a transform that
                    # changed one in place would change the others.
                    frame.flags.writeable = False
                    held[index] = frame
                decoded += len(chunk)
                self.peak_held = max(self.peak_held, len(held))
            yield k, [held[i] for i in inds]
            for i in set(inds):
                if last_use[i] == k:
                    del held[i]


def open_video(scorer, filename: str) -> VideoStream:
    """A video opened with the scorer's test pipeline."""
    return VideoStream(filename,
                       split_pipeline(scorer.preprocess.pipeline.steps))


@torch.no_grad()
def embed_windows(scorer,
                  stream: VideoStream,
                  plan: WindowPlan,
                  batch_size: int = 8,
                  chunk_frames: int = DEFAULT_CHUNK_FRAMES,
                  progress=None) -> torch.Tensor:
    """``(K, V, D)`` L2-normalised float32 CPU features of every window of
    ``plan`` (made with ``stream.sampler``), ``batch_size`` windows per
    forward pass; ``progress`` (tqdm) advances per window. Raises
    VideoReadError or :class:`NonFiniteFeaturesError`."""
    from models.apis.video_scoring import encode_frames
    features: List[torch.Tensor] = []
    batch: List[dict] = []
    for n, (k, window) in enumerate(
            WindowFrames(stream, plan, chunk_frames), 1):
        shape = window[0].shape[:2]
        packed = stream.post(dict(
            plan.samples[k], filename=stream.filename, imgs=list(window),
            original_shape=shape, img_shape=shape))
        if packed is None:
            raise VideoReadError(describe_read_error(
                stream.filename, ValueError('the pipeline dropped it')))
        batch.append(packed)
        if len(batch) == batch_size or n == len(plan.samples):
            inputs = scorer.preprocess.normalize(batch)
            features.append(encode_frames(scorer.model, inputs))
            if progress is not None:
                progress.update(len(batch))
            batch = []
    result = torch.cat(features)
    if not torch.isfinite(result).all():
        raise NonFiniteFeaturesError(
            f'The model gave non-finite features for windows of '
            f'{stream.filename!r}: its weights or the video are broken; '
            'scores of such windows would mean nothing')
    return result


def embed_windows_and_stills(scorer,
                             stream: VideoStream,
                             plan: WindowPlan,
                             batch_size: int = 8,
                             chunk_frames: int = DEFAULT_CHUNK_FRAMES,
                             progress=None
                             ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Features of every window and of its still picture
    (:func:`~models.apis.windows.still_sample`) in one streamed pass, as
    :func:`embed_windows`."""
    both = dataclasses.replace(
        plan,
        starts=[s for s in plan.starts for _ in range(2)],
        lengths=[n for n in plan.lengths for _ in range(2)],
        samples=[s for sample in plan.samples
                 for s in (sample, still_sample(sample))])
    features = embed_windows(scorer, stream, both, batch_size, chunk_frames,
                             progress)
    return features[0::2].contiguous(), features[1::2].contiguous()

"""Reading videos in MMAction2 pipelines without losing a long run to one
bad file.

``VideoInit`` / ``VideoDecode`` are drop-in replacements for MMAction2's
``DecordInit`` / ``DecordDecode``: decord first, OpenCV where decord fails
(decord 0.6 cannot copy frames whose width or height is odd), and errors that
name the file. ``TolerantVideoDataset`` is MMAction2's ``VideoDataset`` with
one more option, ``skip_unreadable``: off (the default), an unreadable video
stops the run at once with its name; on, it is left out with a warning, and
``TolerantAccMetric`` reports how many were left out.
"""
import functools
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmaction.datasets import VideoDataset
from mmaction.datasets.transforms import DecordDecode, DecordInit
from mmaction.evaluation import AccMetric
from mmaction.registry import DATASETS, METRICS, TRANSFORMS
from mmengine.logging import MMLogger, print_log

#: Metainfo key marking a sample whose video could not be read.
UNREADABLE_KEY = 'unreadable_video'


class VideoReadError(RuntimeError):
    """A video file could not be decoded; the message names the file."""


def describe_read_error(filename: str, error: BaseException) -> str:
    """One message for every way a video can fail to load.

    Args:
        filename (str): The video.
        error (BaseException): What the decoder raised.

    Returns:
        str: The message, naming the file, the cause and what to do.
    """
    if isinstance(error, VideoReadError):
        return str(error)
    if not osp.isfile(filename):
        return (f'Video file {filename!r} does not exist; check the path '
                'and the data root in the config')
    if osp.getsize(filename) == 0:
        return (f'Video file {filename!r} is empty (0 bytes); copy or '
                'download it again')
    return (f'Cannot decode video {filename!r}: it is truncated, corrupt or '
            f'not a video ({type(error).__name__}: '
            f'{str(error).strip()[:200]}); check that it plays, or copy or '
            'download it again')


@functools.lru_cache(maxsize=4096)
def _opencv_rate_and_length(filename: str, size: int,
                            mtime_ns: int) -> Tuple[float, int]:
    """Frame rate and number of decodable frames, counted once per version
    of a file (its size and mtime are part of the key): every later sample
    of the video decodes it once instead of twice."""
    import cv2
    capture = cv2.VideoCapture(filename)
    if not capture.isOpened():
        raise VideoReadError(
            f'Cannot decode video {filename!r} with decord or OpenCV: '
            'it is truncated, corrupt or not a video; check that it '
            'plays, or copy or download it again')
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    # CAP_PROP_FRAME_COUNT is an estimate from the container; walking the
    # stream is the only count that holds for damaged files.
    num_frames = 0
    while capture.grab():
        num_frames += 1
    capture.release()
    if not num_frames:
        raise VideoReadError(
            f'Video file {filename!r} has no frame that decord or OpenCV '
            'can decode; check that it plays, or copy or download it again')
    return fps, num_frames


class _OpenCVFrames:
    """Frames of a video read with OpenCV, as RGB arrays, decoding only up
    to the last frame asked for and keeping only the frames asked for (a
    long high-resolution video does not fit in memory whole)."""

    def __init__(self, filename: str):
        try:
            stat = os.stat(filename)
            version = (stat.st_size, stat.st_mtime_ns)
        except OSError:  # OpenCV names the problem below
            version = (-1, -1)
        self.filename = filename
        self.fps, self.num_frames = _opencv_rate_and_length(
            filename, *version)

    def __len__(self) -> int:
        return self.num_frames

    def get_batch(self, frame_inds: Sequence[int]) -> List[np.ndarray]:
        import cv2
        last = self.num_frames - 1
        indices = [min(int(i), last) for i in frame_inds]
        wanted = set(indices)
        frames = {}
        capture = cv2.VideoCapture(self.filename)
        for index in range(max(indices) + 1):
            if not capture.grab():
                break
            if index in wanted:
                ok, frame = capture.retrieve()
                if ok:
                    frames[index] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        capture.release()
        if len(frames) < len(wanted):
            raise VideoReadError(
                f'Cannot decode frames {sorted(wanted - set(frames))} of '
                f'video {self.filename!r}: it is truncated or corrupt; copy '
                'or download it again')
        return [frames[i] for i in indices]


@TRANSFORMS.register_module()
class VideoInit(DecordInit):
    """``DecordInit`` that falls back to OpenCV and names the file on error.

    Args are those of MMAction2's ``DecordInit``.
    """

    def transform(self, results: Dict) -> Dict:
        """Open the video and set ``total_frames`` and ``avg_fps``.

        Args:
            results (dict): The result dict, with ``filename``.

        Returns:
            dict: The result dict.
        """
        filename = results['filename']
        try:
            return super().transform(results)
        except Exception as error:
            if not osp.isfile(filename) or osp.getsize(filename) == 0:
                raise VideoReadError(describe_read_error(filename,
                                                         error)) from error
        reader = _OpenCVFrames(filename)
        results['video_reader'] = reader
        results['total_frames'] = len(reader)
        results['avg_fps'] = reader.fps
        return results


@TRANSFORMS.register_module()
class VideoDecode(DecordDecode):
    """``DecordDecode`` that falls back to OpenCV and names the file on
    error.

    Args are those of MMAction2's ``DecordDecode``.
    """

    def _decord_load_frames(self, container: object,
                            frame_inds: np.ndarray) -> List[np.ndarray]:
        if isinstance(container, _OpenCVFrames):
            return container.get_batch(frame_inds)
        return super()._decord_load_frames(container, frame_inds)

    def transform(self, results: Dict) -> Dict:
        """Decode the frames at ``frame_inds``.

        Args:
            results (dict): The result dict, with ``video_reader``.

        Returns:
            dict: The result dict with ``imgs``.
        """
        filename = results.get('filename', '<unknown>')
        try:
            return super().transform(dict(results))
        except Exception as error:
            if isinstance(results['video_reader'], _OpenCVFrames):
                raise VideoReadError(describe_read_error(filename,
                                                         error)) from error
        results['video_reader'] = _OpenCVFrames(filename)
        return super().transform(results)


@DATASETS.register_module()
class TolerantVideoDataset(VideoDataset):
    """MMAction2's ``VideoDataset``, with a choice of what an unreadable
    video does.

    Args:
        skip_unreadable (bool): False (default): stop at once with an error
            naming the video. True: warn, and leave the video out: in
            training another video takes its place; in testing it gets a
            blank input and the flag ``unreadable_video`` in its metainfo,
            which ``TolerantAccMetric`` leaves out of the accuracy and
            counts.
        **kwargs: Those of ``VideoDataset``.
    """

    def __init__(self, *args, skip_unreadable: bool = False, **kwargs):
        self.skip_unreadable = skip_unreadable
        self._blank: Optional[dict] = None
        super().__init__(*args, **kwargs)

    def prepare_data(self, idx: int):
        """Run the pipeline on one video, as ``skip_unreadable`` says.

        Args:
            idx (int): The index.

        Returns:
            Any: The pipeline's output; in training, None for a skipped
            video (mmengine then draws another).
        """
        try:
            data = super().prepare_data(idx)
        except Exception as error:
            filename = self.get_data_info(idx).get('filename', f'#{idx}')
            message = describe_read_error(filename, error)
            if not self.skip_unreadable:
                raise VideoReadError(
                    message + '; or set skip_unreadable=True on the dataset '
                    'to leave such videos out') from error
            print_log(
                f'Skipping unreadable video: {message}',
                logger=MMLogger.get_current_instance(),
                level=30)
            if not self.test_mode:
                return None
            return self._placeholder(idx, filename)
        if self.test_mode and self._blank is None:
            self._blank = dict(
                shape=tuple(data['inputs'].shape), dtype=data['inputs'].dtype)
        return data

    def _placeholder(self, idx: int, filename: str) -> dict:
        """A blank sample standing for an unreadable video in a test run."""
        from mmaction.structures import ActionDataSample
        if self._blank is None:
            self._find_blank_shape(idx)
        sample = ActionDataSample()
        sample.set_gt_label(self.get_data_info(idx)['label'])
        sample.set_metainfo({UNREADABLE_KEY: True, 'filename': filename})
        return dict(
            inputs=torch.zeros(self._blank['shape'],
                               dtype=self._blank['dtype']),
            data_samples=sample)

    def _find_blank_shape(self, failed_idx: int) -> None:
        # The blank must match the shape of the readable samples it is
        # batched with; the pipeline of any readable video gives it.
        for offset in range(1, len(self)):
            idx = (failed_idx + offset) % len(self)
            try:
                data = super().prepare_data(idx)
            except Exception:
                continue
            self._blank = dict(
                shape=tuple(data['inputs'].shape), dtype=data['inputs'].dtype)
            return
        raise VideoReadError(
            f'No video of the dataset {self.ann_file!r} can be read; check '
            'data_prefix and the video files')


@METRICS.register_module()
class TolerantAccMetric(AccMetric):
    """``AccMetric`` that leaves out the videos ``TolerantVideoDataset``
    could not read, and reports their number as ``skipped_videos``.

    Args are those of MMAction2's ``AccMetric``.
    """

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Keep the readable samples' results; record the skipped ones.

        Args:
            data_batch: The batch from the dataloader.
            data_samples (Sequence[dict]): The model's outputs.
        """
        readable = []
        for sample in data_samples:
            if sample.get(UNREADABLE_KEY, False):
                self.results.append(
                    dict(skipped=sample.get('filename', '<unknown>')))
            else:
                readable.append(sample)
        super().process(data_batch, readable)

    def compute_metrics(self, results: List) -> Dict:
        """Accuracy over the readable videos, plus ``skipped_videos``.

        Args:
            results (list): The results of every rank.

        Returns:
            dict: AccMetric's metrics and ``skipped_videos``.
        """
        skipped = [r['skipped'] for r in results if 'skipped' in r]
        kept = [r for r in results if 'skipped' not in r]
        if skipped:
            print_log(
                f'{len(skipped)} unreadable video(s) left out of the '
                f'accuracy: {", ".join(sorted(skipped)[:20])}'
                f'{" ..." if len(skipped) > 20 else ""}',
                logger=MMLogger.get_current_instance(),
                level=30)
        if not kept:
            raise VideoReadError(
                f'None of the {len(skipped)} test videos could be read')
        metrics = super().compute_metrics(kept)
        metrics['skipped_videos'] = len(skipped)
        return metrics

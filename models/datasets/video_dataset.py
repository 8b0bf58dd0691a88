"""MMAction2's ``VideoDataset`` with a choice of what an unreadable video
does: stop with its name (the default), or leave it out."""
import contextlib
from typing import Optional

import torch
from mmaction.datasets import VideoDataset
from mmaction.registry import DATASETS
from mmengine.logging import print_log

from models.datasets.transforms import (VideoReadError, describe_read_error,
                                        video_path)
from models.utils.paths import special_file_kind

#: Metainfo key marking a sample whose video could not be read.
UNREADABLE_KEY = 'unreadable_video'


@DATASETS.register_module()
class TolerantVideoDataset(VideoDataset):
    """MMAction2's ``VideoDataset``, with a choice of what an unreadable
    video does.

    Args:
        skip_unreadable (bool): False: stop with an error naming the
            video. True: warn and leave it out: in training another video
            takes its place; in testing it gets a blank input flagged
            ``unreadable_video``, which ``TolerantAccMetric`` counts apart.
    """

    def __init__(self, *args, skip_unreadable: bool = False, **kwargs):
        self.skip_unreadable = skip_unreadable
        self._blank: Optional[tuple] = None  # (shape, dtype)
        super().__init__(*args, **kwargs)

    def prepare_data(self, idx: int):
        """The pipeline's output; None for a video skipped in training."""
        try:
            data = self._prepare_file(idx)
        except Exception as error:
            filename = self.get_data_info(idx).get('filename', f'#{idx}')
            message = describe_read_error(filename, error)
            if not self.skip_unreadable:
                raise VideoReadError(
                    message + '; or set skip_unreadable=True on the dataset '
                    'to leave such videos out') from error
            print_log(f'Skipping unreadable video: {message}',
                      logger='current', level=30)
            if not self.test_mode:
                return None
            return self._placeholder(idx, filename)
        if self.test_mode and self._blank is None:
            self._blank = (tuple(data['inputs'].shape), data['inputs'].dtype)
        return data

    def _prepare_file(self, idx: int):
        """``VideoDataset.prepare_data``, refusing a FIFO, socket or device
        unopened (a FIFO would wait forever)."""
        filename = self.get_data_info(idx).get('filename')
        if isinstance(filename, str):
            for path in dict.fromkeys((filename, video_path(filename))):
                kind = special_file_kind(path)
                if kind is not None:
                    raise VideoReadError(
                        f'Video file {filename!r} is {kind}, not a regular '
                        'file')
        return super().prepare_data(idx)

    def _placeholder(self, idx: int, filename: str) -> dict:
        """A blank sample standing for an unreadable video in a test run,
        shaped as the readable samples it is batched with."""
        from mmaction.structures import ActionDataSample
        for offset in range(1, len(self)):
            if self._blank is not None:
                break
            with contextlib.suppress(Exception):
                inputs = self._prepare_file((idx + offset) % len(self))[
                    'inputs']
                self._blank = (tuple(inputs.shape), inputs.dtype)
        if self._blank is None:
            raise VideoReadError(
                f'No video of the dataset {self.ann_file!r} can be read; '
                'check data_prefix and the video files')
        sample = ActionDataSample()
        sample.set_gt_label(self.get_data_info(idx)['label'])
        sample.set_metainfo({UNREADABLE_KEY: True, 'filename': filename})
        shape, dtype = self._blank
        return dict(inputs=torch.zeros(shape, dtype=dtype),
                    data_samples=sample)

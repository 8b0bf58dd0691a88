"""Several temporal views of a video for a frame-sampling (2D) model: the
"N clips" of the supervised protocol's N x M views."""
import numpy as np
from mmaction.datasets.transforms import SampleFrames
from mmaction.registry import TRANSFORMS


@TRANSFORMS.register_module()
class MultiViewSampleFrames(SampleFrames):
    """``SampleFrames`` (``clip_len=1``, ``test_mode``) giving
    ``num_views`` interleaved views of ``num_clips`` frames: view ``v``
    takes the frame at ``(v + 0.5) / num_views`` of each segment (one view
    is ``SampleFrames``). The indices come view by view, as
    ``twice_sample`` orders them."""

    def __init__(self, num_views: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        if num_views < 1:
            raise ValueError(f'num_views must be >= 1, got {num_views}')
        if self.clip_len != 1 or not self.test_mode or self.twice_sample:
            raise ValueError('MultiViewSampleFrames samples single frames '
                             '(clip_len=1) at test time (test_mode=True), '
                             'without twice_sample')
        self.num_views = num_views

    def _get_test_clips(self, num_frames: int,
                        ori_clip_len: float) -> np.ndarray:
        """The frame offsets of every view, view by view."""
        segment = num_frames / float(self.num_clips)
        base = np.arange(self.num_clips) * segment
        return np.concatenate([
            base + segment * (view + 0.5) / self.num_views
            for view in range(self.num_views)])

    def __repr__(self) -> str:
        return (f'{super().__repr__()[:-1]}, num_views={self.num_views})')

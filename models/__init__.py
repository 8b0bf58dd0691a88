"""ActionCLIP for MMAction2.

Importing this package (configs do, through ``custom_imports``) first
repairs the known breakages of the installed stack, makes checkpoint
loading safe and saving atomic, then registers ``ActionClip`` in
MMAction2's ``MODELS``.
"""
from . import compat

compat.apply_runtime_fixes()

from . import checkpoint_safety  # noqa: E402

checkpoint_safety.install()

from . import refusals, training_checkpoints  # noqa: E402

training_checkpoints.install()
refusals.install_excepthook()

from .actionclip import ActionClip  # noqa: E402
from .adapters import MeanPoolAdapter, TransformerAdapter  # noqa: E402
from .clip_builder import build_clip  # noqa: E402
from .label_check import LabelSetCheckHook  # noqa: E402
from .load import init_actionclip  # noqa: E402
from .reproducibility import EpochSeedHook  # noqa: E402
from .video_loading import (TolerantAccMetric, TolerantVideoDataset,  # noqa: E402,E501
                            VideoDecode, VideoInit, VideoReadError)

__all__ = [
    'ActionClip', 'TransformerAdapter', 'MeanPoolAdapter', 'build_clip',
    'init_actionclip', 'VideoInit', 'VideoDecode', 'VideoReadError',
    'TolerantVideoDataset', 'TolerantAccMetric', 'EpochSeedHook',
    'LabelSetCheckHook'
]

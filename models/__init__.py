"""ActionCLIP for MMAction2.

Importing this package (configs do, through ``custom_imports``) first
repairs the known breakages of the installed stack, then registers the
recognizer, its datasets, transforms, metric, hooks and runner in
MMAction2's registries. How other models load, save and train is left as
it is: safe checkpoint loading, atomic saving and checked resumes belong
to the runner the configs name (``runner_type = 'ActionClipRunner'``).

Each subpackage's docstring says what it holds (recognizers, text,
backbones, acceleration, datasets, data_preprocessors, evaluation, engine,
checkpoints, apis, compat, utils; benchmark is not imported here).
"""
from models import compat

compat.apply_runtime_fixes()

from models.checkpoints import safe_loading  # noqa: E402

# The released ActionCLIP URLs only; every other path keeps mmengine's
# loader (the configs' runner, ActionClipRunner, loads safely itself).
safe_loading.register_release_loader()

from models.apis.loading import init_actionclip  # noqa: E402
from models.backbones.clip_builder import build_clip  # noqa: E402
from models.data_preprocessors.device_augment import \
    DeviceAugmentDataPreprocessor  # noqa: E402
from models.datasets.augment_params import FuseOnDevice  # noqa: E402
from models.datasets.frame_cache import (CachedVideoDecode,  # noqa: E402
                                         CachedVideoInit)
from models.datasets.multi_view import MultiViewSampleFrames  # noqa: E402
from models.datasets.transforms import (VideoDecode,  # noqa: E402
                                        VideoInit, VideoReadError)
from models.datasets.video_dataset import TolerantVideoDataset  # noqa: E402
from models.engine.hooks.epoch_seed_hook import EpochSeedHook  # noqa: E402
from models.engine.hooks.frame_cache_hook import \
    FillFrameCacheHook  # noqa: E402
from models.engine.hooks.label_check import LabelSetCheckHook  # noqa: E402
from models.engine.runner import ActionClipRunner  # noqa: E402
from models.evaluation.metrics import TolerantAccMetric  # noqa: E402
from models.recognizers.actionclip import ActionClip  # noqa: E402
from models.recognizers.adapters import (MeanPoolAdapter,  # noqa: E402
                                         TransformerAdapter)

__all__ = [
    'ActionClip', 'TransformerAdapter', 'MeanPoolAdapter', 'build_clip',
    'init_actionclip', 'VideoInit', 'VideoDecode', 'VideoReadError',
    'CachedVideoInit', 'CachedVideoDecode',
    'TolerantVideoDataset', 'TolerantAccMetric', 'EpochSeedHook',
    'FillFrameCacheHook',
    'LabelSetCheckHook', 'DeviceAugmentDataPreprocessor', 'FuseOnDevice',
    'ActionClipRunner', 'MultiViewSampleFrames'
]

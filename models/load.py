"""Plain-PyTorch entry point: a released ActionCLIP model by name or path.

Example:
    >>> model, preprocess = init_actionclip('ViT-B/32-8', device='cpu')
    >>> video = preprocess(dict(filename='test.mp4', start_index=0))
    >>> features = model.encode_video(video.unsqueeze(0))
"""
import os.path as osp
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.registry import DefaultScope

from .actionclip import ActionClip
from .checkpoint_safety import load_checkpoint_file
from .clip_builder import infer_clip_arch
from .pretrained import (ACTIONCLIP_CHECKPOINTS, available_checkpoints,
                         fetch_hub_checkpoint)
from .video_loading import VideoReadError, describe_read_error

# CLIP's normalisation on 0-1 pixels (the data preprocessor uses 0-255).
_MEAN = (0.48145466, 0.4578275, 0.40821073)
_STD = (0.26862954, 0.26130258, 0.27577711)


def available_models() -> List[str]:
    """Names accepted by :func:`init_actionclip`.

    Returns:
        list[str]: The released checkpoint names.
    """
    return available_checkpoints()


class PipelinePreprocess:
    """Decode a video with an MMAction2 test pipeline and normalise it as the
    model's data preprocessor would.

    Args:
        pipeline (list[dict]): Transform configs; ``PackActionInputs`` is
            dropped, the rest must end with ``FormatShape(input_format=
            'NCHW')``.
        mean (list[float]): Per-channel mean, on pixels divided by
            ``scale``.
        std (list[float]): Per-channel std, on the same scale.
        scale (float): Pixels are divided by it before normalising.
    """

    def __init__(self,
                 pipeline: Sequence[dict],
                 mean: Sequence[float],
                 std: Sequence[float],
                 scale: float = 1.0):
        from mmaction.registry import TRANSFORMS
        steps = [dict(t) for t in pipeline if t['type'] != 'PackActionInputs']
        if not steps or steps[-1]['type'] != 'FormatShape' or steps[-1].get(
                'input_format') != 'NCHW':
            raise ValueError(
                'The test pipeline must end with FormatShape(input_format='
                f"'NCHW') (then PackActionInputs), got {steps[-1:]}")
        with DefaultScope.overwrite_default_scope('mmaction'):
            self.pipeline = [TRANSFORMS.build(t) for t in steps]
        self.mean = torch.tensor(list(mean), dtype=torch.float).view(
            1, 3, 1, 1)
        self.std = torch.tensor(list(std), dtype=torch.float).view(1, 3, 1, 1)
        self.scale = scale

    def __call__(self, results: Union[str, dict]) -> torch.Tensor:
        """Decode and normalise.

        Args:
            results (str | dict): A video path, or a dict with ``filename``
                (and ``start_index``, as MMAction2's pipelines expect).

        Returns:
            torch.Tensor: ``(V * T, C, H, W)`` float32 frames.
        """
        if isinstance(results, str):
            results = dict(filename=results)
        results = dict(results)
        results.setdefault('start_index', 0)
        results.setdefault('modality', 'RGB')
        filename = results.get('filename')
        if not filename or not osp.isfile(filename):
            raise FileNotFoundError(f'Video file {filename!r} does not exist')
        try:
            for transform in self.pipeline:
                results = transform(results)
        except Exception as error:
            # decord's own message names neither the file nor the cause.
            raise VideoReadError(describe_read_error(filename,
                                                     error)) from error
        imgs = torch.from_numpy(results['imgs']).float()
        if self.scale != 1:
            imgs = imgs.div_(self.scale)
        # FormatShape adds a leading clip axis (num_clips * clip_len frames).
        imgs = imgs.reshape(-1, *imgs.shape[-3:])
        return (imgs - self.mean) / self.std


class VideoPreprocess(PipelinePreprocess):
    """Decode a video into the normalised ``(T, C, H, W)`` tensor the model
    takes, with the test pipeline of the released models.

    Args:
        num_segs (int): Frames sampled uniformly over the video.
        input_size (int): Side of the centre crop.
    """

    def __init__(self, num_segs: int, input_size: int = 224):
        self.num_segs = num_segs
        super().__init__(
            (
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
            ),
            _MEAN,
            _STD,
            scale=255)


def strip_module_prefix(state: dict) -> dict:
    """Drop the ``module.`` that (Distributed)DataParallel puts before every
    key.

    Args:
        state (dict): A state dict.

    Returns:
        dict: The same entries, keys without ``module.``.
    """
    return {k[len('module.'):] if k.startswith('module.') else k: v
            for k, v in state.items()}


def read_state_dict(path: str) -> dict:
    """The model weights of a checkpoint file, read safely.

    Args:
        path (str): A checkpoint (mmengine's ``state_dict`` entry or a bare
            state dict).

    Returns:
        dict: The state dict, keys without ``module.``.
    """
    checkpoint = load_checkpoint_file(path, map_location='cpu')
    return strip_module_prefix(checkpoint.get('state_dict', checkpoint))


def adapter_depth(state: dict) -> int:
    """Blocks of the transformer adapter whose weights ``state`` holds.

    Args:
        state (dict): An ActionClip state dict.

    Returns:
        int: The number of ``adapter.transformer.resblocks``.
    """
    return len({
        k.split('.')[3]
        for k in state if k.startswith('adapter.transformer.resblocks.')
    })


def actionclip_checkpoint_path(name_or_path: str) -> str:
    """The local file of a released model (from the hub cache, downloaded
    there when missing) or of a checkpoint path.

    Args:
        name_or_path (str): A name from :func:`available_models` or a path.

    Returns:
        str: The checkpoint file.
    """
    if name_or_path in ACTIONCLIP_CHECKPOINTS:
        entry = ACTIONCLIP_CHECKPOINTS[name_or_path]
        return fetch_hub_checkpoint(entry['url'], entry.get('sha256'))
    if osp.isfile(osp.expanduser(name_or_path)):
        return osp.expanduser(name_or_path)
    raise ValueError(
        f'Model {name_or_path!r} not found: it is neither a released '
        f'model ({available_models()}) nor an existing file')


def init_actionclip(
    name_or_path: str,
    device: Union[str, torch.device] = 'cpu',
    labels: Optional[List[str]] = None,
    templates: Optional[List[str]] = None
) -> Tuple[ActionClip, Callable[[Union[str, dict]], torch.Tensor]]:
    """Load a released ActionCLIP model, or one saved by this project.

    Args:
        name_or_path (str): A name from :func:`available_models` (its file is
            taken from ``$TORCH_HOME/hub/checkpoints`` when there, else
            downloaded there) or the path of a checkpoint file.
        device (str | torch.device): Where to put the model.
        labels (list[str], optional): Class names, so that ``model.predict``
            / ``model.predict_scores`` work directly.
        templates (list[str], optional): Prompt templates for ``labels``.

    Returns:
        tuple: ``(model, preprocess)``: the model in eval mode and a callable
        turning ``dict(filename=..., start_index=0)`` into the normalised
        ``(T, C, H, W)`` tensor.
    """
    path = actionclip_checkpoint_path(name_or_path)
    state = read_state_dict(path)
    if 'adapter.frame_position_embeddings.weight' in state:
        num_segs = state['adapter.frame_position_embeddings.weight'].shape[0]
        adapter = 'transformer'
    else:
        raise ValueError(
            f'{path} has no adapter.frame_position_embeddings.weight: it is '
            'not an ActionCLIP checkpoint in this layout (original ActionCLIP '
            'files need converting first)')
    model = ActionClip(
        clip_arch=infer_clip_arch(state, prefix='clip.'),
        num_adapter_segs=num_segs,
        num_adapter_layers=adapter_depth(state),
        temporal_adapter=adapter,
        to_float32=True,
        labels_or_label_file=labels,
        templates_or_template_file=templates)
    model.load_state_dict(state, strict=True)
    model.to(device).eval()
    input_size = model.clip.visual.input_resolution
    return model, VideoPreprocess(num_segs, input_size)

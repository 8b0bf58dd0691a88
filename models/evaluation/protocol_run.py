"""Run one split of a protocol through MMAction2's own test loop.

Each split gets a config file of its own that inherits the model's config
and changes only the classes and the test list, as the project's
``*zeroshot*`` configs do; the run is then what ``mim test mmaction
<that config> --checkpoint <checkpoint>`` does (the same runner, pipeline,
metric and checkpoint loading), in this process.
"""
import copy
import os.path as osp
from typing import Dict, List, Optional, Sequence


def multi_view_pipeline(pipeline: Sequence[dict], clips: int,
                        crops: int) -> List[dict]:
    """A test pipeline turned to ``clips`` x ``crops`` views.

    ``SampleFrames`` becomes :class:`MultiViewSampleFrames` with
    ``clips`` views; for 3 crops, ``CenterCrop(S)`` becomes ``ThreeCrop(S)``
    and the ``Resize`` before it scales the short side to ``S``, as X-CLIP
    and ViFi-CLIP test (three squares along the long side).

    Args:
        pipeline (list[dict]): The model config's test pipeline.
        clips (int): Temporal views.
        crops (int): Spatial crops: 1 (the pipeline's) or 3.

    Returns:
        list[dict]: The new pipeline.

    Raises:
        ValueError: The pipeline has no single-frame ``SampleFrames``, or
            no ``CenterCrop`` to make three crops from.
    """
    steps = [copy.deepcopy(dict(step)) for step in pipeline]
    types = [step['type'] for step in steps]
    if 'SampleFrames' not in types or steps[types.index(
            'SampleFrames')].get('clip_len', 1) != 1:
        raise ValueError('The test pipeline has no SampleFrames of single '
                         f'frames (clip_len=1) to take views from: {types}')
    at = types.index('SampleFrames')
    sample = steps[at]
    steps[at] = dict(type='MultiViewSampleFrames', num_views=clips,
                     clip_len=1, frame_interval=sample.get('frame_interval',
                                                           1),
                     num_clips=sample['num_clips'], test_mode=True)
    if crops == 3:
        if 'CenterCrop' not in types:
            raise ValueError('The test pipeline has no CenterCrop to make '
                             f'three crops from: {types}')
        at = types.index('CenterCrop')
        size = steps[at]['crop_size']
        steps[at] = dict(type='ThreeCrop', crop_size=size)
        if at > 0 and types[at - 1] == 'Resize':
            steps[at - 1] = dict(type='Resize', scale=(-1, size))
    elif crops != 1:
        raise ValueError(f'crops must be 1 or 3, got {crops}')
    return steps


def view_pipeline(model_config: str, clips: int, crops: int) -> List[dict]:
    """The model config's test pipeline turned to ``clips`` x ``crops``
    views (:func:`multi_view_pipeline`).

    Args:
        model_config (str): The model's config file.
        clips (int): Temporal views.
        crops (int): Spatial crops.

    Returns:
        list[dict]: The pipeline.
    """
    from mmengine.config import Config
    cfg = Config.fromfile(model_config)
    return multi_view_pipeline(
        cfg.test_dataloader.dataset.pipeline, clips, crops)


def split_config_text(model_config: str, label_file: str, ann_file: str,
                      video_root: str, workers: Optional[int] = None,
                      pipeline: Optional[List[dict]] = None) -> str:
    """The text of a split's test config.

    Args:
        model_config (str): The model's config file (its model, test
            pipeline, dataloader and metric are kept).
        label_file (str): The split's class texts, one a line.
        ann_file (str): The split's MMAction2 annotation list.
        video_root (str): The folder the list's paths are relative to.
        workers (int, optional): Data loading processes; the config's by
            default.
        pipeline (list[dict], optional): A test pipeline instead of the
            config's (multi-view tests).

    Returns:
        str: The config text.
    """
    dataset = dict(ann_file=osp.abspath(ann_file),
                   data_prefix=dict(video=osp.abspath(video_root)))
    if pipeline is not None:
        dataset['pipeline'] = pipeline
    loader: Dict[str, object] = dict(dataset=dataset)
    if workers is not None:
        loader.update(num_workers=workers, persistent_workers=workers > 0)
    return (
        '# One split of an evaluation protocol, written by '
        'tools/eval_protocol.py;\n'
        '# mim test mmaction THIS_CONFIG --checkpoint CHECKPOINT runs it '
        'alone.\n'
        f'_base_ = [{osp.abspath(model_config)!r}]\n\n'
        f'model = dict(labels_or_label_file={osp.abspath(label_file)!r})\n'
        f'test_dataloader = {loader!r}\n')


def run_split(config: str, checkpoint: str, work_dir: str) -> dict:
    """Test a checkpoint with a split's config, as ``mim test`` does.

    Args:
        config (str): The split's config file.
        checkpoint (str): The checkpoint file.
        work_dir (str): The runner's work folder (its logs).

    Returns:
        dict: The metrics (``acc/top1``, ``acc/top5``, ...).
    """
    from mmaction.registry import RUNNERS
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(config)
    cfg.work_dir = work_dir
    cfg.load_from = checkpoint
    # As MMAction2's tools/test.py builds its runner.
    runner = (Runner.from_cfg(cfg) if 'runner_type' not in cfg else
              RUNNERS.build(cfg))
    return dict(runner.test())

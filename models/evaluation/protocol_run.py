"""Run one split of a protocol through MMAction2's own test loop: a
config of its own inherits the model's and changes only the classes and
the test list; the run is what ``mim test mmaction <that config>
--checkpoint <checkpoint>`` does, in this process. Only the standard
library at import (the tool reads it before torch).
"""
import argparse
import copy
import os
import os.path as osp
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from . import protocols


def multi_view_pipeline(pipeline: Sequence[dict], clips: int,
                        crops: int) -> List[dict]:
    """A test pipeline turned to ``clips`` x ``crops`` (1 or 3) views.

    ``SampleFrames`` becomes :class:`MultiViewSampleFrames`; for 3 crops,
    ``CenterCrop(S)`` becomes ``ThreeCrop(S)`` and the ``Resize`` before it
    scales the short side to ``S``, as X-CLIP and ViFi-CLIP test. A
    ValueError without a single-frame ``SampleFrames`` or, for 3 crops, a
    ``CenterCrop``.
    """
    steps = [copy.deepcopy(dict(step)) for step in pipeline]
    types = [step['type'] for step in steps]
    at = types.index('SampleFrames') if 'SampleFrames' in types else -1
    if at < 0 or steps[at].get('clip_len', 1) != 1:
        raise ValueError('The test pipeline has no SampleFrames of single '
                         f'frames (clip_len=1) to take views from: {types}')
    sample = steps[at]
    steps[at] = dict(type='MultiViewSampleFrames', num_views=clips,
                     clip_len=1, num_clips=sample['num_clips'],
                     frame_interval=sample.get('frame_interval', 1),
                     test_mode=True)
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
    """:func:`multi_view_pipeline` of a config file's test pipeline."""
    from mmengine.config import Config
    return multi_view_pipeline(Config.fromfile(
        model_config).test_dataloader.dataset.pipeline, clips, crops)


def split_config_text(model_config: str, label_file: str, ann_file: str,
                      video_root: str, workers: Optional[int] = None,
                      pipeline: Optional[List[dict]] = None) -> str:
    """The text of a split's test config: ``model_config`` with the class
    texts of ``label_file``, the list ``ann_file`` (paths relative to
    ``video_root``) and, where given, ``workers`` and ``pipeline``."""
    loader = protocols.dataloader(ann_file, video_root, workers)
    if pipeline is not None:
        loader['dataset']['pipeline'] = pipeline
    return (
        '# One split of an evaluation protocol, written by '
        'tools/eval_protocol.py;\n'
        '# mim test mmaction THIS_CONFIG --checkpoint CHECKPOINT runs it '
        'alone.\n'
        f'_base_ = [{osp.abspath(model_config)!r}]\n\n'
        f'model = dict(labels_or_label_file={osp.abspath(label_file)!r})\n'
        f'test_dataloader = {loader!r}\n')


def model_files(model: str, config: Optional[str],
                work_dir: str) -> Tuple[str, str]:
    """``(checkpoint, config to inherit)`` of ``--model`` (a released
    name, downloaded when missing, or a file) and ``--config`` (None: the
    release table's, or the one the checkpoint records, written into
    ``work_dir``)."""
    from models.apis.loading import PROJECT_ROOT, actionclip_checkpoint_path
    from models.backbones.pretrained import ACTIONCLIP_CHECKPOINTS
    from models.checkpoints.recorded_config import recorded_config
    from models.checkpoints.safe_loading import load_checkpoint_file
    checkpoint = actionclip_checkpoint_path(model)
    if config is not None:
        return checkpoint, config
    if model in ACTIONCLIP_CHECKPOINTS:
        return checkpoint, osp.join(
            PROJECT_ROOT, ACTIONCLIP_CHECKPOINTS[model]['config'])
    recorded = recorded_config(
        load_checkpoint_file(checkpoint, map_location='cpu'), checkpoint)
    if recorded is None or 'test_dataloader' not in recorded:
        raise ValueError(f'{checkpoint} records no config with a test '
                         'pipeline: pass --config with the one it was '
                         'trained with')
    os.makedirs(work_dir, exist_ok=True)
    config = osp.join(work_dir, 'model_config.py')
    recorded.dump(config)
    return checkpoint, config


def evaluate_split(split: 'protocols.Split',
                   found: Sequence[Tuple[str, int]], files: Tuple[str, str],
                   folder: str, args: argparse.Namespace) -> dict:
    """Write a split's labels, test list and config into ``folder`` and
    test its ``found`` videos with ``files`` (:func:`model_files`) as ``mim
    test`` does; returns the split's row of the report."""
    from mmengine.config import Config
    checkpoint, model_config = files
    os.makedirs(folder, exist_ok=True)
    labels = osp.join(folder, 'labels.txt')
    ann = osp.join(folder, 'test_list.txt')
    protocols.write_lines(labels, protocols.class_texts(split, args.lists))
    protocols.write_annotations(ann, found)
    try:
        pipeline = (view_pipeline(model_config, *split.views)
                    if split.views else None)
    except ValueError as error:
        raise ValueError(f'{model_config}: {error}') from None
    config = osp.join(folder, 'config.py')
    Path(config).write_text(split_config_text(
        model_config, labels, ann, args.data_root, args.workers, pipeline),
        encoding='utf-8')
    cfg = Config.fromfile(config)
    # Its own folder: the runner writes a copy of the config named as ours.
    cfg.work_dir = osp.join(folder, 'run')
    cfg.load_from = checkpoint
    metrics = dict(protocols.build_runner(cfg).test())
    # TolerantAccMetric's count of unreadable videos left out.
    skipped = int(metrics.get('acc/skipped_videos', 0))
    info = protocols.describe(split, args.lists)
    return {
        'split': split.name,
        **{key: info[key] for key in ('views', 'classes', 'test_videos')},
        'videos_tested': len(found) - skipped,
        'config': config,
        'checkpoint': checkpoint,
        **{k: float(v) for k, v in metrics.items()
           if k in ('acc/top1', 'acc/top5')},
        'skipped_videos': skipped,
    }


def run(args: argparse.Namespace) -> int:
    """Test every split of ``tools/eval_protocol.py``'s checked arguments,
    after training its models with ``train_config``; write the report and
    print it; returns the exit status."""
    from .protocol_report import write_report
    work_dir = osp.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    extra = {}
    if getattr(args, 'train_config', None):
        from .protocol_train import train_runs
        files = train_runs(args, work_dir)
        models = [checkpoint for checkpoint, _ in files.values()]
        extra = dict(train_config=osp.abspath(args.train_config),
                     init=args.init)
    else:
        files = {run: model_files(model, args.config,
                                  osp.join(work_dir, run or ''))
                 for run, model in args.run_models.items()}
        models = args.model if len(args.model) > 1 else args.model[0]
    rows = [
        evaluate_split(split, found, files[split.training_run],
                       osp.join(work_dir, split.name), args)
        for split, found in args.plan
    ]
    report = dict(protocol=args.protocol, dataset=args.dataset,
                  model=models, data_root=args.data_root, **extra,
                  splits=rows)
    for path in write_report(osp.join(work_dir, 'report'), report):
        print(f'Wrote {path}', file=sys.stderr)
    print(Path(work_dir, 'report.md').read_text(encoding='utf-8'), end='')
    return 0

"""Train the models a protocol tests, one per base-to-novel seed or
few-shot shot count: a config of its own inherits the user's training
config and changes only the training list, class texts, work dir and
``load_from``; the run is what ``mim train mmaction <that config>`` does.
No validation: the only held-out videos are the test videos, so the
weights at the end of training are tested. Standard library at import.
"""
import argparse
import hashlib
import os
import os.path as osp
import sys
from pathlib import Path
from typing import Dict, Optional, Tuple

from . import protocols

#: A run's trained weights; a run holding them (same config) is not
#: trained again.
TRAINED = 'trained.pth'


def training_config_text(train_config: str, label_file: str, ann_file: str,
                         video_root: str, work_dir: str,
                         init: Optional[str] = None,
                         workers: Optional[int] = None) -> str:
    """The text of a training run's config: ``train_config`` with the
    class texts of ``label_file``, the list ``ann_file``, ``work_dir``, no
    validation, ``init`` as ``load_from`` and ``workers`` where given. It
    records the SHA-256 of ``train_config``, so that a change is seen."""
    digest = hashlib.sha256(Path(train_config).read_bytes()).hexdigest()
    loader = protocols.dataloader(ann_file, video_root, workers)
    return (
        '# One training run of an evaluation protocol, written by '
        'tools/eval_protocol.py;\n'
        '# mim train mmaction THIS_CONFIG runs it alone.\n'
        f'# {osp.basename(train_config)} sha256 {digest}\n'
        f'_base_ = [{osp.abspath(train_config)!r}]\n\n'
        f'model = dict(labels_or_label_file={osp.abspath(label_file)!r})\n'
        f'train_dataloader = {loader!r}\n'
        '# No validation: the only held-out videos are the test videos.\n'
        'val_dataloader = None\nval_cfg = None\nval_evaluator = None\n'
        'default_hooks = dict(checkpoint=dict(save_best=None))\n'
        f'work_dir = {osp.abspath(work_dir)!r}\n'
        + (f'load_from = {init!r}\n' if init else ''))


def train_run(run: str, split: 'protocols.Split', found, folder: str,
              init: Optional[str], args: argparse.Namespace
              ) -> Tuple[str, str]:
    """Train ``run`` (``'seed1'``, ``'K=2'`` ...) of ``split`` on its
    ``found`` videos in ``folder``, starting from ``init``, unless it holds
    :data:`TRAINED` from the same config.

    Returns:
        tuple[str, str]: ``(trained checkpoint, training config)``; a
        ValueError when ``folder`` holds weights of another config or
        ``args.train_config`` cannot train.
    """
    from mmengine.config import Config
    os.makedirs(folder, exist_ok=True)
    labels = osp.join(folder, 'train_labels.txt')
    ann = osp.join(folder, 'train_list.txt')
    config = osp.join(folder, 'train_config.py')
    trained = osp.join(folder, TRAINED)
    text = training_config_text(args.train_config, labels, ann,
                                args.data_root, osp.join(folder, 'train'),
                                init, args.workers)
    if osp.exists(trained):
        if not (osp.isfile(config)
                and Path(config).read_text(encoding='utf-8') == text):
            raise ValueError(
                f'{trained} was not trained with this run\'s config '
                f'({config} differs or is missing): pass another '
                f'--work-dir, or delete {folder} to train it again')
        print(f'{run}: {trained} exists, trained with this config: not '
              'trained again', file=sys.stderr)
        return trained, config
    protocols.write_lines(labels, protocols.class_texts(split, args.lists,
                                                        train=True))
    protocols.write_annotations(ann, found)
    Path(config).write_text(text, encoding='utf-8')
    cfg = Config.fromfile(config)
    dataset = cfg.train_dataloader.dataset
    lacking = [key for key, there in (
        ('train_dataloader', 'type' in dataset),
        ('train_cfg', cfg.get('train_cfg')),
        ('optim_wrapper', cfg.get('optim_wrapper'))) if not there]
    if lacking:
        raise ValueError(f'--train-config {args.train_config} has no '
                         f'{", ".join(lacking)}: pass a training config')
    if 'dataset' in dataset:  # RepeatDataset ...: the list is inside
        raise ValueError(
            f'--train-config {args.train_config}: its train_dataloader '
            f'dataset ({dataset.type}) wraps another, whose list the run '
            'cannot replace: pass a config training on a video dataset')
    print(f'{run}: training on {len(found)} videos in {folder}',
          file=sys.stderr)
    runner = protocols.build_runner(cfg)
    runner.train()
    # Weights only, renamed into place once whole: a killed run leaves no
    # TRAINED that the next one would take for finished.
    partial = f'{TRAINED}.part'
    runner.save_checkpoint(folder, partial, save_optimizer=False,
                           save_param_scheduler=False,
                           meta=dict(epoch=runner.epoch, iter=runner.iter))
    os.replace(osp.join(folder, partial), trained)
    return trained, config


def train_runs(args: argparse.Namespace,
               work_dir: str) -> Dict[str, Tuple[str, str]]:
    """Train every run of ``args.training`` in ``<work_dir>/<run>``;
    returns ``{run: (checkpoint, config)}``."""
    init = None
    if args.init is not None:
        from models.apis.loading import actionclip_checkpoint_path
        init = osp.abspath(actionclip_checkpoint_path(args.init))
    return {run: train_run(run, split, found, osp.join(work_dir, run),
                           init, args)
            for run, (split, found) in args.training.items()}

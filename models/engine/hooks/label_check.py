"""Annotations the model's label set cannot score, and a checkpoint's
labels in another order, are refused before a run starts
(:class:`LabelSetCheckHook`, :func:`check_label_order`): either would give
an accuracy that means nothing, with exit status 0.
"""
from typing import Iterable, List, Optional, Sequence

import numpy as np

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


class LabelSetError(ValueError):
    """Annotation labels outside the model's label set."""


def _base_datasets(dataset) -> Iterable:
    # ConcatDataset / RepeatDataset / ClassBalancedDataset wrap others.
    inner = getattr(dataset, 'datasets', None)
    if inner is not None:
        for one in inner:
            yield from _base_datasets(one)
        return
    wrapped = getattr(dataset, 'dataset', None)
    if wrapped is not None and not hasattr(dataset, 'data_list'):
        yield from _base_datasets(wrapped)
        return
    yield dataset


def _data_infos(dataset) -> Optional[Iterable[dict]]:
    # MMEngine serializes the annotations by default (serialize_data=True)
    # and empties data_list; get_data_info reads either form.
    get = getattr(dataset, 'get_data_info', None)
    if get is not None and hasattr(dataset, '__len__'):
        return (get(i) for i in range(len(dataset)))
    return getattr(dataset, 'data_list', None)


def _labels(info: dict) -> Sequence[int]:
    label = info.get('label', info.get('gt_label'))
    return () if label is None else [int(x) for x in np.atleast_1d(label)]


def check_annotation_labels(dataset, num_labels: int,
                            label_source: str) -> None:
    """Refuse (:class:`LabelSetError`) annotations of an MMEngine dataset
    (or wrapper) whose class is >= ``num_labels`` or negative (-1: a line
    without a class); ``label_source`` names the labels in the message."""
    for base in _base_datasets(dataset):
        infos = _data_infos(base)
        bad = [(index, info.get('filename', f'#{index}'), label)
               for index, info in enumerate(infos or ())
               for label in _labels(info) if not 0 <= label < num_labels]
        if not bad:
            continue
        ann_file = getattr(base, 'ann_file', '<annotations>')
        negative = [b for b in bad if b[2] < 0]
        index, filename, label = (negative or bad)[0]
        if negative:
            raise LabelSetError(
                f'{ann_file} gives class {label} (line {index + 1}, '
                f'{filename}; {len(negative)} annotation(s) in all): -1 is '
                'what MMAction2 reads for a line without a class, and no '
                'class index is negative. Give every line its class index '
                f'(0 to {num_labels - 1}, {label_source})')
        raise LabelSetError(
            f'{ann_file} uses class {label} (line {index + 1}, '
            f'{filename}; {len(bad)} annotation(s) in all, highest class '
            f'{max(b[2] for b in bad)}), but the model has {num_labels} '
            f'labels ({label_source}): those videos could never be '
            'predicted right. Use the label file that belongs to these '
            'annotations (model.labels_or_label_file) or fix the '
            'annotation file')


#: Where a checkpoint records the labels it was trained with.
LABELS_META_KEY = 'labels'


def recorded_labels(checkpoint: dict) -> Optional[List[str]]:
    """The labels a checkpoint records it was trained with, if any:
    ``meta['labels']``, else a label list (not a file's name) in the
    recorded config's ``model.labels_or_label_file``."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    if not isinstance(meta, dict):
        return None
    labels = meta.get(LABELS_META_KEY)
    if labels is None and isinstance(meta.get('cfg'), str):
        from models.checkpoints.recorded_config import (ConfigTextError,
                                                        parse_config_text)
        try:
            model = parse_config_text(meta['cfg']).get('model') or {}
        except ConfigTextError:
            return None  # refused where the config is used
        labels = model.get('labels_or_label_file')
    if isinstance(labels, (list, tuple)) and labels and all(
            isinstance(label, str) for label in labels):
        return [label.strip() for label in labels]
    return None


def check_label_order(trained: Optional[Sequence[str]],
                      labels: Sequence[str], checkpoint: str,
                      label_source: str) -> None:
    """Refuse (:class:`LabelSetError`) ``labels`` that are the ``trained``
    ones (:func:`recorded_labels`; None: nothing to compare) in another
    order; ``checkpoint`` and ``label_source`` name them in the message."""
    if trained is None:
        return
    trained, labels = list(trained), list(labels)
    if trained == labels or sorted(trained) != sorted(labels):
        return  # the training order, or another label set (zero-shot)
    index = next(i for i, (a, b) in enumerate(zip(trained, labels)) if a != b)
    raise LabelSetError(
        f'{label_source} holds the {len(labels)} labels {checkpoint} was '
        f'trained with, in another order: class {index} is '
        f'{labels[index]!r} there but {trained[index]!r} in training '
        '(as the checkpoint records them), so annotations numbered in the '
        'training order would be scored against the wrong texts. Use the '
        'label file in the training order')


def model_labels(model) -> Optional[tuple]:
    """``(number of labels, their source)`` of a (wrapped) ActionClip,
    else None."""
    if is_model_wrapper(model):
        model = model.module
    bank = getattr(model, 'prompt_bank', None)
    if bank is None:
        return None
    source = getattr(model, 'label_source', None) or 'the label list'
    return bank.num_labels, source


@HOOKS.register_module()
class LabelSetCheckHook(Hook):
    """Check each dataset of the run against the model's labels before the
    run starts using it (train, val, test)."""

    priority = 'VERY_HIGH'

    def _check(self, runner, loader_name: str) -> None:
        labels = model_labels(runner.model)
        loader = getattr(runner, loader_name, None)
        if labels is None or loader is None or not hasattr(
                loader, 'dataset'):
            return
        check_annotation_labels(loader.dataset, *labels)

    def before_train(self, runner) -> None:
        self._check(runner, 'train_dataloader')
        if getattr(runner, '_val_loop', None) is not None and not isinstance(
                runner._val_loop, dict):
            self._check(runner, 'val_dataloader')

    def before_val(self, runner) -> None:
        self._check(runner, 'val_dataloader')

    def before_test(self, runner) -> None:
        self._check(runner, 'test_dataloader')

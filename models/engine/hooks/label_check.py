"""Annotation labels that the model's label set cannot score are refused
before a run starts.

An annotation list whose class indices reach past the label file (a label
map of another dataset, one line short) gives an accuracy with exit status
0 that means nothing: the videos of the missing classes can never be
predicted right. ``LabelSetCheckHook`` compares every dataset a run uses
with the model's labels when the run starts; ``ActionClip`` also checks
each batch's labels, for configs without the hook.

So does a label file that holds the classes a checkpoint was trained with
in another order: class ``i`` of the annotations is then scored as another
class's text. Checkpoints saved by this project's runner record their
labels (``meta['labels']``), and a test whose labels are the same set in
another order is refused (:func:`check_label_order`); another label set
(zero-shot) is tested as it is.
"""
from typing import Iterable, List, Optional, Sequence

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
    if label is None:
        return ()
    if isinstance(label, int):
        return (label, )
    try:
        return [int(x) for x in label]
    except TypeError:
        return (int(label), )


def check_annotation_labels(dataset, num_labels: int,
                            label_source: str) -> None:
    """Refuse annotations whose class index the label set lacks.

    Args:
        dataset: An MMEngine dataset (or a wrapper of some).
        num_labels (int): Labels the model scores.
        label_source (str): Where those labels come from, for the message.

    Raises:
        LabelSetError: A label is >= ``num_labels``, or negative (-1 is
            what MMAction2 reads for a line without a class: no accuracy
            and no training can use it).
    """
    for base in _base_datasets(dataset):
        infos = _data_infos(base)
        if infos is None:
            continue
        bad = []
        for index, info in enumerate(infos):
            for label in _labels(info):
                if label >= num_labels or label < 0:
                    bad.append((index, info.get('filename', f'#{index}'),
                                label))
        ann_file = getattr(base, 'ann_file', '<annotations>')
        negative = [b for b in bad if b[2] < 0]
        if negative:
            index, filename, label = negative[0]
            raise LabelSetError(
                f'{ann_file} gives class {label} (line {index + 1}, '
                f'{filename}; {len(negative)} annotation(s) in all): -1 is '
                'what MMAction2 reads for a line without a class, and no '
                'class index is negative. Give every line its class index '
                f'(0 to {num_labels - 1}, {label_source})')
        if bad:
            index, filename, label = bad[0]
            highest = max(b[2] for b in bad)
            raise LabelSetError(
                f'{ann_file} uses class {label} (line {index + 1}, '
                f'{filename}; {len(bad)} annotation(s) in all, highest '
                f'class {highest}), but the model has {num_labels} labels '
                f'({label_source}): those videos could never be predicted '
                'right. Use the label file that belongs to these '
                'annotations (model.labels_or_label_file) or fix the '
                'annotation file')


#: Where a checkpoint records the labels it was trained with.
LABELS_META_KEY = 'labels'


def recorded_labels(checkpoint: dict) -> Optional[List[str]]:
    """The labels a checkpoint records it was trained with, if any.

    ``meta['labels']`` (written by this project's runner), else a label
    list in the recorded config (``model.labels_or_label_file``; a label
    file's name says nothing of what it held then), in class order.
    """
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
    """Refuse the labels a checkpoint was trained with in another order.

    Args:
        trained (list[str], optional): The checkpoint's labels
            (:func:`recorded_labels`); None: nothing to compare.
        labels (list[str]): The labels the model now scores.
        checkpoint (str): The checkpoint, for the message.
        label_source (str): Where ``labels`` come from, for the message.

    Raises:
        LabelSetError: The same labels, in another order.
    """
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
    """``(number of labels, a description of their source)`` of an
    ActionClip, possibly wrapped (DDP), else None."""
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
        """Check the training set (and the validation set, if any)."""
        self._check(runner, 'train_dataloader')
        if getattr(runner, '_val_loop', None) is not None and not isinstance(
                runner._val_loop, dict):
            self._check(runner, 'val_dataloader')

    def before_val(self, runner) -> None:
        """Check the validation set."""
        self._check(runner, 'val_dataloader')

    def before_test(self, runner) -> None:
        """Check the test set."""
        self._check(runner, 'test_dataloader')

"""Annotations the label set cannot score are refused before a run."""
import pytest
import torch
from mmaction.structures import ActionDataSample

from models.engine.hooks.label_check import (LabelSetCheckHook, LabelSetError,
                                             check_annotation_labels,
                                             check_label_order, model_labels,
                                             recorded_labels)
from models.recognizers.actionclip import ActionClip


class FakeDataset:

    def __init__(self, labels, ann_file='ann.txt'):
        self.ann_file = ann_file
        self.data_list = [
            dict(filename=f'v{i}.mp4', label=label)
            for i, label in enumerate(labels)
        ]

    def __len__(self):
        return len(self.data_list)


class Serialized(FakeDataset):
    """As MMEngine's BaseDataset after serialize_data: data_list empty."""

    def __init__(self, labels, ann_file='ann.txt'):
        super().__init__(labels, ann_file)
        self._infos, self.data_list = self.data_list, []

    def __len__(self):
        return len(self._infos)

    def get_data_info(self, index):
        return dict(self._infos[index])


class Wrapper:

    def __init__(self, *datasets):
        self.datasets = datasets


def test_labels_in_range_pass():
    check_annotation_labels(FakeDataset([0, 1, 2]), 3, 'labels.txt')
    check_annotation_labels(FakeDataset([[0, 2]]), 3, 'labels.txt')


@pytest.mark.parametrize('labels', [[0, -1, 2], [0, [1, -2]]])
def test_a_negative_class_is_refused(labels):
    # -1: MMAction2's reading of an annotation line without a class
    with pytest.raises(LabelSetError) as info:
        check_annotation_labels(FakeDataset(labels), 3, 'label file l.txt')
    text = str(info.value)
    for words in ('ann.txt gives class -', 'line 2', 'v1.mp4',
                  'without a class', '0 to 2, label file l.txt'):
        assert words in text, words


def test_first_offending_annotation_is_named():
    with pytest.raises(LabelSetError) as info:
        check_annotation_labels(
            Wrapper(FakeDataset([0]), Serialized([1, 3, 5], 'b.txt')), 3,
            'label file labels.txt')
    text = str(info.value)
    for words in ('b.txt uses class 3', 'line 2', 'v1.mp4',
                  '2 annotation(s)', 'highest class 5', '3 labels',
                  'label file labels.txt'):
        assert words in text, words


def test_hook_checks_the_loader_against_the_model(tiny_arch):
    model = ActionClip(tiny_arch, 4, labels_or_label_file=['a', 'b'])
    assert model_labels(model) == (2, 'a list of 2 labels')

    class Runner:
        pass

    runner = Runner()
    runner.model = model
    runner.test_dataloader = type('Loader', (), {})()
    runner.test_dataloader.dataset = FakeDataset([0, 1])
    LabelSetCheckHook().before_test(runner)
    runner.test_dataloader.dataset = FakeDataset([0, 2])
    with pytest.raises(LabelSetError, match='2 labels'):
        LabelSetCheckHook().before_test(runner)


def test_predict_refuses_a_label_outside_the_set(tiny_arch):
    model = ActionClip(tiny_arch, 4, labels_or_label_file=['a', 'b'])
    sample = ActionDataSample().set_gt_label(2)
    with pytest.raises(LabelSetError, match='class 2'):
        model.predict(torch.zeros(1, 4, 3, 32, 32), [sample])
    sample = ActionDataSample().set_gt_label(1)
    model.predict(torch.zeros(1, 4, 3, 32, 32), [sample])
    assert sample.pred_score.shape == (2, )


def test_predict_scores_an_unlabelled_video(tiny_arch):
    # -1: inference_recognizer's label of a video without one (the seed's
    # init_recognizer + inference_recognizer snippet goes through here)
    model = ActionClip(tiny_arch, 4, labels_or_label_file=['a', 'b'])
    sample = ActionDataSample().set_gt_label(-1)
    model.predict(torch.zeros(1, 4, 3, 32, 32), [sample])
    assert sample.pred_score.shape == (2, )


def test_the_metric_refuses_a_line_without_a_class():
    # configs without LabelSetCheckHook: -1 is a line without a class,
    # which would count as a wrong answer
    from models.evaluation.metrics import TolerantAccMetric
    metric = TolerantAccMetric()
    good = dict(gt_label=torch.tensor([1]), pred_score=torch.rand(2),
                filename='a.mp4')
    metric.process(None, [good])
    with pytest.raises(LabelSetError, match=r'class -1 \(b.mp4\).*without'):
        metric.process(None, [dict(good, gt_label=torch.tensor([-1]),
                                   filename='b.mp4')])


TRAINED = ['waving', 'jumping', 'reading', 'running']


@pytest.mark.parametrize('labels,refused', [
    (TRAINED, False),
    (['waving', 'reading', 'jumping', 'running'], True),
    (TRAINED[::-1], True),
    (['cooking', 'swimming'], False),  # another label set: zero-shot
    (TRAINED + ['cooking'], False),
    (TRAINED[:3], False),
])
def test_the_training_labels_in_another_order_are_refused(labels, refused):
    if not refused:
        check_label_order(TRAINED, labels, 'epoch_3.pth', 'label file l.txt')
        return
    with pytest.raises(LabelSetError) as info:
        check_label_order(TRAINED, labels, 'epoch_3.pth', 'label file l.txt')
    index = next(i for i, (a, b) in enumerate(zip(TRAINED, labels))
                 if a != b)
    text = str(info.value)
    for words in ('label file l.txt', 'epoch_3.pth', 'another order',
                  f'class {index} is {labels[index]!r} there but '
                  f'{TRAINED[index]!r} in training'):
        assert words in text, (words, text)
    assert '\n' not in text


def test_recorded_labels():
    assert recorded_labels({'meta': {'labels': TRAINED}}) == TRAINED
    # older checkpoints: a label list in the recorded config
    cfg = f"model = dict(type='ActionClip', labels_or_label_file={TRAINED!r})"
    assert recorded_labels({'meta': {'cfg': cfg}}) == TRAINED
    # a label file's name says nothing of what it held in training
    cfg = "model = dict(type='ActionClip', labels_or_label_file='l.txt')"
    for checkpoint in ({'meta': {'cfg': cfg}}, {'meta': {'epoch': 1}},
                       {'state_dict': {}}, {'meta': {'cfg': 'import os'}}):
        assert recorded_labels(checkpoint) is None
    check_label_order(None, TRAINED[::-1], 'old.pth', 'label file l.txt')


def test_a_real_serialized_dataset_is_checked(tmp_path):
    from mmaction.datasets import VideoDataset
    ann = tmp_path / 'ann.txt'
    ann.write_text('a.mp4 0\nb.mp4 17\n')
    dataset = VideoDataset(str(ann), pipeline=[], test_mode=True)
    assert dataset.data_list == [] or len(dataset.data_list) == 2
    with pytest.raises(LabelSetError, match=r'uses class 17 \(line 2, '):
        check_annotation_labels(dataset, 3, 'label file x.txt')

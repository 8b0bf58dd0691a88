"""MMAction2's own inference tools on an ActionClip model: the installed
mmaction2's ``MMAction2Inferencer`` (what ``demo/demo_inferencer.py`` runs)
and ``init_recognizer`` + ``inference_recognizer`` (what ``demo/demo.py``
runs) predict the labels and scores that ``mim test``'s script dumps for
the same videos, with labels typed in the config or read from a file."""
import json
import os.path as osp
import pickle
import types

import generate_videos as gen
import pytest
import torch
from conftest import ROOT, data_options, mim_test_in_process

CONFIG = 'configs/actionclip_tiny-scratch_1x1x4_synthetic-actions.py'


def _read_lines(path: str) -> list:
    with open(path, encoding='utf-8') as f:
        return [line.strip() for line in f if line.strip()]


def _widen_test_videos(folder: str) -> None:
    """Write the generated videos again, stretched to a width that is a
    multiple of 64. The Inferencer reads with MMAction2's own
    ``DecordInit``/``DecordDecode`` (no fallback), and which widths decord
    cannot copy depends on the CPU (docs/decoding.md): the generator's 96
    pixels fail on an AVX-512 Xeon."""
    import glob

    import cv2
    for path in sorted(glob.glob(osp.join(folder, '*.mp4'))):
        capture = cv2.VideoCapture(path)
        fps = capture.get(cv2.CAP_PROP_FPS)
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            height, width = frame.shape[:2]
            frames.append(cv2.resize(frame, (-(-width // 64) * 64, height)))
        capture.release()
        assert frames, path
        gen.write_video(path, frames, fps, 'mp4v')


@pytest.fixture(scope='module')
def run(tmp_path_factory) -> types.SimpleNamespace:
    """A random-weight checkpoint of the tiny config, the generated test
    videos, and ``mim test --dump``'s scores of them."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from models.recognizers.actionclip import ActionClip
    root = tmp_path_factory.mktemp('inferencer')
    data = str(root / 'data')
    gen.generate(
        data,
        seed=1,
        per_class=dict(train=0, val=0, test=1, zeroshot=0),
        workers=1,
        progress=False)
    _widen_test_videos(f'{data}/videos/test')
    label_file = f'{data}/label_map.txt'
    labels = _read_lines(label_file)
    cfg = Config.fromfile(osp.join(ROOT, CONFIG))
    model_cfg = dict(cfg.model)
    model_cfg.pop('type')
    model_cfg['labels_or_label_file'] = labels
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmaction'):
        model = ActionClip(**model_cfg)
    checkpoint = str(root / 'tiny.pth')
    torch.save({'state_dict': model.state_dict()}, checkpoint)

    dump = str(root / 'dump.pkl')
    # mim test's script (the command: test_train_synthetic.py)
    mim_test_in_process(CONFIG, checkpoint, str(root / 'work'),
                        *data_options(data), dump=dump)
    with open(dump, 'rb') as f:  # written by this test: trusted
        dumped = pickle.load(f)
    names = [
        line.split()[0]
        for line in _read_lines(f'{data}/test_list_videos.txt')
    ]
    assert len(dumped) == len(names) > 1
    return types.SimpleNamespace(
        data=data,
        root=root,
        labels=labels,
        label_file=label_file,
        checkpoint=checkpoint,
        videos=[f'{data}/videos/test/{name}' for name in names],
        scores=torch.stack([
            torch.as_tensor(sample['pred_score']).float()
            for sample in dumped
        ]))


def _check_predictions(predictions: list, run: types.SimpleNamespace
                       ) -> None:
    """The Inferencer's ``rec_labels`` / ``rec_scores`` against mim test's
    scores, video by video."""
    assert len(predictions) == len(run.videos)
    for prediction, expected in zip(predictions, run.scores):
        assert prediction['rec_labels'] == [[expected.argmax().item()]]
        torch.testing.assert_close(
            torch.tensor(prediction['rec_scores'][0]),
            expected,
            atol=1e-5,
            rtol=0)


def test_inferencer_with_typed_labels_matches_mim_test(run, tmp_path):
    """``MMAction2Inferencer(rec=config, rec_weights=checkpoint)``, the
    labels a Python list in the config, batched."""
    from mmaction.apis.inferencers import MMAction2Inferencer
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, CONFIG))
    cfg.model.labels_or_label_file = list(run.labels)
    inferencer = MMAction2Inferencer(
        rec=cfg, rec_weights=run.checkpoint, device='cpu')
    out = str(tmp_path / 'predictions.json')
    result = inferencer(run.videos, batch_size=4, pred_out_file=out)
    _check_predictions(result['predictions'], run)
    with open(out) as f:
        assert json.load(f)['predictions'] == result['predictions']


def test_demo_inferencer_route_config_file_with_typed_labels(run, tmp_path):
    """What ``demo/demo_inferencer.py VIDEO --rec CONFIG --rec-weights
    CKPT`` does: the config a file (here one that inherits a shipped
    config and types its labels), one video a call."""
    from mmaction.apis.inferencers import MMAction2Inferencer
    config = tmp_path / 'my_labels.py'
    config.write_text(f'_base_ = {osp.join(ROOT, CONFIG)!r}\n'
                      f'model = dict(labels_or_label_file={run.labels!r})\n')
    inferencer = MMAction2Inferencer(
        rec=str(config),
        rec_weights=run.checkpoint,
        device='cpu',
        label_file=run.label_file)
    predictions = [
        inferencer(video)['predictions'][0] for video in run.videos
    ]
    _check_predictions(predictions, run)


def test_demo_route_label_file_option_matches_mim_test(run):
    """What ``demo/demo.py CONFIG CKPT VIDEO LABELS --cfg-options
    model.labels_or_label_file=LABELS`` does: init_recognizer and
    inference_recognizer, which also set ``pred_label``."""
    from mmaction.apis import inference_recognizer, init_recognizer
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, CONFIG))
    cfg.merge_from_dict({'model.labels_or_label_file': run.label_file})
    recognizer = init_recognizer(cfg, run.checkpoint, device='cpu')
    for video, expected in zip(run.videos, run.scores):
        result = inference_recognizer(recognizer, video)
        assert result.pred_label.tolist() == [expected.argmax().item()]
        torch.testing.assert_close(
            result.pred_score.float(), expected, atol=1e-5, rtol=0)

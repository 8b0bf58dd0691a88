"""models/apis/preprocess.py: the config's test pipeline through Compose,
then the model's data preprocessor, give what the plain computation
(decode, subtract CLIP's mean, divide by its std) gives."""
import os

import pytest
import torch
from conftest import TINY_FRAMES, write_video
from mmaction.registry import TRANSFORMS
from mmengine.registry import DefaultScope

from models.apis.loading import init_actionclip
from models.apis.preprocess import (Preprocess, VideoPipeline, VideoPreprocess,
                                    released_test_pipeline)
from models.apis.video_scoring import (embed_videos, label_text_features,
                                       score_labels)
from models.datasets.transforms import VideoReadError
from models.recognizers.actionclip import CLIP_MEAN, CLIP_STD, ActionClip


def plain_frames(pipeline: list, video: str) -> torch.Tensor:
    """Decode with the pipeline's transforms up to FormatShape, then
    normalise by hand: ``(frames - mean) / std`` with CLIP's statistics."""
    with DefaultScope.overwrite_default_scope('mmaction'):
        steps = [
            TRANSFORMS.build(dict(t)) for t in pipeline
            if t['type'] != 'PackActionInputs'
        ]
    results = dict(filename=video, start_index=0, modality='RGB')
    for step in steps:
        results = step(results)
    frames = torch.from_numpy(results['imgs']).float()
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (frames - mean) / std


def test_config_pipeline_equals_the_plain_computation(tmp_path,
                                                      scorer):
    # The reference decodes with MMAction2's DecordDecode, which has no
    # fallback: widths decord copies on every CPU (docs/decoding.md).
    videos = [
        write_video(str(tmp_path / f'v{i}.mp4'), size=(64 * (i + 1), 48),
                    seed=i) for i in range(3)
    ]
    pipeline = scorer.config.test_pipeline
    plain = torch.stack([plain_frames(pipeline, v) for v in videos])
    assert plain.shape == (3, TINY_FRAMES, 3, 32, 32)
    for video, expected in zip(videos, plain):
        frames = scorer.preprocess(video)
        assert frames.dtype == torch.float32
        torch.testing.assert_close(frames, expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(
            scorer.preprocess(dict(filename=video)), expected,
            atol=1e-5, rtol=0)

    # Per-video probabilities as the hand-normalised frames give them.
    labels = ['waving', 'jumping', 'reading a book']
    features, failures = embed_videos(scorer, videos, batch_size=2,
                                      progress=False)
    assert not failures
    probs = score_labels(
        torch.stack(list(features.values())),
        label_text_features(scorer.model, labels))
    scorer.model.set_labels(labels)
    with torch.no_grad():
        expected = scorer.model.predict_scores(plain)
    torch.testing.assert_close(probs, expected, atol=1e-5, rtol=0)


def test_released_pipeline_equals_the_plain_computation(tmp_path, tiny_arch):
    path = tmp_path / 'model.pth'
    torch.save(ActionClip(tiny_arch, 8, num_adapter_layers=1).state_dict(),
               path)
    _, preprocess = init_actionclip(str(path))  # a bare state dict
    assert isinstance(preprocess, Preprocess) and preprocess.num_segs == 8
    assert preprocess.pipeline.steps == released_test_pipeline(8, 32)
    video = write_video(str(tmp_path / 'v.mp4'), size=(80, 48))
    expected = plain_frames(released_test_pipeline(8, 32), video)
    assert expected.shape == (8, 3, 32, 32)
    torch.testing.assert_close(preprocess(video), expected, atol=1e-5,
                               rtol=0)
    # Without a model: the same numbers.
    torch.testing.assert_close(
        VideoPreprocess(8, 32)(video), expected, atol=1e-5, rtol=0)


def test_pipeline_gives_packed_inputs_and_names_bad_files(tmp_path):
    pipeline = VideoPipeline(released_test_pipeline(4, 32)[:-1])
    assert pipeline.steps[-1] == dict(type='PackActionInputs')  # added
    video = write_video(str(tmp_path / 'v.mp4'))
    packed = pipeline(video)
    assert packed['inputs'].shape == (4, 3, 32, 32)
    assert packed['inputs'].dtype == torch.uint8
    with pytest.raises(FileNotFoundError, match='missing.mp4'):
        pipeline(str(tmp_path / 'missing.mp4'))
    (tmp_path / 'empty.mp4').write_bytes(b'')
    with pytest.raises(VideoReadError, match='empty.mp4.*is empty'):
        pipeline(str(tmp_path / 'empty.mp4'))
    (tmp_path / 'bad.mp4').write_bytes(b'\x00not a video' * 20)
    with pytest.raises(VideoReadError, match='bad.mp4'):
        pipeline(str(tmp_path / 'bad.mp4'))


def test_pipeline_must_give_nchw_frames():
    steps = released_test_pipeline(4, 32)
    steps[-2] = dict(type='FormatShape', input_format='NCTHW')
    with pytest.raises(ValueError, match="input_format='NCHW'"):
        VideoPipeline(steps)


def test_decord_readers_of_a_config_open_files_by_path(tmp_path):
    """DecordInit hands decord the bytes, whose in-memory reader can crash
    on a damaged file; scoring reads through VideoInit/VideoDecode."""
    from models.datasets.transforms import VideoDecode, VideoInit
    pipeline = VideoPipeline([
        dict(type='DecordInit'),
        dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=4,
             test_mode=True),
        dict(type='DecordDecode'),
        dict(type='Resize', scale=(32, 32), keep_ratio=False),
        dict(type='FormatShape', input_format='NCHW'),
    ])
    types = [type(t) for t in pipeline.compose.transforms]
    assert types[0] is VideoInit and types[2] is VideoDecode
    video = write_video(str(tmp_path / 'v.mp4'))
    assert pipeline(video)['inputs'].shape == (4, 3, 32, 32)


def test_frame_cache_readers_of_a_config_read_videos_as_they_are(
        tmp_path, user_cache_home):
    """A checkpoint trained through the frame cache scores new videos with
    the plain readers, to the same frames, and writes no cache."""
    from models.datasets.transforms import VideoDecode, VideoInit
    steps = [
        dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=4,
             test_mode=True),
        dict(type='Resize', scale=(32, 32), keep_ratio=False),
        dict(type='FormatShape', input_format='NCHW'),
    ]
    cached = VideoPipeline([
        dict(type='CachedVideoInit', cache_dir=str(tmp_path / 'frames')),
        steps[0], dict(type='CachedVideoDecode'), *steps[1:]
    ])
    plain = VideoPipeline(
        [dict(type='VideoInit'), steps[0], dict(type='VideoDecode'),
         *steps[1:]])
    types = [type(t) for t in cached.compose.transforms]
    assert types[0] is VideoInit and types[2] is VideoDecode
    video = write_video(str(tmp_path / 'v.mp4'))
    assert torch.equal(cached(video)['inputs'], plain(video)['inputs'])
    assert not (tmp_path / 'frames').exists()
    assert not os.listdir(user_cache_home)

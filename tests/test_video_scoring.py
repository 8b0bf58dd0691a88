"""Finding, embedding and scoring videos with tiny models on real mp4
files (the folder feature cache: tests/test_feature_cache.py). The helpers
at the top also serve tests/test_zero_shot.py and
tests/test_search_videos.py."""
import os
import os.path as osp

import pytest
import torch
from conftest import TINY_ARCH, write_video

from models.apis.loading import PipelinePreprocess, VideoReadError
from models.apis.video_scoring import (NoVideosError, embed_videos,
                                       find_videos, label_text_features,
                                       load_scoring_model, query_similarity,
                                       query_text_features, score_labels,
                                       top_k)
from models.backbones.clip_builder import build_clip
from models.recognizers.actionclip import ActionClip

TINY_FRAMES = 4

TINY_CONFIG = f'''
custom_imports = dict(imports='models')
model = dict(
    type='ActionClip',
    clip_arch={TINY_ARCH!r},
    num_adapter_segs={TINY_FRAMES},
    num_adapter_layers=1,
    to_float32=True,
    pretrained=True,  # would download: the tools must not build it so
    labels_or_label_file='data/not_here/label_map.txt',
    templates_or_template_file=['a video of {{}}', '{{}}'])
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=1, frame_interval=1,
         num_clips={TINY_FRAMES}, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
'''


def make_tiny_config(folder: str, seed: int = 0) -> tuple:
    """Write a tiny ActionClip config and a checkpoint trained "with" it.

    Returns:
        tuple: ``(config path, checkpoint path)``.
    """
    config = osp.join(folder, 'tiny_config.py')
    with open(config, 'w') as f:
        f.write(TINY_CONFIG)
    torch.manual_seed(seed)
    model = ActionClip(
        TINY_ARCH, TINY_FRAMES, num_adapter_layers=1, to_float32=True)
    checkpoint = osp.join(folder, 'tiny.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {'epoch': 1}},
               checkpoint)
    return config, checkpoint


def make_tiny_clip(path: str, seed: int = 0) -> str:
    """Save plain CLIP weights of a tiny architecture whose hyperparameters
    can be read back from the shapes (OpenAI's 64-wide heads)."""
    torch.manual_seed(seed)
    clip = build_clip(dict(TINY_ARCH, transformer_heads=1))
    torch.save(clip.state_dict(), path)
    return path


def make_videos(folder: str, count: int, num_frames: int = 12) -> list:
    """Write ``count`` small mp4 files; returns their paths, sorted."""
    os.makedirs(folder, exist_ok=True)
    return [
        write_video(
            osp.join(folder, f'video_{i}.mp4'),
            num_frames=num_frames,
            size=(64 + 16 * i, 48),
            seed=i) for i in range(count)
    ]


@pytest.fixture
def tiny_scorer(tmp_path):
    config, checkpoint = make_tiny_config(str(tmp_path))
    return load_scoring_model(config=config, checkpoint=checkpoint)


def test_find_videos_walks_folders_and_keeps_named_files(tmp_path):
    root = tmp_path / 'videos'
    (root / 'sub').mkdir(parents=True)
    (root / '.hidden').mkdir()
    for name in ('b.mp4', 'a.AVI', 'notes.txt', '.c.mp4', 'sub/d.webm',
                 '.hidden/e.mp4', 'sub/f.MOV'):
        (root / name).write_bytes(b'x')
    other = tmp_path / 'clip.weird'
    other.write_bytes(b'x')
    found = find_videos([str(root), str(other), str(root / 'b.mp4')])
    names = [osp.relpath(p, tmp_path) for p in found]
    assert names == [
        'videos/a.AVI', 'videos/b.mp4', 'videos/sub/d.webm',
        'videos/sub/f.MOV', 'clip.weird'
    ]


def test_find_videos_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.mp4'):
        find_videos([str(tmp_path / 'missing.mp4')])
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'readme.txt').write_text('no videos here')
    with pytest.raises(NoVideosError, match='empty.*holds no video files'):
        find_videos([str(tmp_path / 'empty')])


def test_find_videos_names_broken_links_and_loops(tmp_path):
    os.symlink('nothing.mp4', tmp_path / 'broken.mp4')
    os.symlink('loop', tmp_path / 'loop')
    with pytest.raises(FileNotFoundError,
                       match="broken.mp4' is a broken symbolic link"):
        find_videos([str(tmp_path / 'broken.mp4')])
    with pytest.raises(FileNotFoundError,
                       match="loop' is a symbolic link loop"):
        find_videos([str(tmp_path / 'loop')])

    # In a folder: returned, for the reader to report with the bad videos;
    # a link back to a parent folder is not followed.
    folder = tmp_path / 'clips'
    (folder / 'sub').mkdir(parents=True)
    (folder / 'a.mp4').write_bytes(b'x')
    os.symlink('..', folder / 'sub' / 'up')
    os.symlink('gone.mp4', folder / 'sub' / 'b.mp4')
    assert find_videos([str(folder)]) == [
        str(folder / 'a.mp4'), str(folder / 'sub' / 'b.mp4')]


def test_find_videos_reports_folders_it_cannot_list(tmp_path, monkeypatch):
    folder = tmp_path / 'clips'
    (folder / 'locked').mkdir(parents=True)
    (folder / 'a.mp4').write_bytes(b'x')
    locked = str(folder / 'locked')
    scandir = os.scandir

    def refusing_scandir(path='.'):  # root could list it: refuse as
        if os.fspath(path) == locked:  # a permission-denied folder does
            raise PermissionError(13, 'Permission denied', path)
        return scandir(path)

    monkeypatch.setattr(os, 'scandir', refusing_scandir)
    unreadable = {}
    assert find_videos([str(folder)], unreadable=unreadable) == [
        str(folder / 'a.mp4')]
    assert 'cannot be listed (Permission denied)' in unreadable[locked]
    with pytest.warns(UserWarning, match='locked.*cannot be listed'):
        find_videos([str(folder)])
    with pytest.raises(PermissionError, match='locked.*cannot be listed'):
        find_videos([locked])


def test_scores_equal_the_models_predict_scores(tmp_path, tiny_scorer):
    videos = make_videos(str(tmp_path / 'v'), 2)
    labels = ['waving', 'jumping', 'reading a book']
    features, failures = embed_videos(tiny_scorer, videos, progress=False)
    assert not failures and list(features) == videos
    assert features[videos[0]].shape == (1, TINY_ARCH['embed_dim'])
    text = label_text_features(tiny_scorer.model, labels)
    probs = score_labels(torch.stack(list(features.values())), text)

    model = tiny_scorer.model
    model.set_labels(labels)  # the config's own templates
    frames = torch.stack([tiny_scorer.preprocess(v) for v in videos])
    with torch.no_grad():
        expected = model.predict_scores(frames)
    torch.testing.assert_close(probs, expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(2))

    best = top_k(probs, labels, 5)
    assert [len(row) for row in best] == [3, 3]
    assert best[0][0] == (labels[int(probs[0].argmax())],
                          pytest.approx(float(probs[0].max())))


def test_config_pipeline_and_identity(tmp_path, tiny_scorer):
    assert isinstance(tiny_scorer.preprocess, PipelinePreprocess)
    assert tiny_scorer.templates == ['a video of {}', '{}']
    assert tiny_scorer.source.startswith('config ')
    frames = tiny_scorer.preprocess(make_videos(str(tmp_path / 'v'), 1)[0])
    assert frames.shape == (TINY_FRAMES, 3, 32, 32)


def test_batches_do_not_change_features_and_bad_files_are_skipped(
        tmp_path, tiny_scorer):
    videos = make_videos(str(tmp_path / 'v'), 3)
    corrupt = tmp_path / 'v' / 'corrupt.mp4'
    corrupt.write_bytes(b'\x00not a video' * 20)
    inputs = videos[:1] + [str(corrupt)] + videos[1:]
    reported = []
    one, failures = embed_videos(
        tiny_scorer, inputs, batch_size=1, progress=False,
        on_failure=lambda video, error: reported.append(video))
    three, _ = embed_videos(
        tiny_scorer, inputs, batch_size=3, progress=False)
    assert list(one) == list(three) == videos
    for video in videos:
        torch.testing.assert_close(one[video], three[video], atol=1e-5,
                                   rtol=1e-4)
    assert reported == [str(corrupt)] == list(failures)
    assert 'corrupt.mp4' in failures[str(corrupt)]


def test_clip_weights_file_with_mean_pooling(tmp_path):
    path = make_tiny_clip(str(tmp_path / 'tiny_clip.pt'))
    scorer = load_scoring_model(clip=path, num_frames=3)
    assert scorer.model.adapter.__class__.__name__ == 'MeanPoolAdapter'
    reference = build_clip(dict(TINY_ARCH, transformer_heads=1))
    reference.load_state_dict(torch.load(path, weights_only=True))
    for key, value in reference.state_dict().items():
        assert torch.equal(scorer.model.clip.state_dict()[key], value), key
    video = make_videos(str(tmp_path / 'v'), 1)[0]
    assert scorer.preprocess(video).shape == (3, 3, 32, 32)
    query = query_text_features(scorer.model, 'a square moving right')
    features, _ = embed_videos(scorer, [video], progress=False)
    similarity = query_similarity(torch.stack(list(features.values())),
                                  query)
    assert similarity.shape == (1, ) and -1 <= float(similarity) <= 1
    os.utime(path, ns=(1, 1))
    assert load_scoring_model(clip=path, num_frames=3).identity != \
        scorer.identity


def test_load_scoring_model_refuses_wrong_sources(tmp_path):
    config, checkpoint = make_tiny_config(str(tmp_path))
    with pytest.raises(ValueError, match='exactly one'):
        load_scoring_model(name='ViT-B/32-8', clip='ViT-B/32')
    with pytest.raises(ValueError, match='go together'):
        load_scoring_model(config=config)
    with pytest.raises(FileNotFoundError, match='nothing.pth'):
        load_scoring_model(config=config, checkpoint='nothing.pth')
    with pytest.raises(FileNotFoundError, match='not-a-clip'):
        load_scoring_model(clip='not-a-clip')
    other = ActionClip(dict(TINY_ARCH, embed_dim=32), TINY_FRAMES,
                       num_adapter_layers=1)
    torch.save({'state_dict': other.state_dict()}, tmp_path / 'other.pth')
    with pytest.raises(ValueError, match='does not fit'):
        load_scoring_model(config=config,
                           checkpoint=str(tmp_path / 'other.pth'))


def test_unreadable_video_raises_video_read_error(tmp_path, tiny_scorer):
    empty = tmp_path / 'empty.mp4'
    empty.write_bytes(b'')
    with pytest.raises(VideoReadError, match='empty.mp4'):
        tiny_scorer.preprocess(str(empty))

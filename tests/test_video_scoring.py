"""Finding, embedding and scoring videos with tiny models on real mp4
files (the folder feature cache: tests/test_feature_cache.py; the
preprocessing itself: tests/test_preprocess.py)."""
import os
import os.path as osp

import pytest
import torch
from conftest import (TINY_ARCH, TINY_FRAMES, make_tiny_clip, make_tiny_config,
                      make_videos)

from models.apis.preprocess import Preprocess
from models.apis.video_scoring import (NoVideosError, embed_videos,
                                       find_videos, label_text_features,
                                       load_scoring_model, query_similarity,
                                       query_text_features, score_labels,
                                       top_k)
from models.backbones.clip_builder import build_clip
from models.datasets.transforms import VideoReadError
from models.recognizers.actionclip import ActionClip


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


def test_scores_equal_the_models_predict_scores(tmp_path, scorer):
    videos = make_videos(str(tmp_path / 'v'), 2)
    labels = ['waving', 'jumping', 'reading a book']
    features, failures = embed_videos(scorer, videos, progress=False)
    assert not failures and list(features) == videos
    assert features[videos[0]].shape == (1, TINY_ARCH['embed_dim'])
    text = label_text_features(scorer.model, labels)
    probs = score_labels(torch.stack(list(features.values())), text)

    model = scorer.model
    model.set_labels(labels)  # the config's own templates
    frames = torch.stack([scorer.preprocess(v) for v in videos])
    with torch.no_grad():
        expected = model.predict_scores(frames)
    torch.testing.assert_close(probs, expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(2))

    best = top_k(probs, labels, 5)
    assert [len(row) for row in best] == [3, 3]
    assert best[0][0] == (labels[int(probs[0].argmax())],
                          pytest.approx(float(probs[0].max())))


def test_config_pipeline_and_identity(tmp_path, scorer):
    assert isinstance(scorer.preprocess, Preprocess)
    assert scorer.templates == ['a video of {}', '{}']
    assert scorer.source.startswith('config ')
    frames = scorer.preprocess(make_videos(str(tmp_path / 'v'), 1)[0])
    assert frames.shape == (TINY_FRAMES, 3, 32, 32)


def test_batches_do_not_change_features_and_bad_files_are_skipped(
        tmp_path, scorer):
    videos = make_videos(str(tmp_path / 'v'), 3)
    corrupt = tmp_path / 'v' / 'corrupt.mp4'
    corrupt.write_bytes(b'\x00not a video' * 20)
    inputs = videos[:1] + [str(corrupt)] + videos[1:]
    reported = []
    one, failures = embed_videos(
        scorer, inputs, batch_size=1, progress=False,
        on_failure=lambda video, error: reported.append(video))
    three, _ = embed_videos(
        scorer, inputs, batch_size=3, progress=False)
    assert list(one) == list(three) == videos
    for video in videos:
        torch.testing.assert_close(one[video], three[video], atol=1e-5,
                                   rtol=1e-4)
    assert reported == [str(corrupt)] == list(failures)
    assert 'corrupt.mp4' in failures[str(corrupt)]


def test_decoding_workers_give_the_same_features_and_failures(
        tmp_path, scorer):
    videos = make_videos(str(tmp_path / 'v'), 4)
    corrupt = tmp_path / 'v' / 'corrupt.mp4'
    corrupt.write_bytes(b'\x00not a video' * 20)
    missing = str(tmp_path / 'v' / 'missing.mp4')
    inputs = [videos[0], str(corrupt), *videos[1:3], missing, videos[3]]
    runs = {}
    for workers in (0, 2):
        reported = []
        features, failures = embed_videos(
            scorer, inputs, batch_size=2, progress=False,
            on_failure=lambda video, error: reported.append(
                (video, type(error), str(error))),
            num_workers=workers)
        assert list(features) == videos
        # Reported with their messages, in input order.
        assert [v for v, _, _ in reported] == [str(corrupt), missing]
        assert list(failures) == [str(corrupt), missing]
        assert 'corrupt.mp4' in failures[str(corrupt)]
        assert 'missing.mp4' in failures[missing]
        assert [t for _, t, _ in reported] == [VideoReadError,
                                               FileNotFoundError]
        runs[workers] = features, failures, reported
    (one, failed, told), (two, failed_too, told_too) = runs.values()
    assert failed == failed_too and told == told_too
    for video in videos:
        assert torch.equal(one[video], two[video]), video
    with pytest.raises(ValueError, match='num_workers must be >= 0'):
        embed_videos(scorer, videos, num_workers=-1)


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


def test_unreadable_video_raises_video_read_error(tmp_path, scorer):
    empty = tmp_path / 'empty.mp4'
    empty.write_bytes(b'')
    with pytest.raises(VideoReadError, match='empty.mp4'):
        scorer.preprocess(str(empty))

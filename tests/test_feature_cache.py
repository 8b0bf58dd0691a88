"""The folder feature cache (models/apis/feature_cache.py): reuse of unchanged
videos, refusal of files that are not ours, rebuilding of damaged ones,
concurrent searches, unreadable folder entries. A fake scorer (features
from a file's bytes, conftest.fake_scorer) keeps these tests independent of
model loading."""
import multiprocessing
import os
import os.path as osp

import pytest
import torch
from conftest import fake_scorer, make_files, write_video

from models.apis import feature_cache as feature_cache
from models.apis.feature_cache import (CACHE_KIND, CACHE_MAGIC,
                                       EMBEDDING_VERSION, NotACacheError,
                                       check_cache_path, default_cache_path,
                                       embed_folder_cached, model_key,
                                       read_cache)


def read_bytes(path: str) -> bytes:
    with open(path, 'rb') as f:
        return f.read()


def test_recomputes_only_changed_files(tmp_path):
    folder = str(tmp_path / 'clips')
    videos = make_files(folder, 3)
    cache_path = default_cache_path(folder + os.sep)
    assert cache_path == default_cache_path(folder)
    scorer = fake_scorer()

    first, stats = embed_folder_cached(scorer, folder, progress=False)
    assert stats.computed == videos and not stats.reused and stats.saved
    assert not stats.failed and list(first) == videos
    assert read_bytes(cache_path).startswith(CACHE_MAGIC)
    cache, problem = read_cache(cache_path)
    assert problem is None
    assert cache['kind'] == CACHE_KIND and list(cache['models']) == [
        f'{EMBEDDING_VERSION}|fake-a'
    ] == [model_key('fake-a')]
    assert set(cache['models'][model_key('fake-a')]) == {
        'video_0.mp4', 'video_1.mp4', 'video_2.mp4'
    }
    stamp = os.stat(cache_path).st_mtime_ns

    second, stats = embed_folder_cached(scorer, folder, progress=False)
    assert not stats.computed and stats.reused == videos
    assert not stats.saved and os.stat(cache_path).st_mtime_ns == stamp
    assert len(scorer.reads) == 3
    for video in videos:
        assert torch.equal(first[video], second[video])

    os.utime(videos[1], ns=(10**18, 10**18))
    os.remove(videos[2])
    third, stats = embed_folder_cached(scorer, folder, progress=False)
    assert stats.computed == [videos[1]] and stats.reused == videos[:1]
    assert list(third) == videos[:2]
    entries = read_cache(cache_path)[0]['models'][model_key('fake-a')]
    assert set(entries) == {'video_0.mp4', 'video_1.mp4'}
    assert entries['video_1.mp4']['mtime_ns'] == 10**18


def test_models_and_embedding_versions_are_kept_apart(tmp_path,
                                                      monkeypatch):
    folder = str(tmp_path / 'clips')
    videos = make_files(folder, 2)
    embed_folder_cached(fake_scorer('fake-a'), folder, progress=False)
    _, stats = embed_folder_cached(fake_scorer('fake-b'), folder,
                                   progress=False)
    assert stats.computed == videos  # another model: its own features
    # New embedding code: the old entries are not reused.
    monkeypatch.setattr(feature_cache, 'EMBEDDING_VERSION',
                        EMBEDDING_VERSION + 1)
    _, stats = embed_folder_cached(fake_scorer('fake-a'), folder,
                                   progress=False)
    assert stats.computed == videos and not stats.reused
    models = read_cache(default_cache_path(folder))[0]['models']
    assert set(models) == {
        f'{EMBEDDING_VERSION}|fake-a', f'{EMBEDDING_VERSION}|fake-b',
        f'{EMBEDDING_VERSION + 1}|fake-a'
    }


def _not_ours(tmp_path, kind: str) -> str:
    path = str(tmp_path / f'not_ours_{kind}')
    if kind == 'video':
        write_video(path + '.mp4')
        return path + '.mp4'
    if kind == 'folder':
        os.mkdir(path)
        return path
    if kind == 'broken link':
        os.symlink('nothing_there', path)
        return path
    contents = dict(
        text=lambda f: f.write(b'my notes\n'),
        empty=lambda f: None,
        checkpoint=lambda f: torch.save(
            {'state_dict': {'w': torch.ones(2)}, 'meta': {}}, f),
        format_1_without_models=lambda f: torch.save({'format': 1}, f),
        magic_in_the_middle=lambda f: f.write(b'x' + CACHE_MAGIC))
    with open(path, 'wb') as f:
        contents[kind](f)
    return path


@pytest.mark.parametrize('kind', [
    'text', 'empty', 'video', 'checkpoint', 'format_1_without_models',
    'magic_in_the_middle', 'folder', 'broken link'
])
def test_a_file_that_is_not_ours_is_refused_and_left_alone(tmp_path, kind):
    folder = str(tmp_path / 'clips')
    make_files(folder, 2)
    path = _not_ours(tmp_path, kind)
    before = read_bytes(path) if osp.isfile(path) else None
    scorer = fake_scorer()
    with pytest.raises(NotACacheError) as error:
        embed_folder_cached(scorer, folder, path, progress=False)
    message = str(error.value)
    assert repr(osp.abspath(path)) in message and '--cache' in message
    assert isinstance(error.value, ValueError)
    assert not scorer.reads  # refused before any embedding
    if before is not None:
        assert read_bytes(path) == before
    assert sorted(os.listdir(tmp_path)) == sorted(
        ['clips', osp.basename(path)])  # no temporary or lock file


def _damaged(path: str, how: str) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    if how == 'truncated':
        data = read_bytes(path)
        with open(path, 'wb') as f:
            f.write(data[:len(data) // 2])
    elif how == 'magic only':
        with open(path, 'wb') as f:
            f.write(CACHE_MAGIC)
    elif how == 'not a dict':
        with open(path, 'wb') as f:
            f.write(CACHE_MAGIC)
            torch.save([1, 2], f)
    elif how == 'other format':
        with open(path, 'wb') as f:
            f.write(CACHE_MAGIC)
            torch.save(dict(kind=CACHE_KIND, format=99, models={}), f)
    elif how == 'format 1':
        torch.save({'format': 1, 'models': {'old': {}}}, path)


@pytest.mark.parametrize('how, problem', [
    ('truncated', 'unreadable'),
    ('magic only', 'unreadable'),
    ('not a dict', 'malformed'),
    ('other format', 'format 99'),
    ('format 1', 'format 1'),
])
def test_a_damaged_or_old_cache_of_ours_is_rebuilt(tmp_path, how, problem):
    folder = str(tmp_path / 'clips')
    videos = make_files(folder, 2)
    embed_folder_cached(fake_scorer('other'), folder, progress=False)
    cache_path = default_cache_path(folder)
    _damaged(cache_path, how)
    with pytest.warns(UserWarning, match=f'Rebuilding the feature cache '
                      f'.*clips-[0-9a-f]{{16}}\\.pt \\({problem}'):
        features, stats = embed_folder_cached(fake_scorer(), folder,
                                              progress=False)
    assert stats.computed == videos and stats.saved
    assert list(features) == videos
    cache, found = read_cache(cache_path)
    assert found is None and list(cache['models']) == [model_key('fake-a')]


def test_a_damaged_cache_is_rewritten_even_with_nothing_to_embed(tmp_path):
    folder = str(tmp_path / 'clips')
    (bad, ) = make_files(folder, 1)
    with open(bad, 'wb') as f:
        f.write(b'bad video')
    cache_path = default_cache_path(folder)
    _damaged(cache_path, 'magic only')
    with pytest.warns(UserWarning, match='Rebuilding'):
        features, stats = embed_folder_cached(fake_scorer(), folder,
                                              progress=False)
    assert not features and list(stats.failed) == [bad] and stats.saved
    assert read_cache(cache_path)[1] is None


def _search(folder: str, identity: str, barrier) -> None:
    # Both searches have read the cache before either embeds, and so
    # before either saves: without the merge under the lock, the second
    # save would drop the first one's model.
    scorer = fake_scorer(identity, on_read=lambda path: barrier.wait(60))
    embed_folder_cached(scorer, folder, progress=False)


def test_concurrent_searches_keep_every_models_entries(tmp_path):
    folder = str(tmp_path / 'clips')
    make_files(folder, 1)
    embed_folder_cached(fake_scorer('earlier'), folder, progress=False)
    context = multiprocessing.get_context('fork')
    barrier = context.Barrier(2)
    searches = [
        context.Process(target=_search, args=(folder, name, barrier))
        for name in ('fake-a', 'fake-b')
    ]
    for search in searches:
        search.start()
    for search in searches:
        search.join(120)
    assert [search.exitcode for search in searches] == [0, 0]
    cache, problem = read_cache(default_cache_path(folder))
    assert problem is None
    assert set(cache['models']) == {
        model_key('earlier'), model_key('fake-a'), model_key('fake-b')
    }
    assert not [name for name in os.listdir(tmp_path) if '.tmp' in name]


def test_the_save_lock_is_exclusive_and_leaves_no_file(tmp_path):
    import fcntl
    path = str(tmp_path / 'c.pt')
    with feature_cache._locked(path):
        fd = os.open(str(tmp_path), os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    fd = os.open(str(tmp_path), os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released
    os.close(fd)
    assert os.listdir(tmp_path) == []


def test_the_default_cache_is_in_the_user_cache_folder(
        tmp_path, monkeypatch, user_cache_home):
    folder = str(tmp_path / 'clips')
    make_files(folder, 2)
    other = str(tmp_path / 'elsewhere' / 'clips')  # the same name
    path = default_cache_path(folder)
    assert osp.dirname(path) == osp.join(user_cache_home, 'actionclip',
                                         'features')
    assert osp.basename(path).startswith('clips-')
    assert path != default_cache_path(other)
    # a link to the folder shares its cache
    os.symlink(folder, str(tmp_path / 'link'))
    assert default_cache_path(str(tmp_path / 'link')) == path
    _, stats = embed_folder_cached(fake_scorer(), folder, progress=False)
    assert stats.saved and stats.cache_path == path and osp.isfile(path)
    assert sorted(os.listdir(tmp_path)) == ['clips', 'link']
    assert sorted(os.listdir(folder)) == ['video_0.mp4', 'video_1.mp4']
    assert os.listdir(osp.dirname(path)) == [osp.basename(path)]
    # without XDG_CACHE_HOME (or with a relative one): ~/.cache
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    for value in (None, 'relative/cache'):
        if value is None:
            monkeypatch.delenv('XDG_CACHE_HOME')
        else:
            monkeypatch.setenv('XDG_CACHE_HOME', value)
        assert default_cache_path(folder).startswith(
            str(tmp_path / 'home' / '.cache' / 'actionclip' / 'features'))


def test_a_missing_cache_folder_is_created_before_any_work(tmp_path):
    folder = str(tmp_path / 'clips')
    videos = make_files(folder, 1)
    cache_path = str(tmp_path / 'new' / 'deeper' / 'c.pt')
    _, stats = embed_folder_cached(fake_scorer(), folder, cache_path,
                                   progress=False)
    assert stats.saved and stats.computed == videos
    assert read_cache(cache_path)[0]['models']

    (tmp_path / 'a_file').write_text('x')
    scorer = fake_scorer()
    with pytest.raises(OSError, match='Cannot create the folder .*a_file'):
        embed_folder_cached(scorer, folder, str(tmp_path / 'a_file' / 'c.pt'),
                            progress=False)
    assert not scorer.reads
    assert check_cache_path(str(tmp_path / 'x' / 'c.pt')) == str(
        tmp_path / 'x' / 'c.pt') and (tmp_path / 'x').is_dir()


def test_a_failed_write_warns_and_keeps_the_previous_cache(
        tmp_path, monkeypatch):
    folder = str(tmp_path / 'clips')
    videos = make_files(folder, 2)
    embed_folder_cached(fake_scorer(), folder, progress=False)
    cache_path = default_cache_path(folder)
    before = read_bytes(cache_path)

    def disk_full(obj, f):
        f.write(b'partial')
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(torch, 'save', disk_full)
    with pytest.warns(UserWarning, match='Could not write the feature cache '
                      '.*No space left'):
        features, stats = embed_folder_cached(fake_scorer('fake-b'), folder,
                                              progress=False)
    assert not stats.saved and list(features) == videos
    assert read_bytes(cache_path) == before
    assert not [name for name in os.listdir(tmp_path) if '.tmp' in name]


def test_a_cache_behind_a_symbolic_link_is_written_through_it(tmp_path):
    folder = str(tmp_path / 'clips')
    make_files(folder, 1)
    target = str(tmp_path / 'real.pt')
    embed_folder_cached(fake_scorer(), folder, target, progress=False)
    link = str(tmp_path / 'link.pt')
    os.symlink(target, link)
    embed_folder_cached(fake_scorer('fake-b'), folder, link, progress=False)
    assert osp.islink(link)
    assert set(read_cache(target)[0]['models']) == {
        model_key('fake-a'), model_key('fake-b')
    }


def test_unreadable_entries_are_skipped_and_reported(tmp_path, monkeypatch):
    folder = tmp_path / 'clips'
    videos = make_files(str(folder), 2)
    (folder / 'sub').mkdir()
    os.symlink('missing.mp4', folder / 'dangling.mp4')
    os.symlink('loop.mp4', folder / 'loop.mp4')
    os.symlink('..', folder / 'sub' / 'up')  # a folder loop: not followed
    (folder / 'locked').mkdir()
    locked = str(folder / 'locked')
    # As root, permissions do not stop listing: fail it the way a
    # permission-denied folder does.
    scandir = os.scandir

    def refusing_scandir(path='.'):
        if os.fspath(path) == locked:
            raise PermissionError(13, 'Permission denied', path)
        return scandir(path)

    monkeypatch.setattr(os, 'scandir', refusing_scandir)
    reported = []
    for run in range(2):
        features, stats = embed_folder_cached(
            fake_scorer(), str(folder), progress=False,
            on_failure=lambda entry, error: reported.append(entry))
        assert list(features) == videos
        assert sorted(stats.failed) == sorted(
            [str(folder / 'dangling.mp4'), str(folder / 'loop.mp4'), locked])
        assert 'is a broken symbolic link' in stats.failed[str(
            folder / 'dangling.mp4')]
        assert 'is a symbolic link loop' in stats.failed[str(
            folder / 'loop.mp4')]
        assert 'cannot be listed (Permission denied)' in stats.failed[locked]
        assert sorted(reported) == sorted(stats.failed)
        reported.clear()
    assert stats.reused == videos  # the failures did not stop the caching


def test_files_swapped_by_name_are_embedded_again(tmp_path):
    # same size, same modification time: only the inode (and the change
    # time a rename sets) tells them apart
    folder = tmp_path / 'clips'
    folder.mkdir()
    a, b = str(folder / 'a.mp4'), str(folder / 'b.mp4')
    for path, text in ((a, b'video A'), (b, b'video B')):
        with open(path, 'wb') as f:
            f.write(text)
        os.utime(path, ns=(10**18, 10**18))
    scorer = fake_scorer()
    first, _ = embed_folder_cached(scorer, str(folder), progress=False)
    os.rename(a, str(folder / 'tmp'))
    os.rename(b, a)
    os.rename(str(folder / 'tmp'), b)
    assert os.stat(a).st_mtime_ns == os.stat(b).st_mtime_ns == 10**18
    second, stats = embed_folder_cached(scorer, str(folder), progress=False)
    assert sorted(stats.computed) == [a, b] and not stats.reused
    assert torch.equal(second[a], first[b])
    assert torch.equal(second[b], first[a])
    assert not torch.equal(second[a], second[b])

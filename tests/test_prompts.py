import clip
import pytest
import torch

from models.text.prompts import (DEFAULT_TEMPLATES, build_prompts, load_labels,
                                 load_templates, prompt_tokens, tokenize)


def test_label_file_one_per_line(tmp_path):
    path = tmp_path / 'labels.txt'
    path.write_text('riding a bike\n  café dancing \n\n', encoding='utf-8')
    assert load_labels(str(path)) == ['riding a bike', 'café dancing']


def test_k400_label_map_is_alphabetical_and_complete():
    labels = load_labels('configs/label_map_k400.txt')
    assert len(labels) == 400 and labels == sorted(labels)
    assert labels[0] == 'abseiling' and labels[-1] == 'zumba'


@pytest.mark.parametrize('content, message', [
    ('a\n\nb\n', 'blank line at line 2'),
    ('', 'holds no labels'),
])
def test_bad_label_files_are_explained(tmp_path, content, message):
    path = tmp_path / 'labels.txt'
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_labels(str(path))


def test_missing_label_file_is_named():
    with pytest.raises(FileNotFoundError, match='nope.txt'):
        load_labels('nope.txt')


def test_empty_and_duplicate_labels():
    with pytest.raises(ValueError, match='no labels'):
        load_labels([])
    with pytest.warns(UserWarning, match='repeats labels'):
        assert load_labels(['run', 'jump', 'run']) == ['run', 'jump', 'run']


def test_labels_that_are_the_same_text_to_clip_are_warned_of():
    labels = ['Jumping jacks', 'jumping  jacks', 'run', 'RUN']
    with pytest.warns(UserWarning, match="differ only in case") as warned:
        assert load_labels(labels) == labels
    assert "'Jumping jacks' / 'jumping  jacks'; 'run' / 'RUN'" in str(
        warned[0].message)
    # the model does read them as one text
    tokens = clip.tokenize(labels)
    assert torch.equal(tokens[0], tokens[1]) and torch.equal(
        tokens[2], tokens[3])
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        load_labels(['run', 'jump', 'running'])


def test_templates():
    assert load_templates() == list(DEFAULT_TEMPLATES)
    assert len(DEFAULT_TEMPLATES) == 16
    assert load_templates(template='The woman is {}') == ['The woman is {}']
    assert load_templates(['a {}', '{} b']) == ['a {}', '{} b']
    assert load_templates(('a {}', )) == ['a {}']
    with pytest.raises(ValueError, match="no '{}'"):
        load_templates(template='a video')
    with pytest.raises(ValueError, match='cannot be filled'):
        load_templates(['{} and {}'])
    with pytest.raises(ValueError, match='template list is empty'):
        load_templates([])
    with pytest.raises(TypeError, match='a list of strings'):
        load_templates(3)
    with pytest.raises(TypeError, match='is not a string'):
        load_templates(['a {}', 3])


def test_template_file(tmp_path, monkeypatch):
    """One argument takes a string, a list or a file: a string without
    ``{}`` that names a file (or looks like a path) is read as one."""
    path = tmp_path / 'templates.txt'
    path.write_text('a video of {}\n{}, an action\n')
    expected = ['a video of {}', '{}, an action']
    assert load_templates(str(path)) == expected
    assert load_templates(template=str(path)) == expected
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'prompts').write_text('a clip of {}\n')
    assert load_templates('prompts') == ['a clip of {}']
    with pytest.raises(FileNotFoundError, match='missing.txt'):
        load_templates('missing.txt')
    with pytest.raises(FileNotFoundError, match='no/such'):
        load_templates('no/such')
    bad = tmp_path / 'bad.txt'
    bad.write_text('a video of {}\nno slot\n')
    with pytest.raises(ValueError, match="'no slot' has no '{}'"):
        load_templates(str(bad))


def test_tokens_match_clip_tokenize():
    texts = ['a video of riding a bike', 'zumba', 'über ñandú 跳舞']
    assert torch.equal(tokenize(texts), clip.tokenize(texts))


def test_too_long_prompt_is_cut_with_a_warning():
    long_text = 'very ' * 100 + 'long'
    with pytest.warns(UserWarning, match='were cut'):
        tokens = tokenize([long_text, 'short'])
    assert torch.equal(tokens, clip.tokenize([long_text, 'short'],
                                             truncate=True))


def test_prompt_tokens_are_template_major():
    labels, templates = ['run', 'jump'], ['a {}', 'the {}']
    assert build_prompts(labels, templates) == [
        'a run', 'a jump', 'the run', 'the jump'
    ]
    tokens = prompt_tokens(labels, templates)
    assert tokens.shape == (2, 2, 77)
    assert torch.equal(tokens[1, 0], clip.tokenize('the run')[0])


def test_label_file_problems_are_named(tmp_path):
    bom = tmp_path / 'bom.txt'
    bom.write_bytes('\ufeffjumping\nrunning\n'.encode('utf-8'))
    assert load_labels(str(bom)) == ['jumping', 'running']
    latin = tmp_path / 'latin.txt'
    latin.write_bytes(b'running\ncaf\xe9\n')
    with pytest.raises(ValueError, match=r'latin.txt.*not UTF-8.*line 2'):
        load_labels(str(latin))
    with pytest.raises(IsADirectoryError, match='is a folder'):
        load_labels(str(tmp_path))
    loop = tmp_path / 'loop.txt'
    loop.symlink_to(tmp_path / 'loop2.txt')
    (tmp_path / 'loop2.txt').symlink_to(loop)
    with pytest.raises(FileNotFoundError, match='symbolic link loop'):
        load_labels(str(loop))
    dangling = tmp_path / 'dangling.txt'
    dangling.symlink_to(tmp_path / 'gone.txt')
    with pytest.raises(FileNotFoundError, match='broken symbolic link'):
        load_labels(str(dangling))

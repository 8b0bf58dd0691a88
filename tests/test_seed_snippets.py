"""The Python snippets users were promised, read from their documents at
run time and run verbatim, as users run them: in a fresh interpreter,
offline, with the released checkpoint in torch hub's cache (random weights
here), from a folder holding ``configs/`` and the snippet's video.

Two documents make the promise: the seed README the project started from
(``../shared/seed/`` beside the checkout) and this project's README.md.
"""
import glob
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, offline_env, write_video

SEED_FILES = sorted(glob.glob(os.path.join(ROOT, '..', 'shared', 'seed',
                                           '*.txt')))
TINY_CONFIG = 'configs/actionclip_tiny-scratch_1x1x4_synthetic-actions.py'


def python_blocks(path: str) -> list:
    """The fenced ```python blocks of a markdown document, in order."""
    with open(path, encoding='utf-8') as f:
        return re.findall(r'^```python\n(.*?)^```', f.read(), re.S | re.M)


def seed_blocks() -> list:
    """The seed README's Python snippets; the seed sits beside the checkout
    in CI, where its absence is a failure, not a skip."""
    if not SEED_FILES:
        if os.environ.get('CI'):
            pytest.fail('the seed README (../shared/seed/*.txt) is missing')
        pytest.skip('no ../shared/seed/ beside this checkout')
    blocks = [b for path in SEED_FILES for b in python_blocks(path)]
    assert len(blocks) == 2, 'the seed promises two Python snippets'
    return blocks


def _prepare(folder, video_name: str) -> str:
    """Give ``folder`` ``configs/`` and a video named ``video_name``;
    returns the folder."""
    folder = str(folder)
    if not os.path.exists(os.path.join(folder, 'configs')):
        os.symlink(os.path.join(ROOT, 'configs'),
                   os.path.join(folder, 'configs'))
    video = os.path.join(folder, video_name)
    if not os.path.exists(video):
        write_video(video, num_frames=24, size=(320, 256))
    return folder


def run_snippet(code: str, folder, video_name: str, torch_home: str,
                epilogue: str = '') -> str:
    """Run ``code`` (then ``epilogue``) in a fresh interpreter from
    ``folder``, which holds ``configs/`` and a video named as the snippet
    names it; returns what it printed."""
    proc = subprocess.run([sys.executable, '-c', code + epilogue],
                          cwd=_prepare(folder, video_name),
                          env=offline_env(TORCH_HOME=torch_home),
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def printed(stdout: str, key: str):
    """The JSON an epilogue printed after ``key``."""
    line = [x for x in stdout.splitlines() if x.startswith(key + ' ')]
    assert line, stdout
    return json.loads(line[-1][len(key) + 1:])


# Printed after a seed snippet: its ``probs`` at full precision (and after
# the second, the templates its ``config.model.template = template`` set).
PROBS = '\nimport json\nprint("PROBS", json.dumps(probs.tolist()))\n'
TEMPLATES = 'print("TEMPLATES", json.dumps(list(model.templates)))\n'


def test_both_seed_snippets_run_and_agree(tmp_path, torch_home):
    plain_code, apis_code = seed_blocks()
    assert 'from models.load import init_actionclip' in plain_code
    plain_out = run_snippet(plain_code, tmp_path, 'test.mp4', torch_home,
                            PROBS)
    apis_out = run_snippet(apis_code, tmp_path, 'test.mp4', torch_home,
                           PROBS + TEMPLATES)
    assert 'Label probs:' in plain_out and 'Label probs:' in apis_out
    plain = np.array(printed(plain_out, 'PROBS'))
    apis = np.array(printed(apis_out, 'PROBS'))
    assert plain.shape == (1, 3) and apis.shape == (3, )
    np.testing.assert_allclose(plain.sum(), 1, atol=1e-5)
    np.testing.assert_allclose(apis.sum(), 1, atol=1e-5)
    # Same model, frames and prompt: the only difference is whether the
    # normalisation runs on 0-1 or 0-255 pixels.
    np.testing.assert_allclose(plain[0], apis, atol=2e-3)
    # The template set on the K400 config replaced its own; the released
    # checkpoint is the snippet's.
    assert printed(apis_out, 'TEMPLATES') == ['The woman is {}']


def _tiny_checkpoint(path: str) -> str:
    """Random weights of the model the tiny config builds."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from models.recognizers.actionclip import ActionClip
    model_cfg = dict(Config.fromfile(f'{ROOT}/{TINY_CONFIG}').model)
    model_cfg.pop('type')
    model_cfg.pop('labels_or_label_file')
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmaction'):
        model = ActionClip(**model_cfg)
    torch.save({'state_dict': model.state_dict()}, path)
    return path


def _edited(code: str, name: str, value: str) -> str:
    """The seed snippet with ``name = ...`` set to ``value``, as a user
    edits it."""
    code, count = re.subn(rf"^{name} = '[^']*'$", f'{name} = {value!r}',
                          code, flags=re.M)
    assert count == 1, name
    return code


def test_seed_snippet_sets_template_on_the_tiny_config(
        tmp_path, torch_home, monkeypatch, isolated_mmengine_state):
    """``config.model.template = template`` in the seed's snippet works on
    the quickstart's config, whose own templates it replaces (on the K400
    config: test_both_seed_snippets_run_and_agree). An edited snippet, not
    the promised text: it runs in this process."""
    code = seed_blocks()[1]
    code = _edited(code, 'config_path', TINY_CONFIG)
    code = _edited(code, 'template', 'a video of {}')
    code = _edited(code, 'checkpoint_path',
                   _tiny_checkpoint(str(tmp_path / 'tiny.pth')))
    monkeypatch.chdir(_prepare(tmp_path, 'test.mp4'))
    monkeypatch.setenv('TORCH_HOME', torch_home)
    variables = {'__name__': '__main__'}
    exec(compile(code, 'seed_snippet', 'exec'), variables)
    probs = variables['probs']
    assert probs.shape == (3, )
    np.testing.assert_allclose(probs.sum(), 1, atol=1e-5)
    assert list(variables['model'].templates) == ['a video of {}']


README_BLOCKS = python_blocks(os.path.join(ROOT, 'README.md'))


def test_readme_has_both_kinds_of_call():
    text = '\n'.join(README_BLOCKS)
    assert 'init_actionclip' in text and 'inference_recognizer' in text


@pytest.mark.parametrize('index', range(len(README_BLOCKS)))
def test_readme_snippet_runs_verbatim(index, tmp_path, torch_home):
    """Each Python snippet of README.md, run as written on the video it
    names, prints one probability per label that sum to one."""
    code = README_BLOCKS[index]
    videos = re.findall(r"'([\w.-]+\.mp4)'", code)
    assert videos, 'a README snippet names the video it scores'
    out = run_snippet(code, tmp_path, videos[0], torch_home)
    labels = re.search(r'\[(\s*\'[^\]]*)\]', code).group(1)
    num_labels = len(re.findall(r"'[^']*'", labels))
    last = [x for x in out.splitlines() if '[' in x][-1]
    probs = [float(x) for x in re.findall(r'\d+\.\d*(?:e[-+]\d+)?', last)]
    assert len(probs) == num_labels, out
    np.testing.assert_allclose(sum(probs), 1, atol=2e-3)

"""The two zero-shot examples users were promised, run as users run them:
in a fresh interpreter, offline, with the released checkpoint in torch hub's
cache (random weights here), importing clip and mmaction before our code."""
import json
import re
import subprocess
import sys
from typing import Optional

import numpy as np
import pytest
from conftest import ROOT, offline_env, write_video

PLAIN_PYTORCH = '''
import json, sys
import torch
import clip
from models.apis.loading import init_actionclip
from mmaction.utils import register_all_modules

register_all_modules(True)
device = "cuda" if torch.cuda.is_available() else "cpu"
model, preprocess = init_actionclip("ViT-B/32-8", device=device)
video = preprocess(dict(filename=sys.argv[1], start_index=0))
video = video.unsqueeze(0).to(device)
labels = ["singing", "dancing", "performing"]
text = clip.tokenize(["The woman is {}".format(x) for x in labels]).to(device)
with torch.no_grad():
    video_features = model.encode_video(video)
    text_features = model.encode_text(text)
video_features /= video_features.norm(dim=-1, keepdim=True)
text_features /= text_features.norm(dim=-1, keepdim=True)
probs = (100 * video_features @ text_features.T).softmax(dim=-1)
print("PROBS", json.dumps(probs.cpu().numpy().tolist()[0]))
'''

MMACTION_APIS = '''
import json, sys
import mmengine
import torch
from mmaction.utils import register_all_modules
from mmaction.apis import inference_recognizer, init_recognizer

register_all_modules(True)
config = mmengine.Config.fromfile(
    "configs/actionclip_vit-base-p32-res224-clip-pre_1x1x8_k400-rgb.py")
config.model.labels_or_label_file = ["singing", "dancing", "performing"]
config.model.template = "The woman is {}"
checkpoint = ("https://download.openmmlab.com/mmaction/v1.0/projects/"
              "actionclip/actionclip_vit-base-p32-res224-clip-pre_1x1x8_"
              "k400-rgb/vit-b-32-8f.pth")
device = "cuda" if torch.cuda.is_available() else "cpu"
model = init_recognizer(config=config, checkpoint=checkpoint, device=device)
result = inference_recognizer(model, sys.argv[1])
print("PROBS", json.dumps(result.pred_score.cpu().numpy().tolist()))
'''


def printed(stdout, key):
    """The JSON a snippet printed after ``key``."""
    line = [x for x in stdout.splitlines() if x.startswith(key + ' ')]
    assert line, stdout
    return json.loads(line[-1][len(key) + 1:])


def run_snippet(code, video, torch_home, output=None):
    proc = subprocess.run([sys.executable, '-c', code, video],
                          cwd=ROOT,
                          env=offline_env(TORCH_HOME=torch_home),
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if output is not None:
        output.append(proc.stdout)
    return np.array(printed(proc.stdout, 'PROBS'))


K400_CONFIG = (
    'configs/actionclip_vit-base-p32-res224-clip-pre_1x1x8_k400-rgb.py')
TINY_CONFIG = 'configs/actionclip_tiny-scratch_1x1x4_synthetic-actions.py'


def mmaction_snippet(config: str, template: str,
                     checkpoint: Optional[str] = None) -> str:
    """The seed's MMAction2 snippet with another config,
    ``config.model.template`` and, when given, checkpoint, as a user edits
    it."""
    code = MMACTION_APIS
    for old, new in ((K400_CONFIG, config),
                     ('config.model.template = "The woman is {}"',
                      f'config.model.template = {template!r}')):
        assert old in code
        code = code.replace(old, new)
    if checkpoint is not None:
        code, count = re.subn(r'checkpoint = \(.*?\)\n',
                              f'checkpoint = {checkpoint!r}\n', code,
                              flags=re.S)
        assert count == 1
    return code


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


@pytest.mark.parametrize('config', [TINY_CONFIG, K400_CONFIG],
                         ids=['tiny', 'k400'])
def test_seed_snippet_sets_template_on_shipped_configs(
        config, tmp_path, torch_home):
    """``config.model.template = 'a video of {}'`` in the seed's snippet
    works on the quickstart's config, whose own templates it replaces
    (this failed with 'Set either template or templates_or_template_file,
    not both'), and on the K400 config."""
    video = write_video(
        str(tmp_path / 'test.mp4'), num_frames=24, size=(320, 256))
    # the K400 config keeps the snippet's released checkpoint (random
    # weights in torch_home's cache)
    checkpoint = (
        _tiny_checkpoint(str(tmp_path / 'tiny.pth'))
        if config == TINY_CONFIG else None)
    code = mmaction_snippet(config, 'a video of {}', checkpoint)
    code += 'print("TEMPLATES", json.dumps(list(model.templates)))\n'
    output = []
    probs = run_snippet(code, video, torch_home, output)
    assert probs.shape == (3, )
    np.testing.assert_allclose(probs.sum(), 1, atol=1e-5)
    assert printed(output[0], 'TEMPLATES') == ['a video of {}']


def test_both_seed_snippets_run_and_agree(tmp_path, torch_home):
    video = write_video(
        str(tmp_path / 'test.mp4'), num_frames=24, size=(320, 256))
    plain = run_snippet(PLAIN_PYTORCH, video, torch_home)
    apis = run_snippet(MMACTION_APIS, video, torch_home)
    assert plain.shape == apis.shape == (3, )
    np.testing.assert_allclose(plain.sum(), 1, atol=1e-5)
    np.testing.assert_allclose(apis.sum(), 1, atol=1e-5)
    # Same model, frames and prompt: the only difference is whether the
    # normalisation runs on 0-1 or 0-255 pixels.
    np.testing.assert_allclose(plain, apis, atol=2e-3)

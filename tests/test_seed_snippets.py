"""The two zero-shot examples users were promised, run as users run them:
in a fresh interpreter, offline, with the released checkpoint in torch hub's
cache (random weights here), importing clip and mmaction before our code."""
import json
import subprocess
import sys

import numpy as np
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


def run_snippet(code, video, torch_home):
    proc = subprocess.run([sys.executable, '-c', code, video],
                          cwd=ROOT,
                          env=offline_env(TORCH_HOME=torch_home),
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith('PROBS')]
    assert line, proc.stdout
    return np.array(json.loads(line[-1][len('PROBS '):]))


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

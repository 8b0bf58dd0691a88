"""tools/convert_vificlip_checkpoint.py: ViFi-CLIP checkpoints (the layout
its main.py saves) to ActionClip with mean pooling, scored as ViFi-CLIP's
own forward pass scores."""
import math
import os
import subprocess
import sys
import types

import clip
import convert_vificlip_checkpoint as convert_tool
import pytest
import torch
from conftest import ROOT, TINY_ARCH, offline_env, write_video
from mmaction.registry import RUNNERS
from mmengine.config import Config

from models.apis.loading import init_actionclip
from models.backbones.clip_builder import build_clip

CLASSES = ['juggling balls', 'riding a unicycle', 'passing American '
           'football (in game)']
FRAMES = 4
# OpenAI's clip.build_model, which ViFi-CLIP calls, has width // 64 text
# heads; TINY_ARCH's 2 heads could not come from it.
ARCH = dict(TINY_ARCH, transformer_heads=1)
# ViFi-CLIP's img_norm_cfg (datasets/build.py), on 0-255 pixels.
IMAGENET_MEAN = [123.675, 116.28, 103.53]
IMAGENET_STD = [58.395, 57.12, 57.375]
MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


class CfgNode(dict):
    """yacs' CfgNode as pickled: a dict with attributes."""

    def __init__(self, data):
        super().__init__(data)
        self.__dict__['__immutable__'] = True
        self.__dict__['__new_allowed__'] = False


@pytest.fixture(scope='module')
def source():
    """A random small CLIP (float16-exact token table, as OpenAI's) and the
    checkpoint ViFi-CLIP's main.py saves for it."""
    torch.manual_seed(0)
    model = build_clip(ARCH, False).eval()
    with torch.no_grad():
        model.token_embedding.weight.copy_(
            model.token_embedding.weight.half().float())
        model.logit_scale.fill_(math.log(80.0))  # fine-tuned away from 100
    state = model.state_dict()
    vifi = {'module.logit_scale': state['logit_scale']}
    for key, value in state.items():
        if key.startswith('visual.'):
            vifi['module.image_encoder.' + key[len('visual.'):]] = value
        elif key.split('.')[0] in ('transformer', 'positional_embedding',
                                   'ln_final', 'text_projection'):
            vifi['module.text_encoder.' + key] = value
    with torch.no_grad():
        vifi['module.prompt_learner.complete_text_embeddings'] = (
            model.token_embedding(
                clip.tokenize([f'a photo of a {c}.' for c in CLASSES])))
    config = CfgNode(dict(DATA=CfgNode(dict(NUM_FRAMES=FRAMES)),
                          MODEL=CfgNode(dict(ARCH='ViT-B/16'))))
    checkpoint = dict(model=vifi, optimizer=dict(state={}, param_groups=[]),
                      lr_scheduler={}, max_accuracy=51.3, epoch=9,
                      config=config)
    return model, checkpoint


def save(tmp_path, model, checkpoint):
    """The checkpoint, its CfgNode pickled as yacs.config.CfgNode, and the
    CLIP weights file."""
    package, module = (types.ModuleType('yacs'),
                       types.ModuleType('yacs.config'))
    package.config, module.CfgNode = module, CfgNode
    CfgNode.__module__ = 'yacs.config'
    sys.modules.update({'yacs': package, 'yacs.config': module})
    try:
        torch.save(checkpoint, tmp_path / 'vifi.pth')
    finally:
        del sys.modules['yacs'], sys.modules['yacs.config']
        CfgNode.__module__ = __name__
    torch.save(model.state_dict(), tmp_path / 'clip.pt')
    return tmp_path / 'vifi.pth', tmp_path / 'clip.pt'


def vificlip_probabilities(model, frames):
    """ViFi-CLIP's forward pass (trainers/vificlip.py) written plainly:
    frame features averaged, prompts 'a photo of a {}.', softmax of
    exp(logit_scale) x cosine."""
    n, t = frames.shape[:2]
    with torch.no_grad():
        video = model.encode_image(frames.flatten(0, 1)).view(n, t, -1)
        video = video.mean(dim=1)
        text = model.encode_text(
            clip.tokenize([f'a photo of a {c}.' for c in CLASSES]))
    video = video / video.norm(dim=-1, keepdim=True)
    text = text / text.norm(dim=-1, keepdim=True)
    return (model.logit_scale.exp() * video @ text.t()).softmax(dim=-1)


def run_main(capsys, *args):
    status = convert_tool.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def test_converted_model_scores_as_vificlip(tmp_path, capsys, source,
                                            isolated_mmengine_state):
    """Through init_actionclip (as --model loads), init_recognizer and mim
    test's loop with the shipped config, and tools/eval_protocol.py's
    loading."""
    model, checkpoint = source
    src, clip_file = save(tmp_path, model, checkpoint)
    dst = tmp_path / 'converted.pth'
    status, out, err = run_main(capsys, src, dst, '--clip-weights', clip_file)
    assert status == 0, err
    assert f'{FRAMES} frames, mean pooling, 3 class prompts' in out
    assert 'ignored (not weights): config, epoch' in out

    torch.manual_seed(1)
    pixels = torch.rand(2, FRAMES, 3, 32, 32) * 255
    expected = vificlip_probabilities(model, (pixels - MEAN) / STD)
    converted, _ = init_actionclip(str(dst), labels=CLASSES)
    assert converted.adapter.__class__.__name__ == 'MeanPoolAdapter'
    with torch.no_grad():
        normalised = converted.data_preprocessor(
            dict(inputs=list(pixels), data_samples=None))['inputs']
        got = converted.predict_scores(normalised)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    assert (expected.max(dim=1).values < 0.99).all()  # not saturated
    meta = torch.load(dst, weights_only=True)['meta']
    assert meta['prompt_labels'][:2] == CLASSES[:2]
    # What it records: ViFi-CLIP's normalisation, prompt, frames, and a
    # test dataloader, so that tools/eval_protocol.py takes it alone.
    from models.checkpoints.recorded_config import parse_config_text
    from models.evaluation.protocol_run import model_files
    recorded = parse_config_text(meta['cfg'])
    assert recorded.model.data_preprocessor.mean == IMAGENET_MEAN
    assert recorded.model.data_preprocessor.std == IMAGENET_STD
    assert recorded.model.template == 'a photo of a {}.'
    assert recorded.test_dataloader.dataset.pipeline[1]['num_clips'] == FRAMES
    assert model_files(str(dst), None, str(tmp_path / 'work'))[0] == str(dst)

    # init_recognizer with the shipped zero-shot config (small CLIP).
    from mmaction.apis import init_recognizer
    config = tmp_path / 'config.py'
    config.write_text(
        f"_base_ = '{ROOT}/configs/vificlip_vit-base-p16-res224-clip-pre_"
        "1x1x32_k400-zeroshot_ucf101-split1-rgb.py'\n"
        f'model = dict(clip_arch={dict(ARCH, _delete_=True)!r}, '
        f'num_adapter_segs={FRAMES}, labels_or_label_file={CLASSES!r})\n')
    recognizer = init_recognizer(str(config), str(dst), device='cpu')
    with torch.no_grad():
        got = recognizer.predict_scores(normalised)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)

    # mim test's loop: the config's runner loading the file (load_from),
    # then testing generated videos.
    videos = tmp_path / 'videos'
    videos.mkdir()
    for i in range(len(CLASSES)):
        write_video(str(videos / f'v{i}.mp4'), size=(64, 64), seed=i)
    (tmp_path / 'ann.txt').write_text(
        ''.join(f'v{i}.mp4 {i}\n' for i in range(len(CLASSES))))
    cfg = Config.fromfile(str(config))
    for step in cfg.test_dataloader.dataset.pipeline:
        step.update(dict(Resize=dict(scale=(-1, 32)),
                         CenterCrop=dict(crop_size=32)).get(step.type, {}))
    cfg.test_dataloader.dataset.update(
        ann_file=str(tmp_path / 'ann.txt'),
        data_prefix=dict(video=str(videos)))
    cfg.test_dataloader.update(num_workers=0, persistent_workers=False,
                               pin_memory=False)
    cfg.update(work_dir=str(tmp_path / 'work_dir'), load_from=str(dst))
    runner = RUNNERS.build(cfg)
    assert 'acc/top1' in runner.test()
    with torch.no_grad():
        got = runner.model.predict_scores(normalised)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_prompt_embeddings_from_other_clip_refused(tmp_path, capsys, source):
    model, checkpoint = source
    key = 'module.prompt_learner.complete_text_embeddings'
    changed = dict(checkpoint, model=dict(checkpoint['model']))
    changed['model'][key] = checkpoint['model'][key].clone()
    changed['model'][key][1, 5] += 0.01
    src, clip_file = save(tmp_path, model, changed)
    status, out, err = run_main(capsys, src, tmp_path / 'out.pth',
                                '--clip-weights', clip_file)
    assert status == 2
    assert err.count('\n') == 1 and str(src) in err
    assert 'does not match the token embeddings' in err
    assert 'prompt 1' in err
    assert not (tmp_path / 'out.pth').exists()


@pytest.mark.parametrize('drop', ['module.logit_scale', 'model'])
def test_non_vificlip_checkpoint_refused(tmp_path, capsys, source, drop):
    model, checkpoint = source
    if drop == 'model':
        broken = {'state_dict': checkpoint['model']}
    else:
        broken = dict(checkpoint, model={
            k: v for k, v in checkpoint['model'].items() if k != drop})
    src, clip_file = save(tmp_path, model, broken)
    status, out, err = run_main(capsys, src, tmp_path / 'out.pth',
                                '--clip-weights', clip_file)
    assert status == 2
    assert err.count('\n') == 1 and str(src) in err
    assert 'not a ViFi-CLIP checkpoint' in err


def test_usage_errors_before_torch(tmp_path):
    """A missing input answers at once, without importing torch."""
    code = ('import sys; sys.argv = ["x", "missing.pth", "out.pth"]; '
            f'sys.path.insert(0, {os.path.join(ROOT, "tools")!r}); '
            'import convert_vificlip_checkpoint as t; s = t.main(); '
            'assert "torch" not in sys.modules; sys.exit(s)')
    proc = subprocess.run([sys.executable, '-c', code], cwd=tmp_path,
                          env=offline_env(), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith('error: cannot convert missing.pth')

"""tools/convert_actionclip_checkpoint.py: original ActionCLIP checkpoints
(model_state_dict + fusion_model_state_dict) to this project's layout."""
import datetime
import json
import os
import subprocess
import sys

import convert_actionclip_checkpoint as convert_tool
import pytest
import torch
from conftest import ROOT, TINY_ARCH, offline_env

from models.apis.loading import init_actionclip
from models.recognizers.actionclip import ActionClip

TOOL = os.path.join(ROOT, 'tools', 'convert_actionclip_checkpoint.py')
MANIFEST = os.path.join(ROOT, 'tests', 'fixtures',
                        'upstream_state_dict_manifest.json')
# The original code builds CLIP with width // 64 text heads, and so does
# infer_clip_arch; TINY_ARCH's 2 heads could not come from it.
ARCH = dict(TINY_ARCH, transformer_heads=1)
LABELS = ['juggling balls', 'riding a unicycle', 'reading a book']


def make_source_model(num_segs=8, seed=0):
    torch.manual_seed(seed)
    model = ActionClip(ARCH, num_segs, labels_or_label_file=LABELS).eval()
    # The original saves CLIP in float16 on the GPU; weights that float16
    # holds exactly let the converted model match bit for bit.
    with torch.no_grad():
        for p in model.clip.parameters():
            p.copy_(p.half().float())
    return model


def original_layout(model, clip_prefix='', fusion_prefix='module.',
                    half=True, rows=77):
    """The dict the original train.py saves for ``model``'s weights."""
    state = model.state_dict()
    clip_state = {
        clip_prefix + k[len('clip.'):]: v.half() if half else v.clone()
        for k, v in state.items() if k.startswith('clip.')
    }
    fusion = {
        fusion_prefix + k[len('adapter.'):]: v.clone()
        for k, v in state.items() if k.startswith('adapter.')
    }
    key = fusion_prefix + 'frame_position_embeddings.weight'
    table = fusion[key]
    # Rows past T are never read by the original; random ones show that
    # they are dropped rather than used.
    fusion[key] = torch.cat([table, torch.randn(rows - len(table),
                                                table.shape[1])])
    return {
        'epoch': 7,
        'model_state_dict': clip_state,
        'fusion_model_state_dict': fusion,
        'optimizer_state_dict': {
            'state': {},
            'param_groups': [{'lr': 5e-6, 'params': [0, 1, 2]}]
        },
    }


def assert_same_model(converted_path, source):
    checkpoint = torch.load(converted_path, weights_only=True)
    assert set(checkpoint) == {'state_dict', 'meta'}
    model, _ = init_actionclip(converted_path, labels=LABELS)
    video = torch.randn(2, 16, 3, 32, 32)  # 2 videos x 2 views x 8 frames
    with torch.no_grad():
        assert torch.equal(model.encode_video(video),
                           source.encode_video(video))
        assert torch.equal(model.predict_scores(video),
                           source.predict_scores(video))
    return checkpoint['meta']


def run_main(capsys, *args):
    status = convert_tool.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_converts_the_original_layout(tmp_path):
    """DataParallel fusion keys, float16 CLIP, epoch and optimizer state,
    as the original train.py saves them; run as users run it."""
    source = make_source_model()
    src, dst = tmp_path / 'model_best.pt', tmp_path / 'converted.pth'
    torch.save(original_layout(source), src)
    proc = subprocess.run([sys.executable, TOOL, str(src), str(dst)],
                          cwd=ROOT,
                          env=offline_env(),
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert '32 tensors  clip.visual (image encoder)' in out
    assert '30 tensors  clip (text encoder, logit scale)' in out
    assert '73 tensors  adapter (temporal transformer)' in out
    assert 'rows 8..76' in out
    assert 'ignored (not weights): epoch, optimizer_state_dict' in out
    assert 'loads strictly into ActionClip: yes' in out
    meta = assert_same_model(str(dst), source)
    assert meta['epoch'] == 7 and meta['num_segs'] == 8
    assert meta['num_adapter_layers'] == 6
    assert meta['converted_from'] == 'model_best.pt'
    # mmengine's loader, as mim test --checkpoint and init_recognizer use it
    from mmengine.runner import load_checkpoint
    model = ActionClip(ARCH, 8)
    load_checkpoint(model, str(dst), map_location='cpu', strict=True)
    assert torch.equal(model.adapter.frame_position_embeddings.weight,
                       source.adapter.frame_position_embeddings.weight)


@pytest.mark.parametrize('clip_prefix,fusion_prefix,half', [
    ('', '', False),
    ('module.', 'module.', False),
])
def test_prefix_variants(tmp_path, capsys, clip_prefix, fusion_prefix, half):
    source = make_source_model()
    src, dst = tmp_path / 'src.pt', tmp_path / 'dst.pth'
    torch.save(original_layout(source, clip_prefix, fusion_prefix, half), src)
    status, out, err = run_main(capsys, src, dst)
    assert status == 0, err
    assert_same_model(str(dst), source)


def test_num_segs_keeps_the_first_rows(tmp_path, capsys):
    source = make_source_model(num_segs=16)
    src, dst = tmp_path / 'src.pt', tmp_path / 'dst.pth'
    torch.save(original_layout(source), src)
    status, out, err = run_main(capsys, src, dst, '--num-segs', 16)
    assert status == 0, err
    assert 'rows 16..76' in out
    assert assert_same_model(str(dst), source)['num_segs'] == 16


def test_vit_b32_result_has_the_released_layout():
    """The converted keys, shapes and dtypes are those of the released
    ViT-B/32-8 checkpoint (the manifest the project loads)."""
    torch.manual_seed(0)
    model = ActionClip('ViT-B/32', 8)
    state, report = convert_tool.convert(original_layout(model), 8)
    with open(MANIFEST) as f:
        expected = json.load(f)['ViT-B/32-8']
    assert sorted(state) == sorted(expected)
    for key, (shape, dtype) in expected.items():
        assert list(state[key].shape) == shape, key
        assert str(state[key].dtype) == dtype, key
    assert sum(report['groups'].values()) == len(expected)


def corrupt(checkpoint, what):
    if what == 'no fusion':
        del checkpoint['fusion_model_state_dict']
    elif what == 'extra clip key':
        checkpoint['model_state_dict']['visual.time_embedding'] = (
            torch.zeros(8, 64))
    elif what == 'missing clip key':
        del checkpoint['model_state_dict']['ln_final.bias']
    elif what == 'lstm fusion':
        fusion = checkpoint['fusion_model_state_dict']
        fusion['module.lstm_visual.weight_ih_l0'] = torch.zeros(256, 64)
    elif what == 'meanP fusion':
        checkpoint['fusion_model_state_dict'] = {
            'module.transformer.resblocks.0.ln_1.weight': torch.ones(64)
        }
    return checkpoint


@pytest.mark.parametrize('what,message', [
    ('no fusion', "no ['fusion_model_state_dict'] entry"),
    ('extra clip key', 'clip.visual.time_embedding'),
    ('missing clip key', 'clip.ln_final.bias'),
    ('lstm fusion', 'lstm_visual.weight_ih_l0'),
    ('meanP fusion', "no 'frame_position_embeddings.weight'"),
])
def test_wrong_content_is_an_error_naming_it(tmp_path, capsys, what,
                                             message):
    src, dst = tmp_path / 'src.pt', tmp_path / 'dst.pth'
    torch.save(corrupt(original_layout(make_source_model()), what), src)
    status, out, err = run_main(capsys, src, dst)
    assert status == 2
    assert message in err and err.startswith('error: cannot convert')
    assert not dst.exists()


def test_too_many_frames_is_an_error(tmp_path, capsys):
    src = tmp_path / 'src.pt'
    torch.save(original_layout(make_source_model(), rows=12), src)
    status, out, err = run_main(capsys, src, tmp_path / 'dst.pth',
                                '--num-segs', 16)
    assert status == 2 and 'fewer than --num-segs=16 rows' in err


def test_converted_file_is_recognised(tmp_path, capsys):
    src = tmp_path / 'already.pth'
    torch.save({'state_dict': make_source_model().state_dict()}, src)
    status, out, err = run_main(capsys, src, tmp_path / 'dst.pth')
    assert status == 2 and 'needs no conversion' in err


def test_unsafe_file_is_refused_naming_the_opt_in(tmp_path, capsys):
    checkpoint = original_layout(make_source_model())
    checkpoint['saved_at'] = datetime.datetime(2021, 9, 17)
    src = tmp_path / 'src.pt'
    torch.save(checkpoint, src)
    status, out, err = run_main(capsys, src, tmp_path / 'dst.pth')
    assert status == 2
    assert 'datetime' in err and 'ACTIONCLIP_TRUST_CHECKPOINTS=1' in err


def test_non_dict_is_rejected(tmp_path, capsys):
    src = tmp_path / 'list.pt'
    torch.save([torch.zeros(2)], src)
    status, out, err = run_main(capsys, src, tmp_path / 'dst.pth')
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f'error: cannot convert {src}: ')
    # The safe loader refuses it first; convert() itself names the layout.
    assert 'list' in err and 'not a checkpoint' in err
    with pytest.raises(convert_tool.ConversionError,
                       match="expected a dict with 'model_state_dict' and "
                       ".* got list"):
        convert_tool.convert([torch.zeros(2)])


def test_missing_file(tmp_path, capsys):
    status, out, err = run_main(capsys, tmp_path / 'nope.pt',
                                tmp_path / 'dst.pth')
    assert status == 2 and 'nope.pt' in err


def test_missing_file_is_named_and_no_folder_is_created(tmp_path, capsys):
    status, out, err = run_main(capsys, tmp_path / 'nope.pt',
                                tmp_path / 'new' / 'dst.pth')
    assert status == 2 and 'nope.pt' in err and 'does not exist' in err
    assert not (tmp_path / 'new').exists()


@pytest.mark.parametrize('link', ['same', 'hard', 'symbolic'])
def test_output_that_is_the_input_is_refused_before_loading(
        tmp_path, capsys, monkeypatch, link):
    src = tmp_path / 'model_best.pt'
    torch.save(original_layout(make_source_model()), src)
    before = src.read_bytes()
    dst = src if link == 'same' else tmp_path / 'converted.pth'
    if link == 'hard':
        os.link(src, dst)
    elif link == 'symbolic':
        dst.symlink_to(src)

    def no_loading(*args, **kwargs):
        raise AssertionError('the source was read before the output check')

    import models.checkpoints.safe_loading
    monkeypatch.setattr(models.checkpoints.safe_loading,
                        'load_checkpoint_file', no_loading)
    status, out, err = run_main(capsys, src, dst)
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert f"'{dst}' is the same file as the input '{src}'" in err
    assert src.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == sorted({src.name, dst.name})


def test_output_folder_is_created_or_refused(tmp_path, capsys):
    source = make_source_model()
    src = tmp_path / 'src.pt'
    torch.save(original_layout(source), src)
    dst = tmp_path / 'new' / 'deeper' / 'dst.pth'
    status, out, err = run_main(capsys, src, dst)
    assert status == 0, err
    assert_same_model(str(dst), source)
    status, out, err = run_main(capsys, src, tmp_path / 'new')
    assert status == 2 and 'is a folder' in err
    status, out, err = run_main(capsys, src, src / 'dst.pth')
    assert status == 2 and 'a file is in the way' in err


def test_failed_write_leaves_the_previous_output(tmp_path, capsys,
                                                 monkeypatch):
    src, dst = tmp_path / 'src.pt', tmp_path / 'dst.pth'
    torch.save(original_layout(make_source_model()), src)
    dst.write_bytes(b'previous conversion')

    def disk_full(obj, f):
        f.write(b'half a checkpoint')
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(torch, 'save', disk_full)
    status, out, err = run_main(capsys, src, dst)
    assert status == 1 and 'No space left on device' in err
    assert dst.read_bytes() == b'previous conversion'
    assert sorted(os.listdir(tmp_path)) == ['dst.pth', 'src.pt']

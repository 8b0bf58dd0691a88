import hashlib
import urllib.error

import pytest
import torch

from models.backbones import pretrained as pretrained
from models.backbones.clip_builder import build_clip, infer_clip_arch


def test_random_build_needs_no_file(tiny_arch):
    model = build_clip(tiny_arch, pretrained=False)
    assert model.visual.conv1.weight.dtype == torch.float32


def test_local_weights_file_is_loaded(tmp_path, tiny_arch):
    source = build_clip(tiny_arch)
    path = tmp_path / 'clip.pth'
    torch.save(source.state_dict(), path)
    model = build_clip(tiny_arch, pretrained=str(path))
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_torchscript_weights_file_is_loaded(tmp_path, tiny_arch):
    # OpenAI distributes traced TorchScript archives of the whole model.
    source = build_clip(tiny_arch).eval()
    example = (torch.zeros(1, 3, 32, 32), torch.zeros(1, 77,
                                                      dtype=torch.long))
    path = tmp_path / 'clip.pt'
    torch.jit.trace(source, example, check_trace=False).save(str(path))
    model = build_clip(tiny_arch, pretrained=str(path))
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_wrong_architecture_lists_differences(tmp_path, tiny_arch):
    path = tmp_path / 'clip.pth'
    torch.save(build_clip(tiny_arch).state_dict(), path)
    with pytest.raises(ValueError, match='shape mismatch'):
        build_clip(dict(tiny_arch, embed_dim=128), pretrained=str(path))


def test_missing_weights_file_is_named(tiny_arch):
    with pytest.raises(FileNotFoundError, match='nowhere.pt'):
        build_clip(tiny_arch, pretrained='/nowhere.pt')


def _fake_openai_entry(monkeypatch, tmp_path, tiny_arch):
    """Register tiny weights as 'ViT-B/32' of a fake download address."""
    source = build_clip(tiny_arch)
    blob = tmp_path / 'blob.pth'
    torch.save(source.state_dict(), blob)
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    url = f'https://example.invalid/clip/{digest}/tiny.pt'
    monkeypatch.setitem(pretrained.OPENAI_CLIP_URLS, 'tiny', url)
    cache = tmp_path / 'cache'
    monkeypatch.setattr(pretrained, 'clip_cache_dir', lambda: str(cache))
    return source, blob, cache


def test_cached_openai_weights_are_used_offline(monkeypatch, tmp_path,
                                                tiny_arch):
    source, blob, cache = _fake_openai_entry(monkeypatch, tmp_path, tiny_arch)
    cache.mkdir()
    (cache / 'tiny.pt').write_bytes(blob.read_bytes())

    def offline(*args, **kwargs):
        raise AssertionError('no download may happen')

    monkeypatch.setattr(pretrained.urllib.request, 'urlopen', offline)
    monkeypatch.setitem(pretrained.OPENAI_CLIP_URLS, 'tiny',
                        pretrained.OPENAI_CLIP_URLS['tiny'])
    from models.backbones import clip_archs as clip_archs
    monkeypatch.setitem(clip_archs.CLIP_ARCHS, 'tiny',
                        clip_archs.resolve_arch(tiny_arch))
    model = build_clip('tiny', pretrained=True)
    assert torch.equal(model.text_projection, source.text_projection)


def test_offline_download_fails_at_once_with_advice(monkeypatch, tmp_path,
                                                    tiny_arch):
    _fake_openai_entry(monkeypatch, tmp_path, tiny_arch)

    def offline(*args, **kwargs):
        raise urllib.error.URLError('no network')

    monkeypatch.setattr(pretrained.urllib.request, 'urlopen', offline)
    with pytest.raises(pretrained.WeightsUnavailableError) as info:
        pretrained.fetch_openai_clip('tiny')
    message = str(info.value)
    assert 'tiny.pt' in message and 'pretrained=False' in message
    assert not list((tmp_path / 'cache').iterdir())  # no partial file


def test_corrupted_cache_file_is_downloaded_again(monkeypatch, tmp_path,
                                                  tiny_arch):
    _, blob, cache = _fake_openai_entry(monkeypatch, tmp_path, tiny_arch)
    cache.mkdir()
    (cache / 'tiny.pt').write_bytes(b'garbage')

    class Response:

        def __init__(self):
            self.data = [blob.read_bytes(), b'']
            self.headers = {'Content-Length': str(len(self.data[0]))}

        def read(self, n):
            return self.data.pop(0)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(pretrained.urllib.request, 'urlopen',
                        lambda url, timeout: Response())
    path = pretrained.fetch_openai_clip('tiny')
    assert open(path, 'rb').read() == blob.read_bytes()


def test_pretrained_true_needs_a_name(tiny_arch):
    with pytest.raises(ValueError, match='named clip_arch'):
        build_clip(tiny_arch, pretrained=True)


def test_arch_is_read_back_from_weights(tiny_arch):
    state = build_clip('ViT-B/32').state_dict()
    assert infer_clip_arch(state) == 'ViT-B/32'
    tiny = {f'clip.{k}': v for k, v in build_clip(tiny_arch).state_dict()
            .items()}
    arch = infer_clip_arch(tiny, prefix='clip.')
    assert arch['vision_layers'] == 2 and arch['embed_dim'] == 64

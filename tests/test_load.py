import pytest
import torch
from conftest import write_video

from models.apis.loading import available_models, init_actionclip
from models.recognizers.actionclip import ActionClip


def test_local_checkpoint_round_trip(tmp_path, tiny_arch, video_file):
    torch.manual_seed(0)
    model = ActionClip(tiny_arch, 4, num_adapter_layers=1)
    path = tmp_path / 'model.pth'
    torch.save({'state_dict': model.state_dict()}, path)
    loaded, preprocess = init_actionclip(
        str(path), device='cpu', labels=['left', 'right'])
    assert not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    video = preprocess(dict(filename=video_file, start_index=0))
    assert video.shape == (4, 3, 32, 32) and video.dtype == torch.float32
    # normalised with CLIP's statistics: roughly centred
    assert -3 < video.mean() < 3
    with torch.no_grad():
        scores = loaded.predict_scores(video.unsqueeze(0))
    assert scores.shape == (1, 2)


def test_preprocess_on_a_short_video_repeats_frames(tmp_path, tiny_arch):
    model = ActionClip(tiny_arch, 8, num_adapter_layers=1)
    path = tmp_path / 'model.pth'
    torch.save(model.state_dict(), path)  # a bare state dict works too
    _, preprocess = init_actionclip(str(path))
    short = write_video(str(tmp_path / 'short.mp4'), num_frames=3)
    assert preprocess(short).shape == (8, 3, 32, 32)


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(ValueError) as info:
        init_actionclip('ViT-B/64-8', device='cpu')
    for name in available_models():
        assert name in str(info.value)


def test_missing_video_is_named(tmp_path, tiny_arch):
    path = tmp_path / 'model.pth'
    torch.save(ActionClip(tiny_arch, 4).state_dict(), path)
    _, preprocess = init_actionclip(str(path))
    with pytest.raises(FileNotFoundError, match='missing.mp4'):
        preprocess(dict(filename=str(tmp_path / 'missing.mp4')))


def test_released_name_is_read_from_the_hub_cache(torch_home, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', torch_home)
    import urllib.request

    def offline(*args, **kwargs):
        raise AssertionError('the cached file must be used')

    monkeypatch.setattr(urllib.request, 'urlopen', offline)
    model, preprocess = init_actionclip('ViT-B/32-8', device='cpu')
    assert model.num_segs == 8 and preprocess.num_segs == 8
    assert model.clip.visual.conv1.weight.shape[-1] == 32


def test_released_name_offline_says_where_to_put_the_file(
        tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    import urllib.error
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError('no network')

    monkeypatch.setattr(urllib.request, 'urlopen', offline)
    from models.checkpoints.safe_loading import CheckpointDownloadError
    with pytest.raises(CheckpointDownloadError) as info:
        init_actionclip('ViT-B/16-8')
    assert str(tmp_path / 'hub' / 'checkpoints' / 'vit-b-16-8f.pth') in str(
        info.value)


@pytest.mark.parametrize('content, message', [
    (b'', 'is empty'),
    (b'this is a text file', 'truncated, corrupt or not a video'),
    ('truncated', 'truncated, corrupt or not a video'),
])
def test_unreadable_videos_are_named(tmp_path, tiny_arch, video_file,
                                     content, message):
    from models.datasets.transforms import VideoReadError
    path = tmp_path / 'model.pth'
    torch.save(ActionClip(tiny_arch, 4).state_dict(), path)
    _, preprocess = init_actionclip(str(path))
    if content == 'truncated':
        with open(video_file, 'rb') as f:
            content = f.read()[:300]
    broken = tmp_path / 'broken.mp4'
    broken.write_bytes(content)
    with pytest.raises(VideoReadError, match=message) as info:
        preprocess(dict(filename=str(broken), start_index=0))
    assert 'broken.mp4' in str(info.value)


def test_grayscale_video_of_unusual_size(tmp_path, tiny_arch):
    import cv2
    import numpy as np
    path = tmp_path / 'model.pth'
    torch.save(ActionClip(tiny_arch, 4).state_dict(), path)
    _, preprocess = init_actionclip(str(path))
    video = str(tmp_path / 'gray.mp4')
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'mp4v'), 8,
                             (74, 42), isColor=False)
    for i in range(10):
        writer.write(np.full((42, 74), 20 * i, dtype=np.uint8))
    writer.release()
    assert preprocess(video).shape == (4, 3, 32, 32)


def test_recorded_config_with_the_older_speed_arguments(tmp_path, tiny_arch):
    """Checkpoints trained before the speed switches were grouped record
    them as arguments of their own; they still load."""
    from mmengine.config import Config
    torch.manual_seed(0)
    model = ActionClip(tiny_arch, 4, num_adapter_layers=1)
    recorded = Config(dict(model=dict(
        type='ActionClip', clip_arch=tiny_arch, num_adapter_segs=4,
        num_adapter_layers=1, fast_attention=False,
        fast_patch_embedding=True, compile='reduce-overhead',
        cuda_graphs=False)))
    path = tmp_path / 'old.pth'
    torch.save({'state_dict': model.state_dict(),
                'meta': {'cfg': recorded.pretty_text}}, path)
    loaded, _ = init_actionclip(str(path))
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_init_actionclip_reads_the_config_it_is_given(tmp_path, tiny_arch):
    path = tmp_path / 'model.pth'
    torch.save(ActionClip(tiny_arch, 4).state_dict(), path)
    missing = tmp_path / 'absent_config.py'
    with pytest.raises(Exception, match='absent_config.py'):
        init_actionclip(str(path), config=str(missing))

"""Shared fixtures: small CLIP architectures and real mp4 files."""
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import models  # noqa: E402,F401  (applies the stack fixes first)

#: A CLIP small enough to run in milliseconds on a CPU.
TINY_ARCH = dict(
    embed_dim=64,
    image_resolution=32,
    vision_layers=2,
    vision_width=64,
    vision_patch_size=16,
    transformer_width=64,
    transformer_heads=2,
    transformer_layers=2)


def write_video(path: str,
                num_frames: int = 16,
                size: tuple = (64, 48),
                fps: int = 8,
                seed: int = 0) -> str:
    """Write an mp4 of a square moving over noise; returns ``path``."""
    import cv2
    rng = np.random.default_rng(seed)
    width, height = size
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                             (width, height))
    assert writer.isOpened(), f'cannot write {path}'
    background = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
    side = max(4, min(width, height) // 4)
    for i in range(num_frames):
        frame = background.copy()
        x = int((width - side) * i / max(1, num_frames - 1))
        frame[height // 3:height // 3 + side, x:x + side] = (40, 200, 240)
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture
def tiny_arch() -> dict:
    return dict(TINY_ARCH)


@pytest.fixture
def video_file(tmp_path) -> str:
    return write_video(str(tmp_path / 'video.mp4'))


@pytest.fixture(scope='session')
def torch_home(tmp_path_factory) -> str:
    """A TORCH_HOME whose hub cache holds a random-weight ViT-B/32-8
    checkpoint under the released file name, as a user's would after one
    download."""
    import torch

    from models.backbones.pretrained import ACTIONCLIP_CHECKPOINTS
    from models.recognizers.actionclip import ActionClip
    home = tmp_path_factory.mktemp('torch_home')
    cache = home / 'hub' / 'checkpoints'
    cache.mkdir(parents=True)
    url = ACTIONCLIP_CHECKPOINTS['ViT-B/32-8']['url']
    torch.manual_seed(0)
    model = ActionClip('ViT-B/32', 8)
    torch.save({'state_dict': model.state_dict()},
               cache / os.path.basename(url))
    return str(home)


def offline_env(**extra) -> dict:
    """Environment for subprocesses in which any download fails at once."""
    env = dict(os.environ)
    env.update(
        PYTHONPATH=ROOT + os.pathsep + env.get('PYTHONPATH', ''),
        http_proxy='http://127.0.0.1:9',
        https_proxy='http://127.0.0.1:9',
        HTTP_PROXY='http://127.0.0.1:9',
        HTTPS_PROXY='http://127.0.0.1:9',
        no_proxy='',
        NO_PROXY='')
    env.update(extra)
    return env

"""Where weights come from: OpenAI's CLIP models (``pretrained=True``,
cached in ``~/.cache/clip``) and the released Kinetics-400 ActionCLIP
checkpoints (``init_actionclip('ViT-B/32-8')``, cached in torch hub's
checkpoint cache as ``mim test --checkpoint URL`` caches them)."""
import hashlib
import os
import os.path as osp
import urllib.error
import urllib.request
from typing import Dict, Optional

from models.backbones.downloads import (CheckpointDownloadError,
                                        download_file, download_to_hub_cache)

_OPENAI = 'https://openaipublic.azureedge.net/clip/models'

#: OpenAI CLIP weights: the sha256 of each file is part of its address.
OPENAI_CLIP_URLS: Dict[str, str] = {
    'ViT-B/32': f'{_OPENAI}/40d365715913c9da98579312b702a82c18be219cc2a73407c'
    '4526f58eba950af/ViT-B-32.pt',
    'ViT-B/16': f'{_OPENAI}/5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e'
    '4ecb61988df416f/ViT-B-16.pt',
    'ViT-L/14': f'{_OPENAI}/b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2'
    'e0eca1737a03836/ViT-L-14.pt',
    'ViT-L/14@336px': f'{_OPENAI}/3035c92b350959924f9f00213499208652fc7ea0506'
    '43e8b385c2dac08641f02/ViT-L-14-336px.pt',
}

_MMACTION = ('https://download.openmmlab.com/mmaction/v1.0/projects/'
             'actionclip')


def _release(patch: int, segs: int) -> dict:
    name = f'actionclip_vit-base-p{patch}-res224-clip-pre_1x1x{segs}_k400-rgb'
    return dict(url=f'{_MMACTION}/{name}/vit-b-{patch}-{segs}f.pth',
                clip_arch=f'ViT-B/{patch}', num_segs=segs,
                config=f'configs/{name}.py')


#: Released Kinetics-400 ActionCLIP checkpoints (ported by MMAction2), with
#: the architecture each one needs.
ACTIONCLIP_CHECKPOINTS: Dict[str, dict] = {
    f'ViT-B/{patch}-{segs}': _release(patch, segs)
    for patch, segs in ((32, 8), (16, 8), (16, 16), (16, 32))
}

# Offline, a refused connection answers at once; the timeout only bounds a
# network that swallows packets, so that nothing hangs for minutes.
_CONNECT_TIMEOUT_S = 20


class WeightsUnavailableError(CheckpointDownloadError):
    """A weights file is neither cached nor downloadable, or fails its
    checksum."""


def available_checkpoints() -> list:
    """The released checkpoint names ``init_actionclip`` accepts."""
    return list(ACTIONCLIP_CHECKPOINTS)


def sha256_of(path: str) -> str:
    """Hex sha256 of a file."""
    with open(path, 'rb') as f:
        return hashlib.file_digest(f, 'sha256').hexdigest()


def clip_cache_dir() -> str:
    """The clip package's download folder (``~/.cache/clip``)."""
    return osp.expanduser(osp.join('~', '.cache', 'clip'))


def fetch_openai_clip(name: str) -> str:
    """Path of OpenAI's CLIP weights ``name`` (a key of
    :data:`OPENAI_CLIP_URLS`) in ``~/.cache/clip``, downloaded unless a
    file with the right sha256 is there."""
    if name not in OPENAI_CLIP_URLS:
        raise ValueError(
            f'No OpenAI weights are known for clip_arch {name!r} (known: '
            f'{list(OPENAI_CLIP_URLS)}); pass pretrained=PATH to a CLIP '
            'weights file or pretrained=False')
    url = OPENAI_CLIP_URLS[name]
    expected = url.split('/')[-2]
    path = osp.join(clip_cache_dir(), osp.basename(url))
    if osp.isfile(path) and sha256_of(path) == expected:
        return path
    try:
        download_file(url, path, _CONNECT_TIMEOUT_S)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise WeightsUnavailableError(
            f'Could not download the OpenAI CLIP weights {name!r} from {url} '
            f'({e}). To use it offline, place the file at {path}; or pass '
            'pretrained=PATH to a local copy, or pretrained=False when the '
            'weights come from a checkpoint (load_from / --checkpoint).'
        ) from e
    if sha256_of(path) != expected:
        os.remove(path)
        raise WeightsUnavailableError(
            f'Downloaded {url} but its sha256 does not match {expected}; '
            'the file was removed, please retry')
    return path


def fetch_hub_checkpoint(url: str, sha256: Optional[str] = None) -> str:
    """Path of a checkpoint in torch hub's cache, downloaded if missing,
    checked against ``sha256`` (or a prefix of it) when given."""
    path = download_to_hub_cache(url, None, progress=True)
    if sha256 and not sha256_of(path).startswith(sha256):
        raise WeightsUnavailableError(
            f'{path} does not have the expected sha256 {sha256}...; '
            'delete it and download it again')
    return path

"""Downloads of weights files, and torch hub's checkpoint cache.

Not ``torch.hub.download_url_to_file``: it has no timeout but the
process-wide ``socket.setdefaulttimeout``, so a network that drops packets
would hang the run; :func:`download_file` times out per request.
"""
import os
import os.path as osp
import urllib.error
import urllib.parse
import urllib.request
from typing import Optional

import torch

#: Seconds a checkpoint download may wait for the server before failing.
DOWNLOAD_TIMEOUT_S = 60


class CheckpointDownloadError(RuntimeError):
    """A checkpoint URL could not be downloaded into torch hub's cache."""


def hub_cache_path(url: str, model_dir: Optional[str] = None) -> str:
    """``<model_dir>/<basename of the URL path>``, where mmengine and torch
    hub cache a checkpoint URL (``model_dir`` defaults to
    ``$TORCH_HOME/hub/checkpoints``)."""
    if model_dir is None:
        model_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    filename = osp.basename(urllib.parse.urlparse(url).path)
    if not filename:
        raise ValueError(f'cannot derive a file name from the URL {url}')
    return osp.join(model_dir, filename)


def download_file(url: str,
                  dst: str,
                  timeout: float,
                  progress: bool = True) -> None:
    """Download ``url`` to ``dst`` whole or not at all, each network step
    giving up after ``timeout`` seconds: urllib's URLError where the server
    cannot be reached, answers with an error or (``ContentTooShortError``)
    sends less than it announced; OSError for the rest, timeouts included.
    """
    from tqdm import tqdm

    from models.utils.safe_io import atomic_write
    os.makedirs(osp.dirname(dst) or '.', exist_ok=True)
    with urllib.request.urlopen(url, timeout=timeout) as src, \
            atomic_write(dst) as out:
        expected = int(src.headers.get('Content-Length') or 0) or None
        with tqdm(total=expected, unit='B', unit_scale=True,
                  desc=osp.basename(dst), disable=not progress) as bar:
            for block in iter(lambda: src.read(1 << 20), b''):
                out.write(block)
                bar.update(len(block))
        # http.client's read(n) ends quietly where the server closed the
        # connection; a cut download must not become the file.
        if expected is not None and out.tell() != expected:
            raise urllib.error.ContentTooShortError(
                f'the server closed the connection after {out.tell()} of '
                f'{expected} bytes', None)


def download_to_hub_cache(url: str, model_dir: Optional[str],
                          progress: bool) -> str:
    """The cached file of ``url`` (:func:`hub_cache_path`), downloaded if
    needed, else a :class:`CheckpointDownloadError` saying where to place
    it by hand."""
    cached_file = hub_cache_path(url, model_dir)
    if osp.isfile(cached_file):
        return cached_file  # no network needed
    try:
        download_file(url, cached_file, DOWNLOAD_TIMEOUT_S, progress)
    except Exception as error:
        raise CheckpointDownloadError(
            f'Failed to download checkpoint {url} ({type(error).__name__}: '
            f'{error}). Without network access, download it elsewhere and '
            f'place it at {cached_file} (torch hub cache; set $TORCH_HOME '
            'to move it); it will then be used without downloading.'
        ) from error
    return cached_file

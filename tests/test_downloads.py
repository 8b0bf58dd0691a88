"""Tests for models/backbones/downloads.py (the download helper and torch
hub's checkpoint cache); loading what they fetch: test_checkpoint_safety.py.
"""
import http.server
import os
import socket
import threading
import time
import urllib.error

import pytest

from models.backbones import downloads
from models.backbones.pretrained import ACTIONCLIP_CHECKPOINTS

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, more than one read block


@pytest.fixture
def no_proxy(monkeypatch):
    """Connections to 127.0.0.1 go straight to the test's server."""
    for name in ('http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('no_proxy', '*')


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at /file.pth; /cut.pth announces it whole and stops
    half-way, as a dropped connection does."""

    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Length', str(len(PAYLOAD)))
        self.end_headers()
        if self.path == '/cut.pth':
            self.wfile.write(PAYLOAD[:len(PAYLOAD) // 2])
        else:
            self.wfile.write(PAYLOAD)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(no_proxy):
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}'
    httpd.shutdown()
    httpd.server_close()


def test_hub_cache_path(monkeypatch, tmp_path):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    url = ACTIONCLIP_CHECKPOINTS['ViT-B/32-8']['url']
    assert downloads.hub_cache_path(url) == str(tmp_path / 'hub' /
                                                'checkpoints' /
                                                'vit-b-32-8f.pth')
    assert downloads.hub_cache_path(url + '?x=1', str(tmp_path)) == str(
        tmp_path / 'vit-b-32-8f.pth')
    with pytest.raises(ValueError, match='file name'):
        downloads.hub_cache_path('https://example.org/')


def test_download_file(server, tmp_path):
    dst = tmp_path / 'new' / 'file.pth'  # the folder is created
    downloads.download_file(f'{server}/file.pth', str(dst), 5,
                            progress=False)
    assert dst.read_bytes() == PAYLOAD
    assert os.listdir(dst.parent) == ['file.pth']  # no partial file left


def test_failed_download_leaves_no_file(server, tmp_path):
    dst = tmp_path / 'cut.pth'
    with pytest.raises(urllib.error.ContentTooShortError, match='closed'):
        downloads.download_file(f'{server}/cut.pth', str(dst), 5,
                                progress=False)
    assert os.listdir(tmp_path) == []
    # Through the cache: one error that says where to put the file.
    with pytest.raises(downloads.CheckpointDownloadError) as info:
        downloads.download_to_hub_cache(f'{server}/cut.pth', str(tmp_path),
                                        progress=False)
    assert str(dst) in str(info.value) and os.listdir(tmp_path) == []


def test_cached_file_is_used_without_network(tmp_path, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError('downloaded although cached')

    monkeypatch.setattr(downloads, 'download_file', no_download)
    cached = tmp_path / 'file.pth'
    cached.write_bytes(b'weights')
    assert downloads.download_to_hub_cache(
        'https://example.invalid/a/file.pth', str(tmp_path),
        progress=False) == str(cached)


def test_download_from_a_silent_server_times_out(tmp_path, monkeypatch,
                                                 no_proxy):
    """A server that accepts the connection and never answers (a firewall
    that drops packets looks the same) fails after the timeout instead of
    hanging the run."""
    server = socket.socket()
    server.bind(('127.0.0.1', 0))
    server.listen(1)  # connections complete in the backlog, never served
    port = server.getsockname()[1]
    monkeypatch.setattr(downloads, 'DOWNLOAD_TIMEOUT_S', 0.5)
    url = f'http://127.0.0.1:{port}/silent.pth'
    started = time.monotonic()
    try:
        with pytest.raises(downloads.CheckpointDownloadError) as info:
            downloads.download_to_hub_cache(url, str(tmp_path), progress=False)
    finally:
        server.close()
    assert time.monotonic() - started < 30
    assert str(tmp_path / 'silent.pth') in str(info.value)
    assert socket.getdefaulttimeout() is None  # restored

"""The NVDEC decode service on CPU: fake decoders (decord on the CPU, slow,
crashing, wrong-sized) stand in for PyNvVideoCodec's, so everything but the
real GPU calls runs here. The service imports this file to find them: keep
its top-level imports light (no torch, no ``models``)."""
import importlib.util
import os
import os.path as osp
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)
FAKES = 'test_nvdec_service'


class CpuDecoder:
    """Decodes with decord on the CPU, as the CPU path does; ``delay``
    seconds per clip keep a slot busy."""

    def __init__(self, gpu_id=0, delay=0.0):
        self.delay = delay

    def decode(self, path, indices):
        import decord
        time.sleep(self.delay)
        return decord.VideoReader(path, num_threads=1).get_batch(
            indices).asnumpy()


class CrashingDecoder:
    """Kills the service as a driver fault would."""

    def __init__(self, gpu_id=0):
        pass

    def decode(self, path, indices):
        os.kill(os.getpid(), signal.SIGSEGV)


class ShortDecoder(CpuDecoder):
    """Returns one frame fewer than asked for."""

    def decode(self, path, indices):
        return super().decode(path, indices)[1:]


class FailingDecoder(CpuDecoder):
    """Cannot read any video (a codec NVDEC lacks)."""

    def decode(self, path, indices):
        raise RuntimeError('codec not supported')


def _service_module():
    from models.datasets import nvdec_service
    return nvdec_service


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    from conftest import make_videos
    return make_videos(str(tmp_path_factory.mktemp('nvdec')), 4,
                       num_frames=20)


@pytest.fixture
def logged(monkeypatch):
    lines = []
    monkeypatch.setattr(_service_module(), '_log',
                        lambda message, warning=True: lines.append(message))
    return lines


def start(decoder, logged=None, **options):
    service = _service_module().NvdecService(
        decoder=f'{FAKES}:{decoder}', start_timeout=30, timeout=20,
        **options)
    service.start()
    return service


def cpu_frames(path, indices):
    import decord
    return decord.VideoReader(path, num_threads=1).get_batch(
        indices).asnumpy()


def test_service_gives_the_cpu_frames(videos, logged):
    service = start('CpuDecoder', slots=2)
    try:
        assert service.available, service.unavailable
        for path in videos:
            indices = [0, 5, 5, 19, 3]  # repeats and any order
            frames = service.decode(path, indices)
            np.testing.assert_array_equal(frames, cpu_frames(path, indices))
        assert service.stats == {'nvdec': len(videos)}
    finally:
        service.close()
    assert not osp.exists(service.folder)
    assert service._process.poll() is not None


def test_busy_service_leaves_the_clip_to_the_caller(videos, logged):
    service = start('CpuDecoder', slots=1, decoder_options=dict(delay=2.0))
    try:
        served = {}
        first = threading.Thread(
            target=lambda: served.update(a=service.decode(videos[0], [1])))
        first.start()
        time.sleep(0.7)  # the first request holds the only slot
        assert service.decode(videos[1], [1]) is None
        first.join(timeout=20)
        np.testing.assert_array_equal(served['a'], cpu_frames(videos[0],
                                                              [1]))
        assert service.stats == {'nvdec': 1, 'busy': 1}
        assert service.available  # busy is not down
    finally:
        service.close()


@pytest.mark.parametrize('decoder', ['ShortDecoder', 'FailingDecoder'])
def test_wrong_or_failed_decodes_go_to_the_cpu(videos, logged, decoder):
    service = start(decoder, slots=1)
    try:
        assert service.decode(videos[0], [0, 1, 2]) is None
        assert service.decode(videos[1], [0, 1, 2]) is None
        assert service.stats == {'error': 2}
        assert service.available  # other videos may still decode
        assert len([m for m in logged if 'could not decode' in m]) == 1
    finally:
        service.close()


def _pipeline(backend, **nvdec):
    from mmaction.registry import TRANSFORMS
    from mmengine.dataset import Compose
    decode = dict(type='VideoDecode')
    if backend == 'nvdec':
        decode.update(backend='nvdec', nvdec=dict(
            decoder=f'{FAKES}:{nvdec.pop("decoder")}', start_timeout=30,
            timeout=20, **nvdec))
    return Compose([
        TRANSFORMS.build(cfg) for cfg in (
            dict(type='VideoInit'),
            dict(type='SampleFrames', clip_len=1, frame_interval=1,
                 num_clips=4, test_mode=True), decode)
    ])


def _decode_all(pipeline, videos):
    return [pipeline(dict(filename=v, start_index=0, modality='RGB'))
            for v in videos]


def test_crashed_service_warns_once_and_the_cpu_takes_over(videos, logged):
    pipeline = _pipeline('nvdec', decoder='CrashingDecoder', slots=2)
    service = pipeline.transforms[-1].service
    assert service.available
    results = _decode_all(pipeline, videos)
    expected = _decode_all(_pipeline('cpu'), videos)
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(np.stack(got['imgs']),
                                      np.stack(want['imgs']))
        assert got['decoded_by'] == 'cpu'
    assert service._process.wait(timeout=10) == -signal.SIGSEGV
    assert service.stats == {'down': len(videos)}
    assert len([m for m in logged if 'stopped' in m]) == 1, logged


def test_missing_pynvvideocodec_means_cpu_with_one_message(videos, logged):
    if importlib.util.find_spec('PyNvVideoCodec'):
        pytest.skip('PyNvVideoCodec is installed here')
    service = _service_module().NvdecService(start_timeout=30)
    assert not service.start()
    assert 'PyNvVideoCodec' in service.unavailable
    assert len(logged) == 1 and 'decoded on the CPU' in logged[0]
    assert service._process.wait(timeout=10) == 0
    assert service.decode(videos[0], [0]) is None


def test_unknown_backend_is_refused():
    from models.datasets.transforms import VideoDecode
    with pytest.raises(ValueError, match='backend'):
        VideoDecode(backend='gpu')
    with pytest.raises(ValueError, match='nvdec options'):
        VideoDecode(nvdec=dict(slots=2))


class _Clips:
    """A map-style dataset of the pipeline's outputs."""

    def __init__(self, pipeline, videos):
        self.pipeline, self.videos = pipeline, videos

    def __len__(self):
        return len(self.videos)

    def __getitem__(self, index):
        out = self.pipeline(
            dict(filename=self.videos[index], start_index=0, modality='RGB'))
        return np.stack(out['imgs']), out['decoded_by'], os.getpid()


def test_transform_in_dataloader_workers_equals_the_cpu_backend(
        videos, logged):
    from torch.utils.data import DataLoader
    pipeline = _pipeline('nvdec', decoder='CpuDecoder', slots=2)
    loader = DataLoader(_Clips(pipeline, videos * 2), batch_size=None,
                        num_workers=2, multiprocessing_context='fork',
                        timeout=60)
    got = list(loader)
    expected = [np.stack(r['imgs'])
                for r in _decode_all(_pipeline('cpu'), videos * 2)]
    for (frames, decoded_by, pid), want in zip(got, expected):
        np.testing.assert_array_equal(frames.numpy(), want)
        assert pid != os.getpid()
    # Two workers, two slots: never busy, all through the service.
    assert [d for _, d, _ in got] == ['nvdec'] * len(got)


PARENT = '''
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location('svc', sys.argv[1])
svc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(svc)
service = svc.NvdecService(decoder=sys.argv[2], start_timeout=30)
assert service.start(), service.unavailable
print(service.pid, service.folder, flush=True)
os._exit(0)  # no atexit: as a killed process ends
'''


def test_service_exits_when_its_parent_does():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, ROOT]))
    proc = subprocess.run(
        [sys.executable, '-c', PARENT,
         osp.join(ROOT, 'models', 'datasets', 'nvdec_service.py'),
         f'{FAKES}:CpuDecoder'],
        env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    pid, folder = proc.stdout.split()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(int(pid), signal.SIGKILL)
        pytest.fail('the service outlived its parent')
    assert not osp.exists(folder)


def test_check_tool_reports_each_part(videos, tmp_path):
    out = tmp_path / 'check.json'
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, ROOT]))
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'nvdec_check.py'),
         '--videos', osp.dirname(videos[0]), '--seconds', '0.5',
         '--workers', '2', '--slots', '1', '--compare', '2',
         '--decoder', f'{FAKES}:CpuDecoder', '--no-progress', '--out',
         str(out)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    import json
    report = json.loads(out.read_text())
    for part in ('cpu', 'nvdec', 'mixed'):
        assert report[part]['clips'] > 0, report
    mixed = report['mixed']
    assert 0 < mixed['nvdec_clips'] <= mixed['clips']
    assert [row['max_abs_diff'] for row in report['compare']] == [0, 0]

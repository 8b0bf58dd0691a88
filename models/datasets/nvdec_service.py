"""Video decoding on the GPU's hardware decoders (NVDEC), in a process of
its own, with the CPU decoder as the fallback.

One service process per main process (per DDP rank) owns ``slots``
decoder threads, each with its own decoder (``PyNvDecoder``: a
PyNvVideoCodec ``SimpleDecoder`` reconfigured per clip). DataLoader
workers (or any thread) send it ``(path, frame indices)`` over a unix
socket and get the uint8 RGB frames ``(T, H, W, 3)`` back in host memory.

Why a process of its own, started with ``subprocess`` from this file:

- NVDEC time-slices between CUDA contexts of different processes (7
  processes with a decoder each decoded 10 clips/s in total on an H200,
  one process with 7 threads 65), so the decoders must share ONE process.
- A crash in the driver (or PyNvVideoCodec beside another FFmpeg in one
  process: decord 0.6 first, then PyNvVideoCodec, segfaulted) ends that
  process only: clients see the connection fail, warn once and decode on
  the CPU for the rest of the run.
- DataLoader workers are daemonic: ``multiprocessing`` refuses them
  children, and its ``spawn`` would import the ``models`` package (torch,
  MMAction2) and the user's main script in the service. A plain
  ``python nvdec_service.py`` imports only the standard library, numpy
  and the decoder.

When no slot is free the service answers "busy" at once and the client
decodes on the CPU itself: NVDEC adds to the workers' throughput instead
of making them wait. Frames that are not ``(len(indices), H, W, 3)`` uint8
are refused and that video is decoded on the CPU. This module imports
nothing of the plugin, so tools can load it by path
(``tools/light_imports.py``).
"""
import atexit
import importlib
import json
import os
import os.path as osp
import queue
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from multiprocessing.connection import Client, Listener
from typing import Dict, Optional, Sequence

import numpy as np

#: The decoder the service uses unless told otherwise.
DEFAULT_DECODER = 'models.datasets.nvdec_service:PyNvDecoder'

_THIS_MODULE = 'models.datasets.nvdec_service'


class DecoderUnavailable(RuntimeError):
    """The GPU decoder cannot run here (no PyNvVideoCodec, no GPU)."""


def _log(message: str, warning: bool = True) -> None:
    """One line in the run's log (MMEngine's current logger where MMEngine
    is imported, else stderr)."""
    if 'mmengine' in sys.modules:
        import logging

        from mmengine.logging import print_log
        print_log(message, logger='current',
                  level=logging.WARNING if warning else logging.INFO)
    else:
        print(message, file=sys.stderr, flush=True)


class PyNvDecoder:
    """One NVDEC decoder (PyNvVideoCodec 2.x ``SimpleDecoder``), created for
    the first clip and reconfigured for the next ones.

    Args:
        gpu_id (int): The GPU.
        max_width (int): Widest frame the decoder is sized for; a wider
            video gets a decoder of its own. Passing it also keeps
            PyNvVideoCodec from printing "Max width is 0" lines.
        max_height (int): Likewise for the height.
    """

    def __init__(self, gpu_id: int = 0, max_width: int = 1920,
                 max_height: int = 1088):
        import PyNvVideoCodec as nvc
        self._nvc = nvc
        self.gpu_id = gpu_id
        self.max_width = max_width
        self.max_height = max_height
        self._decoder = None

    @staticmethod
    def probe(gpu_id: int) -> str:
        """Whether the decoder can be used; raises
        :class:`DecoderUnavailable` with the reason if not.

        Returns:
            str: What will decode, for the log.
        """
        try:
            import PyNvVideoCodec as nvc
        except ImportError as error:
            raise DecoderUnavailable(
                f'PyNvVideoCodec cannot be imported ({error}); install it '
                'with `pip install PyNvVideoCodec` (needs an NVIDIA driver '
                'with libnvcuvid)') from None
        return (f'PyNvVideoCodec {getattr(nvc, "__version__", "?")} on '
                f'GPU {gpu_id}')

    def _open(self, path: str) -> None:
        nvc = self._nvc
        if self._decoder is not None:
            try:
                self._decoder.reconfigure_decoder(path)
                return
            except Exception:  # e.g. larger than max_width: a new one
                self._decoder = None
        self._decoder = nvc.SimpleDecoder(
            path,
            gpu_id=self.gpu_id,
            use_device_memory=False,
            max_width=self.max_width,
            max_height=self.max_height,
            output_color_type=nvc.OutputColorType.RGB)

    def decode(self, path: str, indices: Sequence[int]) -> np.ndarray:
        """The frames at ``indices``.

        Args:
            path (str): The video.
            indices (list[int]): Frame indices.

        Returns:
            np.ndarray: uint8 RGB frames ``(T, H, W, 3)``.
        """
        try:
            self._open(path)
            count = len(self._decoder)
            if max(indices) >= count:
                raise ValueError(f'NVDEC counts {count} frames in {path!r}, '
                                 f'frame {max(indices)} was asked for')
            frames = self._decoder.get_batch_frames_by_index(list(indices))
            # The buffers belong to the decoder: copy before the next call.
            array = np.stack([np.from_dlpack(f) for f in frames])
            meta = self._decoder.get_stream_metadata()
            size = (int(meta.height), int(meta.width))
        except Exception:
            self._decoder = None  # a failed decoder is not reused
            raise
        if array.shape[1:3] != size:
            raise ValueError(f'NVDEC frames of {path!r} are '
                             f'{array.shape[1:3]}, the stream is {size}')
        return array


def load_decoder_class(spec: str) -> type:
    """The class an import path ``'module:Class'`` names.

    Args:
        spec (str): e.g. ``'models.datasets.nvdec_service:PyNvDecoder'``.

    Returns:
        type: The class.
    """
    module_name, _, name = spec.partition(':')
    if not name:
        raise ValueError(f'decoder {spec!r}: expected "module:Class"')
    if module_name == _THIS_MODULE and _THIS_MODULE not in sys.modules:
        # The service runs this file as a script: the class is here, and
        # importing the ``models`` package would load torch.
        return globals()[name]
    return getattr(importlib.import_module(module_name), name)


# ---------------------------------------------------------------------------
# The service process
# ---------------------------------------------------------------------------


def _watch_parent(parent_pid: int, folder: str) -> None:
    """End the service when the process that started it is gone (killed
    ones run no atexit handler)."""
    while True:
        if os.getppid() != parent_pid:
            shutil.rmtree(folder, ignore_errors=True)
            os._exit(0)
        time.sleep(0.5)


def _decoder_thread(cls: type, gpu_id: int, options: Dict,
                    jobs: queue.Queue) -> None:
    decoder, failure = None, None
    while True:
        path, indices, reply = jobs.get()
        try:
            if decoder is None and failure is None:
                try:
                    decoder = cls(gpu_id=gpu_id, **options)
                except Exception as error:
                    failure = f'{type(error).__name__}: {error}'
            if failure is not None:
                raise RuntimeError(f'the decoder could not start: {failure}')
            frames = np.ascontiguousarray(decoder.decode(path, indices))
            reply.put(('frames', frames))
        except Exception as error:
            reply.put(('error', f'{type(error).__name__}: '
                       f'{str(error).strip()[:300]}'))


def _serve_connection(conn, free: threading.Semaphore,
                      jobs: queue.Queue) -> None:
    with conn:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            if message[0] != 'decode':
                conn.send(('error', f'unknown request {message[0]!r}'))
                continue
            if not free.acquire(blocking=False):
                conn.send(('busy', ))
                continue
            try:
                reply = queue.Queue(maxsize=1)
                jobs.put((message[1], message[2], reply))
                kind, value = reply.get()
            finally:
                free.release()
            try:
                if kind == 'frames':
                    conn.send(('frames', value.shape, str(value.dtype)))
                    conn.send_bytes(memoryview(value).cast('B'))
                else:
                    conn.send(('error', value))
            except OSError:  # the client went away
                return


def serve(config: Dict) -> int:
    """The service's main loop (run as ``python nvdec_service.py``, the
    configuration as JSON on stdin).

    Args:
        config (dict): ``address``, ``authkey`` (hex), ``slots``,
            ``gpu_id``, ``decoder``, ``decoder_options``, ``parent_pid``,
            ``folder``.

    Returns:
        int: The exit status.
    """
    threading.Thread(
        target=_watch_parent, args=(config['parent_pid'], config['folder']),
        daemon=True).start()

    def status(**fields) -> None:
        # One line on the pipe to the parent, then stdout goes to the log:
        # nobody reads the pipe after it, so a chatty library would fill
        # it and block.
        sys.stdout.write(json.dumps(fields) + '\n')
        sys.stdout.flush()
        os.dup2(2, 1)

    try:
        cls = load_decoder_class(config['decoder'])
        probe = getattr(cls, 'probe', None)
        detail = probe(config['gpu_id']) if probe else config['decoder']
    except Exception as error:
        status(ok=False, reason=str(error) or type(error).__name__)
        return 0
    listener = Listener(config['address'], family='AF_UNIX',
                        authkey=bytes.fromhex(config['authkey']))
    jobs = queue.Queue()
    for _ in range(config['slots']):
        threading.Thread(
            target=_decoder_thread,
            args=(cls, config['gpu_id'], config['decoder_options'], jobs),
            daemon=True).start()
    free = threading.Semaphore(config['slots'])
    status(ok=True, detail=detail)
    while True:
        try:
            conn = listener.accept()
        except Exception:  # a client that failed the authentication
            continue
        threading.Thread(
            target=_serve_connection, args=(conn, free, jobs),
            daemon=True).start()


# ---------------------------------------------------------------------------
# The client side
# ---------------------------------------------------------------------------


class NvdecService:
    """A handle on one decode service: starts it (in the owning process)
    and decodes through it (in that process and in any process forked from
    it, each with connections of its own).

    Args:
        slots (int): Decoder threads, i.e. clips decoded at once (an H200
            has 7 NVDEC engines).
        gpu_id (int, optional): The GPU; defaults to ``LOCAL_RANK`` (0
            without DDP).
        decoder (str): Import path of the decoder class.
        decoder_options (dict, optional): Keyword arguments of the decoder
            class (e.g. ``max_width``).
        start_timeout (float): Seconds to wait for the service to start.
        timeout (float): Seconds to wait for one clip; a service that
            takes longer is taken for hung and no longer used.
    """

    def __init__(self,
                 slots: int = 7,
                 gpu_id: Optional[int] = None,
                 decoder: str = DEFAULT_DECODER,
                 decoder_options: Optional[Dict] = None,
                 start_timeout: float = 120.0,
                 timeout: float = 60.0):
        if int(slots) < 1:
            raise ValueError(f'nvdec slots must be >= 1, got {slots}')
        self.slots = int(slots)
        self.gpu_id = (int(os.environ.get('LOCAL_RANK', 0))
                       if gpu_id is None else int(gpu_id))
        self.decoder = decoder
        self.decoder_options = dict(decoder_options or {})
        self.start_timeout = start_timeout
        self.timeout = timeout
        #: Why the service is not used (None while it is).
        self.unavailable = 'not started'
        #: Clips per path in this process: ``nvdec``, ``busy`` (decoded on
        #: the CPU because no slot was free), ``error``, ``down``.
        self.stats = Counter()
        self.folder = None
        self.address = None
        self.pid = None
        self._authkey = None
        self._process = None
        self._owner = None
        self._local = threading.local()
        self._lock = threading.Lock()

    def __getstate__(self) -> Dict:
        # Spawned DataLoader workers get a copy: it connects, never owns.
        state = dict(self.__dict__)
        state.update(_process=None, _local=None, _lock=None)
        return state

    def __setstate__(self, state: Dict) -> None:
        self.__dict__.update(state)
        self._local = threading.local()
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        """Whether clips are sent to the service."""
        return self.unavailable is None

    def start(self) -> bool:
        """Start the service and wait until it listens.

        Returns:
            bool: Whether it runs; if not, the reason is logged once and in
            :attr:`unavailable`.
        """
        if self._process is not None:
            return self.available
        self.folder = tempfile.mkdtemp(prefix='nvdec-')
        self.address = osp.join(self.folder, 'socket')
        self._authkey = os.urandom(16)
        self._owner = os.getpid()
        log_path = osp.join(self.folder, 'service.log')
        config = dict(address=self.address, authkey=self._authkey.hex(),
                      slots=self.slots, gpu_id=self.gpu_id,
                      decoder=self.decoder,
                      decoder_options=self.decoder_options,
                      parent_pid=self._owner, folder=self.folder)
        env = dict(os.environ)
        # The decoder's module is found where this process finds it.
        env['PYTHONPATH'] = os.pathsep.join(
            p for p in [*sys.path, env.get('PYTHONPATH', '')] if p)
        with open(log_path, 'wb') as log:
            self._process = subprocess.Popen(
                [sys.executable, osp.abspath(__file__)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                env=env, start_new_session=True)
        self.pid = self._process.pid
        self._process.stdin.write(json.dumps(config).encode())
        self._process.stdin.close()
        atexit.register(self.close)
        line = b''
        ready, _, _ = select.select([self._process.stdout], [], [],
                                    self.start_timeout)
        if ready:
            line = self._process.stdout.readline()
        try:
            reply = json.loads(line)
        except ValueError:
            reply = dict(ok=False, reason=self._failure(log_path, bool(
                ready)))
        if reply['ok']:
            self.unavailable = None
            _log(f'NVDEC decoding: {reply["detail"]}, {self.slots} slots '
                 '(the CPU decodes when all are busy)', warning=False)
        else:
            self.unavailable = reply['reason']
            _log(f'NVDEC decoding is off, videos are decoded on the CPU: '
                 f'{self.unavailable}')
            try:  # it exits by itself after saying why
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self.close()
        return self.available

    def _failure(self, log_path: str, answered: bool) -> str:
        if not answered:
            return (f'the service did not start within '
                    f'{self.start_timeout:g} s')
        code = self._process.wait(timeout=10)
        with open(log_path, errors='replace') as f:
            tail = f.read()[-500:].strip()
        return f'the service exited with status {code}: {tail}'

    def close(self) -> None:
        """Stop the service (only the process that started it does)."""
        if self._owner != os.getpid() or self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _connection(self):
        local = self._local
        if getattr(local, 'pid', None) != os.getpid():
            local.pid, local.conn = os.getpid(), None
        if local.conn is None:
            local.conn = Client(self.address, family='AF_UNIX',
                                authkey=self._authkey)
        return local.conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, 'conn', None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    def _went_down(self, reason: str) -> None:
        self._drop_connection()
        with self._lock:
            if self.unavailable is not None:
                return
            self.unavailable = reason
        # Once per run, not once per worker: the first to create the file
        # says it.
        try:
            os.close(
                os.open(
                    osp.join(self.folder, 'down'),
                    os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except OSError:
            return
        _log(f'NVDEC decoding stopped ({reason}); videos are decoded on '
             'the CPU for the rest of the run')

    def decode(self, path: str,
               indices: Sequence[int]) -> Optional[np.ndarray]:
        """The frames at ``indices`` decoded by the service, or None when
        the caller must decode them on the CPU (no free slot, a video the
        decoder cannot read, a reply of the wrong size, the service down).

        Args:
            path (str): The video, a file on disk.
            indices (list[int]): Frame indices.

        Returns:
            np.ndarray or None: uint8 RGB frames ``(len(indices), H, W,
            3)``.
        """
        if self.unavailable is not None:
            self.stats['down'] += 1
            return None
        indices = [int(i) for i in indices]
        try:
            conn = self._connection()
            conn.send(('decode', osp.abspath(path), indices))
            if not conn.poll(self.timeout):
                raise TimeoutError(f'no answer within {self.timeout:g} s '
                                   f'for {path!r}')
            reply = conn.recv()
            data = conn.recv_bytes() if reply[0] == 'frames' else None
        except (OSError, EOFError, TimeoutError) as error:
            self._went_down(f'{type(error).__name__}: {error}')
            self.stats['down'] += 1
            return None
        if reply[0] == 'busy':
            self.stats['busy'] += 1
            return None
        if reply[0] == 'error':
            self._error(path, reply[1])
            return None
        shape, dtype = tuple(reply[1]), reply[2]
        if (dtype != 'uint8' or len(shape) != 4 or shape[0] != len(indices)
                or shape[3] != 3 or min(shape) < 1
                or len(data) != int(np.prod(shape))):
            self._error(path, f'frames of shape {shape} ({dtype}) for '
                        f'{len(indices)} indices')
            return None
        self.stats['nvdec'] += 1
        return np.frombuffer(data, dtype=np.uint8).reshape(shape)

    def _error(self, path: str, reason: str) -> None:
        self.stats['error'] += 1
        if self.stats['error'] == 1:
            _log(f'NVDEC could not decode {path!r} ({reason}); it and any '
                 'other such video are decoded on the CPU')


_SERVICES: Dict[tuple, NvdecService] = {}


def get_service(**options) -> NvdecService:
    """The service for these options in this process tree, started on the
    first call (before DataLoader workers fork, when called while the
    dataset is built; forked workers share it).

    Args:
        **options: Those of :class:`NvdecService`.

    Returns:
        NvdecService: The handle; see ``available``.
    """
    service = NvdecService(**options)
    key = (service.slots, service.gpu_id, service.decoder,
           json.dumps(service.decoder_options, sort_keys=True),
           service.start_timeout, service.timeout)
    if key not in _SERVICES:
        _SERVICES[key] = service
        service.start()
    return _SERVICES[key]


if __name__ == '__main__':
    sys.exit(serve(json.loads(sys.stdin.read())))

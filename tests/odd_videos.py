"""Real-world oddities written with PyAV, each frame carrying its own
number: variable frame rate, a display rotation, an edit list (a stream
copy trimmed mid-GOP), an MPEG-TS whose time stamps restart, a file
damaged mid-stream.

Frame ``i`` is grey level ``4 * i`` (mod 256) with a white top-left corner
(which way the picture is turned) and noise in its top-right quarter (so
that damaged bytes hit coded picture data); :func:`frame_number` reads
``i mod 64`` back from the bottom-right quarter, which the noise and the
corner leave alone however the picture is turned.
"""
import fractions
from typing import Optional, Sequence

import numpy as np

WIDTH, HEIGHT = 128, 64


def frame_image(i: int, width: int = WIDTH,
                height: int = HEIGHT) -> np.ndarray:
    """Frame ``i`` of every test video here (RGB)."""
    rng = np.random.default_rng(i)
    image = np.full((height, width, 3), (4 * i) % 256, np.uint8)
    image[:height // 2, width // 2:] = rng.integers(
        0, 256, (height // 2, width - width // 2, 3))
    image[:height // 4, :width // 4] = 255
    return image


def frame_number(image: np.ndarray) -> int:
    """``i mod 64`` of a decoded frame ``i`` (upright)."""
    height, width = image.shape[:2]
    return int(round(image[height // 2:, width // 2:].mean() / 4)) % 64


def write(path: str, num_frames: int = 40, fps: int = 10,
          pts_ms: Optional[Sequence[int]] = None, fmt: Optional[str] = None,
          gop: int = 12, rotation: int = 0, mirror: bool = False,
          first: int = 0, options: Optional[dict] = None) -> str:
    """An H.264 video of frames ``first ...``; ``pts_ms`` sets each frame's
    time in milliseconds (variable frame rate); ``rotation`` a display
    rotation in degrees counter-clockwise, as a phone records it, and
    ``mirror`` a horizontal mirror after it."""
    import av
    with av.open(path, 'w', format=fmt) as container:
        stream = container.add_stream('libx264', rate=fps)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, 'yuv420p'
        stream.gop_size = gop
        stream.options = dict(options or {})
        if pts_ms is not None:
            stream.time_base = fractions.Fraction(1, 1000)
            stream.codec_context.time_base = fractions.Fraction(1, 1000)
        if rotation or mirror:
            stream.set_display_rotation(rotation, hflip=mirror)
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(frame_image(first + i),
                                               format='rgb24')
            if pts_ms is not None:
                frame.pts = pts_ms[i]
                frame.time_base = fractions.Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def trim(source: str, path: str, start_s: float) -> str:
    """``source`` cut at ``start_s`` by stream copy: the packets from the
    key frame before it are kept, shifted so that ``start_s`` is time 0,
    and MP4 hides the ones before it with an edit list."""
    import av
    with av.open(source) as src, av.open(path, 'w') as dst:
        stream = src.streams.video[0]
        out = dst.add_stream_from_template(stream)
        offset = int(round(start_s / stream.time_base))
        for packet in src.demux(stream):
            if packet.dts is None:
                continue
            packet.pts -= offset
            packet.dts -= offset
            packet.stream = out
            dst.mux(packet)
    return path


def spliced_ts(path: str, num_frames: int = 30) -> str:
    """Two MPEG-TS recordings of ``num_frames`` frames joined byte for
    byte: the second one's time stamps start again at the first one's
    start."""
    parts = [
        write(f'{path}.part{k}.ts', num_frames, fmt='mpegts', gop=10,
              first=k * num_frames) for k in range(2)
    ]
    with open(path, 'wb') as out:
        for part in parts:
            with open(part, 'rb') as f:
                out.write(f.read())
    return path


def damage(source: str, path: str, at: float = 0.55,
           size: int = 3000) -> str:
    """``source`` with ``size`` bytes zeroed from ``at`` (a fraction of the
    file) on."""
    with open(source, 'rb') as f:
        data = bytearray(f.read())
    start = int(len(data) * at)
    data[start:start + size] = bytes(size)
    with open(path, 'wb') as f:
        f.write(bytes(data))
    return path

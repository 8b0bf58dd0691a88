"""The ``--viz`` files of ``tools/zero_shot.py``: each video with its
top-k predictions in a band under every frame, as MP4 (OpenCV) or GIF
(Pillow), written atomically. Only the standard library at import.
"""
import math
import os
import os.path as osp
from typing import (Callable, Dict, Iterable, List, NamedTuple, Optional,
                    Sequence, Tuple)

from ..utils.paths import unique_names
from .frames import fit_size

#: ``(label, probability)`` per shown label, best first.
Predictions = List[Tuple[str, float]]

# Pillow holds every GIF frame in memory: about 70 MB at worst.
GIF_MAX_SIDE = 480
GIF_MAX_FPS = 15
GIF_MAX_FRAMES = 300


def viz_paths(viz: str, videos: Sequence[str]) -> Dict[str, str]:
    """``{video: output path}``: ``viz`` for a single video, else
    ``<viz stem>_<video stem><ext>`` (numbered where stems repeat)."""
    if len(videos) == 1:
        return {videos[0]: viz}
    stem, ext = osp.splitext(viz)
    return {video: name + ext
            for video, name in unique_names(videos, stem + '_').items()}


#: Narrower frames are scaled up (aspect kept) so that labels are legible.
VIZ_MIN_WIDTH = 320
#: The smallest automatic font scale (about 9 pixels high).
MIN_FONT_SCALE = 0.4
VIZ_FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX, without importing cv2 here


class VizLayout(NamedTuple):
    """Where :func:`draw_predictions` puts the video (``width`` x
    ``height``) and the text band (``band_height``) under it: ``lines`` are
    ``(text, x, baseline y, color)``; ``text_width`` the widest line's."""
    width: int
    height: int
    band_height: int
    font_scale: float
    thickness: int
    lines: List[Tuple[str, int, int, Tuple[int, int, int]]]
    text_width: int


def frame_size(width: int, height: int,
               target: Optional[Sequence[int]] = None) -> Tuple[int, int]:
    """The ``(width, height)`` frames are drawn at: ``target`` ``(W, H)``
    (-1 keeps the aspect ratio, as MMAction2's ``demo/demo.py``), else the
    video's size, scaled up to :data:`VIZ_MIN_WIDTH` wide."""
    if target:
        w, h = target
        if w == -1:
            w = width * h / height
        if h == -1:
            h = height * w / width
        return max(1, round(w)), max(1, round(h))
    scale = max(1.0, VIZ_MIN_WIDTH / width)
    return round(width * scale), round(height * scale)


def _wrap(text: str, fits: Callable[[str], bool]) -> List[str]:
    """``text`` in lines that fit: at spaces, else inside a long word."""
    lines, line = [], ''
    for word in text.split(' '):
        candidate = f'{line} {word}' if line else word
        if fits(candidate):
            line = candidate
            continue
        if line:
            lines.append(line)
        while not fits(word) and len(word) > 1:
            cut = next((c for c in range(len(word) - 1, 1, -1)
                        if fits(word[:c])), 1)
            lines.append(word[:cut])
            word = word[cut:]
        line = word
    lines.append(line)
    return lines


def viz_layout(width: int,
               height: int,
               predictions: Predictions,
               font_scale: Optional[float] = None) -> VizLayout:
    """The text band under a ``width`` x ``height`` frame: below the
    video so that it never hides the action; the font follows the width
    unless ``font_scale`` is given; long lines wrap."""
    import cv2
    scale = font_scale or max(MIN_FONT_SCALE, min(1.5, width / 800))
    thickness = max(1, round(scale * 1.5))
    pad = max(2, round(6 * scale))
    room = max(1, width - 2 * pad)

    def text_width(text: str) -> int:
        return cv2.getTextSize(text, VIZ_FONT, scale, thickness)[0][0]

    (_, text_h), base = cv2.getTextSize('Ag%', VIZ_FONT, scale, thickness)
    line_height = text_h + base + pad
    lines, y = [], height + pad + text_h
    for i, (label, prob) in enumerate(predictions):
        color = (80, 255, 255) if i == 0 else (255, 255, 255)
        for text in _wrap(f'{prob * 100:5.1f}% {label}',
                          lambda t: text_width(t) <= room):
            lines.append((text, pad, y, color))
            y += line_height
    band = len(lines) * line_height + pad
    # An even total height: H.264 encoders refuse odd frame sizes.
    band += (height + band) % 2
    widest = max((text_width(t) for t, *_ in lines), default=0)
    return VizLayout(width, height, band, scale, thickness, lines, widest)


def draw_predictions(frame,
                     predictions: Predictions,
                     layout: Optional[VizLayout] = None):
    """A new BGR frame: ``frame`` scaled to ``layout`` (default: made for
    its size) over a band with the labels and probabilities (OpenCV's
    fonts are ASCII: other characters show as ``?``). Not MMAction2's
    ``ActionVisualizer``, which reads a ``pred_labels`` field its data
    samples no longer have."""
    import cv2
    import numpy as np
    if layout is None:
        layout = viz_layout(*frame_size(frame.shape[1], frame.shape[0]),
                            predictions)
    if frame.shape[:2] != (layout.height, layout.width):
        smaller = layout.width < frame.shape[1]
        frame = cv2.resize(
            frame, (layout.width, layout.height),
            interpolation=cv2.INTER_AREA if smaller else cv2.INTER_LINEAR)
    band = np.zeros((layout.band_height, layout.width, 3), frame.dtype)
    out = np.concatenate([frame, band])
    for text, x, y, color in layout.lines:
        cv2.putText(out, text, (x, y), VIZ_FONT, layout.font_scale, color,
                    layout.thickness, cv2.LINE_AA)
    return out


#: Codecs tried for ``.mp4``: H.264 plays in browsers; OpenCV's pip wheels
#: lack it, so MPEG-4 Part 2 (``mp4v``) is the fallback.
MP4_CODECS = ('avc1', 'H264', 'mp4v')


def _gif_frames(drawn: Iterable, step: List[int]) -> list:
    """The drawn BGR frames as palette images, at most
    :data:`GIF_MAX_FRAMES`: at that many, every other one goes and ``step``
    (read by ``drawn``) doubles, so the GIF spans the video at a lower
    rate."""
    import cv2
    from PIL import Image
    frames = []
    for frame in drawn:
        frames.append(
            Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)).convert(
                'P', palette=Image.Palette.ADAPTIVE))
        if len(frames) == GIF_MAX_FRAMES:
            frames, step[0] = frames[::2], step[0] * 2
    return frames


def write_annotated_video(video: str,
                          out_path: str,
                          predictions: Predictions,
                          font_scale: Optional[float] = None,
                          target: Optional[Sequence[int]] = None,
                          verbose: bool = False,
                          info: Optional[dict] = None) -> int:
    """Write ``video`` with its predictions in a band under every frame.

    ``.mp4``: streamed with OpenCV at the source's rate (H.264 where it
    can, else MPEG-4 Part 2). ``.gif``: Pillow holds every frame, so they
    are bounded: :data:`GIF_MAX_SIDE` a side, :data:`GIF_MAX_FPS` a second,
    :data:`GIF_MAX_FRAMES` in all (a longer video gets a lower rate).
    Written atomically: a failure leaves a previous ``out_path`` as it was.

    Args:
        font_scale (float, optional): Default: follows the frame's width.
        target (list[int], optional): ``(W, H)``, see :func:`frame_size`.
        verbose (bool): Keep OpenCV's messages about codecs it lacks.
        info (dict, optional): Receives ``'codec'``: the codec written.

    Returns:
        int: The number of frames written.
    """
    import cv2

    from models.utils.safe_io import atomic_write
    from models.utils.video_writer import NoFramesError, write_opencv
    gif = out_path.lower().endswith('.gif')
    os.makedirs(osp.dirname(osp.abspath(out_path)), exist_ok=True)
    capture = cv2.VideoCapture(video)
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if fps and fps > 0 else 25.0
    # Every step[0]-th frame is drawn (the GIF's may grow while drawing).
    step = [max(1, math.ceil(fps / GIF_MAX_FPS - 1e-6)) if gif else 1]

    def drawn():
        index, layout = 0, None
        while capture.grab():  # skipped frames are never converted
            if index % step[0] == 0:
                ok, frame = capture.retrieve()
                if not ok:
                    return
                if layout is None:
                    size = frame_size(frame.shape[1], frame.shape[0],
                                      target)
                    layout = viz_layout(
                        *(fit_size(*size, GIF_MAX_SIDE) if gif else size),
                        predictions, font_scale)
                yield draw_predictions(frame, predictions, layout)
            index += 1

    try:
        if gif:
            frames, codec = _gif_frames(drawn(), step), 'GIF'
            if frames:
                with atomic_write(out_path, 'wb') as f:
                    frames[0].save(f, format='GIF', save_all=True,
                                   append_images=frames[1:],
                                   duration=round(1000 * step[0] / fps),
                                   loop=0)
            count = len(frames)
        else:
            count, codec = write_opencv(out_path, drawn(), fps, MP4_CODECS,
                                        not verbose)
    except NoFramesError:
        count = 0
    finally:
        capture.release()
    if not count:
        raise OSError(f'OpenCV read no frame of {video!r} to draw on')
    if info is not None:
        info['codec'] = codec
    return count

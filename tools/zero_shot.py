"""Zero-shot action recognition from the command line: score videos against
labels you type, with no training.

Examples (from the project root)::

    python tools/zero_shot.py my_video.mp4 \
        --labels "juggling balls,riding a unicycle,reading a book"
    python tools/zero_shot.py videos/ --label-file labels.txt --topk 3 \\
        --out results.csv --viz annotated.mp4
    python tools/zero_shot.py my_video.mp4 --labels "..." --clip ViT-B/32
    python tools/zero_shot.py my_video.mp4 --labels "..." \\
        --config CONFIG.py --checkpoint work_dirs/.../best.pth

Exit status: 0 when every video was scored; 1 when some videos could not be
read (the others are still scored, printed and written; the failures are
listed at the end); 2 when an argument or input is wrong or the model cannot
be loaded (nothing is scored).
"""
import argparse
import csv
import json
import math
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from light_imports import load_light  # noqa: E402


_cli = load_light('models.apis.cli')
CliError = _cli.CliError
DEFAULT_MODEL = _cli.DEFAULT_MODEL
add_model_arguments = _cli.add_model_arguments
check_output_path = _cli.check_output_path
decode_workers = _cli.decode_workers
load_model_from_args = _cli.load_model_from_args
report_failures = _cli.report_failures
report_skipped = _cli.report_skipped
run_cli = _cli.run_cli

OUT_FORMATS = ('.json', '.csv')
VIZ_FORMATS = ('.mp4', '.gif')
# A GIF is built in memory (Pillow's writer keeps every frame), so its
# frames are made small and few: at most GIF_MAX_FRAMES frames of at most
# GIF_MAX_SIDE pixels a side (about 70 MB at worst), whatever the video.
GIF_MAX_SIDE = 480
GIF_MAX_FPS = 15
GIF_MAX_FRAMES = 300

Predictions = List[Tuple[str, float]]


def prepare_outputs(args: argparse.Namespace,
                    videos: Sequence[str]) -> Dict[str, str]:
    """Refuse outputs that would overwrite an input and create the output
    folders, before the model is loaded.

    Args:
        args (argparse.Namespace): Parsed arguments (``--out``, ``--viz``
            and the input files: labels, config, checkpoint, weights).
        videos (list[str]): Every video to score.

    Returns:
        dict: ``{video: --viz file}`` for every video (empty without
        ``--viz``); named over all videos, so that a video that fails
        does not change the others' file names.
    """
    from models.utils.safe_io import OutputPathError
    from models.utils.safe_io import check_output_path as check_writable
    viz = viz_paths(args.viz, videos) if args.viz else {}
    inputs = [
        *videos, args.label_file, args.config, args.checkpoint, args.clip,
        args.model
    ]
    outputs = [('--out', args.out)] if args.out else []
    outputs += [('--viz', path) for path in viz.values()]
    for option, path in outputs:
        try:
            check_writable(path, inputs, option)
        except OutputPathError as error:
            raise CliError(str(error)) from None
    return viz


def read_labels(args: argparse.Namespace) -> List[str]:
    """The labels of ``--labels`` or ``--label-file``.

    Args:
        args (argparse.Namespace): Parsed arguments.

    Returns:
        list[str]: The labels.
    """
    from models.text.prompts import load_labels
    if args.labels is not None and args.label_file is not None:
        raise CliError('Give --labels or --label-file, not both')
    if args.label_file is not None:
        return load_labels(args.label_file)
    if args.labels is None or not args.labels.strip(' ,'):
        raise CliError(
            'No labels: pass --labels "label one,label two" or --label-file '
            'FILE (one label per line)')
    labels = [label.strip() for label in args.labels.split(',')]
    if '' in labels:
        raise CliError(f'--labels {args.labels!r} has an empty label '
                       '(two commas in a row?); labels with commas need '
                       '--label-file')
    return load_labels(labels)


def format_table(video: str, predictions: Predictions) -> str:
    """The top-k table of one video.

    Args:
        video (str): The video path.
        predictions (list[tuple[str, float]]): ``(label, probability)``.

    Returns:
        str: The lines to print.
    """
    lines = [video, '  rank  probability  label']
    lines += [
        f'  {rank:>4}  {prob:>11.4f}  {label}'
        for rank, (label, prob) in enumerate(predictions, 1)
    ]
    return '\n'.join(lines)


def write_results(path: str, results: Dict[str, Predictions],
                  failures: Dict[str, str], info: dict) -> None:
    """Write the predictions as JSON or CSV (by the file's extension).

    JSON holds ``info`` (model, labels, templates, topk), ``results`` (per
    video, its predictions) and ``failures``; CSV holds one row per
    (video, rank) with columns ``video, rank, label, probability``. The
    file is written whole or not at all (a temporary file renamed).

    Args:
        path (str): ``.json`` or ``.csv`` file.
        results (dict): ``{video: [(label, probability), ...]}``.
        failures (dict): ``{video: error message}``.
        info (dict): Run description for the JSON file.
    """
    from models.utils.safe_io import atomic_write
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    if path.lower().endswith('.json'):
        data = dict(info)
        data['results'] = [
            dict(video=video,
                 predictions=[
                     dict(label=label, probability=prob)
                     for label, prob in predictions
                 ]) for video, predictions in results.items()
        ]
        data['failures'] = [
            dict(video=video, error=error)
            for video, error in failures.items()
        ]
        with atomic_write(path, 'w', encoding='utf-8') as f:
            json.dump(data, f, indent=2, ensure_ascii=False)
            f.write('\n')
        return
    with atomic_write(path, 'w', encoding='utf-8', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['video', 'rank', 'label', 'probability'])
        for video, predictions in results.items():
            for rank, (label, prob) in enumerate(predictions, 1):
                writer.writerow([video, rank, label, f'{prob:.6f}'])


# ---------------------------------------------------------------------------
# --viz: the video with its predictions drawn on it
# ---------------------------------------------------------------------------


def viz_paths(viz: str, videos: Sequence[str]) -> Dict[str, str]:
    """One output file per video: ``viz`` itself for a single video, else
    ``<viz stem>_<video stem><ext>`` (numbered where stems repeat).

    Args:
        viz (str): The ``--viz`` path.
        videos (list[str]): The scored videos.

    Returns:
        dict: ``{video: output path}``.
    """
    if len(videos) == 1:
        return {videos[0]: viz}
    stem, ext = osp.splitext(viz)
    paths, used = {}, set()
    for video in videos:
        name = f'{stem}_{osp.splitext(osp.basename(video))[0]}'
        candidate, n = name + ext, 1
        while candidate in used:
            n += 1
            candidate = f'{name}_{n}{ext}'
        used.add(candidate)
        paths[video] = candidate
    return paths


def draw_predictions(frame, predictions: Predictions):
    """Draw the labels and probabilities in a shaded box, top left.

    MMAction2 1.2.0's ``ActionVisualizer`` draws predictions only from a
    ``pred_labels`` field its own data samples no longer have, renders
    every frame through matplotlib and saves videos through moviepy (not
    installed), so plain OpenCV drawing is used instead. OpenCV's fonts are
    ASCII: other characters show as ``?``.

    Args:
        frame (np.ndarray): ``(H, W, 3)`` BGR frame, drawn on in place.
        predictions (list[tuple[str, float]]): ``(label, probability)``.

    Returns:
        np.ndarray: The frame.
    """
    import cv2
    height, width = frame.shape[:2]
    scale = max(0.3, min(width, height) / 600)
    thickness = max(1, round(scale * 2))
    lines = [f'{prob * 100:5.1f}% {label}' for label, prob in predictions]
    sizes = [
        cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        for line in lines
    ]
    line_height = max(h + base for (_, h), base in sizes) + 2 * thickness
    pad = 2 * thickness
    box_w = min(width, max(w for (w, _), _ in sizes) + 2 * pad)
    box_h = min(height, line_height * len(lines) + pad)
    # Shade rather than blank the box, so the action stays visible below.
    region = frame[:box_h, :box_w]
    region[:] = (region * 0.4).astype(region.dtype)
    for i, line in enumerate(lines):
        y = pad + line_height * i + sizes[i][0][1]
        color = (80, 255, 255) if i == 0 else (255, 255, 255)
        cv2.putText(frame, line, (pad, y), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    color, thickness, cv2.LINE_AA)
    return frame


def gif_size(width: int, height: int) -> Tuple[int, int]:
    """The frame size of a ``--viz`` GIF: the video's, scaled down (aspect
    kept) so that its longer side is at most :data:`GIF_MAX_SIDE`.

    Args:
        width (int): The video's width.
        height (int): The video's height.

    Returns:
        tuple[int, int]: ``(width, height)`` of the GIF.
    """
    scale = min(1.0, GIF_MAX_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _no_frame(video: str) -> OSError:
    return OSError(f'OpenCV read no frame of {video!r} to draw on')


def _write_mp4(capture, video: str, out_path: str, fps: float,
               predictions: Predictions) -> int:
    """Stream every frame, drawn on, to an MPEG-4 file; returns the count.
    """
    import cv2

    from models.utils.safe_io import atomic_path

    # The temporary name ends in .mp4: VideoWriter picks the container
    # from the extension.
    with atomic_path(out_path, keep_ext=True) as tmp:
        writer, count = None, 0
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                if writer is None:
                    height, width = frame.shape[:2]
                    writer = cv2.VideoWriter(tmp,
                                             cv2.VideoWriter_fourcc(*'mp4v'),
                                             fps, (width, height))
                    if not writer.isOpened():
                        raise OSError(f'OpenCV cannot write {out_path!r}')
                writer.write(draw_predictions(frame, predictions))
                count += 1
        finally:
            if writer is not None:
                writer.release()
        if not count:
            raise _no_frame(video)
    return count


def _write_gif(capture, video: str, out_path: str, fps: float,
               predictions: Predictions) -> int:
    """Write a small GIF of the drawn frames; returns its frame count."""
    import cv2
    from PIL import Image

    from models.utils.safe_io import atomic_write

    # Source frames per GIF frame: the rate is capped at GIF_MAX_FPS, and
    # when GIF_MAX_FRAMES frames are held every other one is dropped and
    # the step doubles, so that any length fits and the GIF still spans
    # the whole video (at a lower frame rate).
    step = max(1, math.ceil(fps / GIF_MAX_FPS - 1e-6))
    frames, index = [], 0
    while capture.grab():  # skipped frames are never converted
        if index % step == 0:
            ok, frame = capture.retrieve()
            if not ok:
                break
            size = gif_size(frame.shape[1], frame.shape[0])
            if size != (frame.shape[1], frame.shape[0]):
                frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            rgb = cv2.cvtColor(draw_predictions(frame, predictions),
                               cv2.COLOR_BGR2RGB)
            # Held as palette images (one byte a pixel): the conversion
            # Pillow's GIF writer would make anyway.
            frames.append(
                Image.fromarray(rgb).convert(
                    'P', palette=Image.Palette.ADAPTIVE))
            if len(frames) == GIF_MAX_FRAMES:
                frames, step = frames[::2], step * 2
        index += 1
    if not frames:
        raise _no_frame(video)
    with atomic_write(out_path, 'wb') as f:
        frames[0].save(
            f,
            format='GIF',
            save_all=True,
            append_images=frames[1:],
            duration=round(1000 * step / fps),
            loop=0)
    return len(frames)


def write_annotated_video(video: str, out_path: str,
                          predictions: Predictions) -> int:
    """Write ``video`` with its predictions drawn on every frame.

    Frames are read one at a time, so memory does not grow with the
    video. ``.mp4`` is written with OpenCV as it is read (MPEG-4, the
    source's size and frame rate). ``.gif`` is written with Pillow, which
    holds every frame until the end, so its frames are bounded: scaled
    down to :data:`GIF_MAX_SIDE` pixels a side, at most
    :data:`GIF_MAX_FPS` a second and :data:`GIF_MAX_FRAMES` in all (a
    longer video gets a lower frame rate); Pillow stores a frame identical
    to the one before as a longer display of that frame. Either file goes
    to a temporary file renamed at the end: a failure leaves a previous
    ``out_path`` as it was.

    Args:
        video (str): The source video.
        out_path (str): ``.mp4`` or ``.gif`` file.
        predictions (list[tuple[str, float]]): What to draw.

    Returns:
        int: The number of frames written.
    """
    import cv2
    os.makedirs(osp.dirname(osp.abspath(out_path)), exist_ok=True)
    write = _write_gif if out_path.lower().endswith('.gif') else _write_mp4
    capture = cv2.VideoCapture(video)
    try:
        fps = capture.get(cv2.CAP_PROP_FPS)
        fps = fps if fps and fps > 0 else 25.0
        return write(capture, video, out_path, fps, predictions)
    finally:
        capture.release()


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The command line of this tool.

    Returns:
        argparse.ArgumentParser: The parser.
    """
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        epilog=__doc__.split('\n\n')[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        'videos',
        nargs='+',
        metavar='VIDEO_OR_FOLDER',
        help='video files, or folders walked for .mp4, .avi, .mkv, .webm, '
        '.mov ... files')
    parser.add_argument(
        '--labels', help='comma-separated labels: "juggling,reading a book"')
    parser.add_argument('--label-file', help='a file with one label a line')
    parser.add_argument(
        '--template',
        action='append',
        help="prompt template with {} for the label, e.g. 'a video of {}'; "
        "repeat for an ensemble (default: the model's templates, "
        "ActionCLIP's 16)")
    parser.add_argument(
        '--topk',
        type=int,
        default=5,
        help='labels shown per video (default 5)')
    parser.add_argument(
        '--out', help='also write the results to a .json or .csv file')
    parser.add_argument(
        '--viz',
        help='write each video with its top-k drawn on it (.mp4 or .gif; '
        'with several videos, one file each: OUT_<video name>.mp4). GIFs '
        f'are scaled down to {GIF_MAX_SIDE} pixels a side, at most '
        f'{GIF_MAX_FPS} frames a second and {GIF_MAX_FRAMES} frames')
    add_model_arguments(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Score the videos; see the module docstring for the exit status.

    Args:
        args (argparse.Namespace): Parsed arguments.

    Returns:
        int: The exit status.
    """
    from models.apis.video_scoring import (embed_videos, find_videos,
                                           label_text_features, score_labels,
                                           top_k)
    from models.text.prompts import load_templates
    if args.topk < 1:
        raise CliError(f'--topk must be >= 1, got {args.topk}')
    check_output_path(args.out, OUT_FORMATS, '--out')
    check_output_path(args.viz, VIZ_FORMATS, '--viz')
    labels = read_labels(args)
    templates = load_templates(args.template) if args.template else None
    videos = find_videos(args.videos)
    viz = prepare_outputs(args, videos)
    scorer = load_model_from_args(args)
    templates = templates or scorer.templates
    text = label_text_features(scorer.model, labels, templates)
    features, failures = embed_videos(
        scorer, videos, args.batch_size, not args.no_progress,
        report_skipped, decode_workers(args, scorer.device))
    results: Dict[str, Predictions] = {}
    if features:
        import torch
        probs = score_labels(torch.stack(list(features.values())), text)
        results = dict(zip(features, top_k(probs, labels, args.topk)))
    for video, predictions in results.items():
        print(format_table(video, predictions), end='\n\n')
    if args.out:
        write_results(
            args.out, results, failures,
            dict(model=scorer.describe(), labels=labels, templates=templates,
                 topk=min(args.topk, len(labels))))
        print(f'Wrote {args.out}', file=sys.stderr)
    if args.viz:
        for video, predictions in results.items():
            path = viz[video]
            try:
                write_annotated_video(video, path, predictions)
            except OSError as error:
                failures[video] = f'--viz: {error}'
                continue
            print(f'Wrote {path}', file=sys.stderr)
    return report_failures(failures, len(videos))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse the command line and run; errors become one line and exit 2.

    Args:
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` by default.

    Returns:
        int: The exit status.
    """
    return run_cli(build_parser(), run, argv)


if __name__ == '__main__':
    sys.exit(main())

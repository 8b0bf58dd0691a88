"""What the command lines in ``tools/`` share: the parser, the model,
running and window options, their checks, one-line errors with exit
status 2, and the report of unreadable videos.

Only the standard library at its top: a tool loads this file before torch,
so that ``--help`` or a wrong option answers at once.
"""
import argparse
import contextlib
import math
import os
import os.path as osp
import re
import sys
import warnings
from typing import (Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple)

from ..utils.paths import special_file_kind

#: The model the tools use when no model option is given.
DEFAULT_MODEL = 'ViT-B/32-8'

#: At most this many decoding processes by default (on a GPU).
MAX_DEFAULT_WORKERS = 4

#: The ``--device`` values the tools run on (MPS where PyTorch has it).
DEVICE_PATTERN = re.compile(r'cpu|cuda(:\d+)?|mps')

ArgsCheck = Callable[[argparse.Namespace], None]


class CliError(Exception):
    """A wrong argument or input: reported in one line, exit status 2."""


def same_text(text: str) -> str:
    return ' '.join(text.casefold().split())


def check_queries(queries: Sequence[str]) -> List[str]:
    """The queries, stripped; a ValueError when none, empty or repeated."""
    if isinstance(queries, str):
        queries = [queries]
    queries = [str(q).strip() for q in queries]
    if not queries:
        raise ValueError('No query: say what to look for')
    if '' in queries:
        raise ValueError(f'Query {queries.index("") + 1} is empty: describe '
                         'what to look for')
    seen = {}
    for query in queries:
        key = same_text(query)
        if key in seen:
            raise ValueError(f'The queries {seen[key]!r} and {query!r} are '
                             'the same text: give each once')
        seen[key] = query
    return queries


def add_model_arguments(parser: argparse.ArgumentParser,
                        windows: bool = False) -> None:
    """Add the options that choose the model and how it runs
    (``windows``: for the tools that search moments)."""
    group = parser.add_argument_group(
        'model (one of --model, --config/--checkpoint, --clip)')
    group.add_argument(
        '--model',
        help='a released ActionCLIP model (ViT-B/32-8, ViT-B/16-8, '
        'ViT-B/16-16, ViT-B/16-32; read from $TORCH_HOME/hub/checkpoints, '
        'downloaded there when missing) or the path of an ActionCLIP '
        f'checkpoint. Default: {DEFAULT_MODEL}')
    group.add_argument(
        '--config',
        help='an MMAction2 config building ActionClip (videos go through '
        'its test_pipeline); needs --checkpoint')
    group.add_argument('--checkpoint', help='weights trained with --config')
    group.add_argument(
        '--clip', metavar='ARCH_OR_PATH',
        help='plain CLIP weights with temporal mean pooling: ViT-B/32, '
        'ViT-B/16, ViT-L/14, ViT-L/14@336px (cached in ~/.cache/clip) or '
        'the path of a CLIP .pt file')
    group.add_argument(
        '--num-frames', type=int,
        help='frames sampled per video with --clip (default 8)')
    run = parser.add_argument_group('running')
    run.add_argument(
        '--device',
        help='cpu, cuda, cuda:1 ... (default: cuda when available)')
    run.add_argument(
        '--batch-size', type=int, default=8,
        help=f'{"windows" if windows else "videos"} per forward pass '
        '(default 8)')
    run.add_argument(
        '--workers', type=int, metavar='N',
        help='not used: each video is decoded in one streamed pass in this '
        'process; only 0 is accepted' if windows else
        'processes decoding videos while the model runs; 0 decodes '
        'in the main process. Default: the CPU count, at most '
        f'{MAX_DEFAULT_WORKERS}, on a GPU; 0 on the CPU, where the '
        "model's forward pass already keeps every core busy")
    run.add_argument('--no-progress', action='store_true',
                     help='do not show the progress bar')
    run.add_argument(
        '--verbose', action='store_true',
        help="keep the third-party messages hidden by default: FFmpeg's "
        "and decord's about unreadable videos, the stack's deprecation "
        'warnings')


def default_workers(device) -> int:
    """``min(4, CPU count)`` on a GPU, else 0 (on the CPU they would
    compete with the forward pass for the cores)."""
    if device.type != 'cuda':
        return 0
    return min(MAX_DEFAULT_WORKERS, os.cpu_count() or 1)


def decode_workers(args: argparse.Namespace, device) -> int:
    """``--workers``, else :func:`default_workers`."""
    return default_workers(device) if args.workers is None else args.workers


def load_model_from_args(args: argparse.Namespace):
    """Load the model the :func:`add_model_arguments` options name (the
    tools' checks ran :func:`check_model_args` before)."""
    import torch

    from models.apis.video_scoring import load_scoring_model
    device = torch.device(args.device or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise CliError(f'--device {device} asked for CUDA, which this '
                       'machine lacks: use --device cpu')
    if device.type == 'mps' and not torch.backends.mps.is_available():
        raise CliError('--device mps asked for Apple\'s MPS, which this '
                       'machine or PyTorch build lacks: use --device cpu')
    if args.model is None and args.config is None and args.clip is None:
        args.model = DEFAULT_MODEL
    return load_scoring_model(
        name=args.model, config=args.config, checkpoint=args.checkpoint,
        clip=args.clip, num_frames=args.num_frames or 8, device=device)


def check_video_paths(paths: Sequence[str], video_files) -> None:
    """Refuse video paths that name nothing, or folders without videos
    (``video_files``: that module as the tool loaded it)."""
    try:
        # Unlistable subfolders are reported when the run walks them.
        video_files.find_videos(paths, unreadable={})
    except (OSError, ValueError) as error:
        raise CliError(str(error)) from None


def check_model_args(args: argparse.Namespace) -> None:
    """Check the :func:`add_model_arguments` options, before torch."""
    sources = [flag for flag, value in (('--model', args.model),
                                        ('--config', args.config),
                                        ('--clip', args.clip))
               if value is not None]
    if len(sources) > 1:
        raise CliError(f'{" and ".join(sources)} both choose a model: give '
                       'only one of --model, --config/--checkpoint, --clip')
    if args.checkpoint is not None and args.config is None:
        raise CliError('--checkpoint needs the --config it was trained with '
                       '(for a released model or an ActionCLIP checkpoint '
                       'alone use --model)')
    if args.config is not None and args.checkpoint is None:
        raise CliError(f'--config {args.config} needs --checkpoint with the '
                       'weights trained with it')
    if args.num_frames is not None and args.clip is None:
        raise CliError('--num-frames only applies to --clip (ActionCLIP '
                       'models fix their frame count)')
    check_minimums(('--batch-size', args.batch_size, 1),
                   ('--workers', args.workers, 0))
    if args.device is not None and not DEVICE_PATTERN.fullmatch(args.device):
        # torch.device also takes 'meta', 'xla', 'hpu' ...: the model
        # cannot run there.
        raise CliError(f'--device {args.device!r} is not a device the model '
                       'runs on: use cpu, cuda, cuda:N or mps')
    if args.device == 'mps' and sys.platform != 'darwin':
        raise CliError('--device mps asked for Apple\'s MPS, which only '
                       'macOS has: use --device cpu or cuda')
    for option, path in (('--config', args.config),
                         ('--checkpoint', args.checkpoint)):
        # Package configs (mmaction::...) and URLs are resolved later.
        if path is not None and '::' not in path and '://' not in path \
                and not osp.isdir(path):
            check_input_file(option, path)


def tool_parser(doc: str, last: bool = False) -> argparse.ArgumentParser:
    """A parser described by the first paragraph of ``doc`` and ending
    with the rest (only the last paragraph with ``last``) as written."""
    paragraphs = doc.split('\n\n')
    return argparse.ArgumentParser(
        description=paragraphs[0],
        epilog='\n\n'.join(paragraphs[-1:] if last else paragraphs[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter)


def check_minimums(*checks: Tuple[str, Optional[float], float]) -> None:
    """Refuse ``(option, value, least)`` with a value (not None) < least."""
    for option, value, least in checks:
        if value is not None and value < least:
            raise CliError(f'{option} must be >= {least}, got {value}')


def check_input_file(option: str, path: Optional[str],
                     hint: str = '') -> None:
    """Refuse an input ``path`` that is no regular file (a FIFO is never
    opened); ``hint`` follows the problem."""
    if path is not None and not osp.isfile(path):
        kind = special_file_kind(path)
        raise CliError(f'{option} {path!r}'
                       + (f' is {kind}, not a regular file' if kind else
                          ': no such file') + hint)


def check_writable(outputs: Sequence[Tuple[str, Optional[str]]],
                   inputs: Sequence[Optional[str]]) -> None:
    """Refuse (``OutputPathError``, reported by :func:`run_cli`)
    ``(option, path)`` outputs that would overwrite one of ``inputs`` or
    cannot be written, and create their folders."""
    from ..utils.safe_io import check_output_path
    for option, path in outputs:
        if path is not None:
            check_output_path(path, inputs, option)


def add_window_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the window and threshold options of the moment tools."""
    parser.add_argument(
        '--window', type=float, metavar='SECONDS',
        help="window length (default: the model's frame count / 2 "
        'seconds, at least 1: 4 s for 8-frame models, 2 s for the '
        "quickstart's 4-frame model)")
    parser.add_argument(
        '--stride', type=float, metavar='SECONDS',
        help='step between window starts, at most the window (default: '
        'half the window)')
    parser.add_argument(
        '--window-frames', type=int, metavar='N',
        help='windows of N frames every N/2 frames, per video whatever its '
        'frame rate, instead of --window and --stride (e.g. the length of '
        "the model's training clips: 30 for the generated actions)")
    parser.add_argument(
        '--subtract-still', action='store_true',
        help="score = the window's score minus that of its middle frame "
        'held still (the scene alone): removes confident scores of still '
        'scenes, but also the appearance evidence of a query (one more '
        'forward pass per window; no more decoding)')
    parser.add_argument(
        '--threshold', type=float,
        help='lowest window score in a segment (default 0.5 for '
        'probabilities, also with --subtract-still; required when the '
        'score is a cosine similarity: one query and no background '
        'labels)')


def check_window_args(args: argparse.Namespace) -> None:
    """Check :func:`add_window_arguments`' options; refuse ``--workers``."""
    for option, value in (('--window', args.window),
                          ('--stride', args.stride)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise CliError(f'{option} must be a positive number of seconds'
                           f', got {value:g}')
    if args.window is not None and args.stride is not None \
            and args.stride > args.window:
        raise CliError(f'--stride {args.stride:g} is longer than --window '
                       f'{args.window:g}: the video between windows would '
                       'never be looked at')
    check_minimums(('--window-frames', args.window_frames, 2))
    if args.window_frames is not None and (args.window is not None
                                           or args.stride is not None):
        raise CliError('--window-frames replaces --window and --stride: '
                       'give one or the other')
    if args.threshold is not None and not math.isfinite(args.threshold):
        raise CliError(f'--threshold must be a number, got {args.threshold}')
    if args.workers:
        raise CliError('--workers is not used by find_moments: each video '
                       'is decoded in one streamed pass in this process')


def check_output_path(path: Optional[str], formats: Sequence[str],
                      option: str) -> None:
    """Refuse an output ``path`` not ending in one of ``formats``, or a
    folder."""
    if path is None:
        return
    ext = osp.splitext(path)[1].lower()
    if ext not in formats:
        raise CliError(f'{option} {path!r}: unknown format {ext or "(none)"}'
                       f'; end the name with {" or ".join(formats)}')
    if osp.isdir(path):
        raise CliError(f'{option} {path!r} is a folder; give a file name')


def report_skipped(video: str, error: Exception) -> None:
    """Say, above the progress bar, that a video could not be read."""
    from tqdm import tqdm
    tqdm.write(f'skipped: {error}', file=sys.stderr)


def report_failures(failures: Dict[str, str], total: int) -> int:
    """List the failures on stderr; the exit status: 1 if any, else 0."""
    if not failures:
        return 0
    print(f'{len(failures)} of {total} videos failed:', file=sys.stderr)
    for error in failures.values():
        print(f'  {error}', file=sys.stderr)
    return 1


@contextlib.contextmanager
def _third_party_quiet() -> Iterator[None]:
    """Hide the stack's warnings about its internals and what FFmpeg and
    decord write about unreadable videos (the tools report each in one
    line): ``sys.stderr`` moves to a copy of descriptor 2, where native
    code writes, and that to ``/dev/null`` (unless already captured)."""
    try:
        moved = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # captured, replaced
        moved = False
    python_stderr = sys.stderr
    if moved:
        python_stderr.flush()
        real = os.dup(2)
        sys.stderr = open(real, 'w', buffering=1, closefd=False,
                          encoding=python_stderr.encoding,
                          errors='backslashreplace')
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
    try:
        for message in ('Fail to import ``MultiScaleDeformableAttention``',
                        'pkg_resources is deprecated',
                        '`torch.jit.load` is deprecated'):
            warnings.filterwarnings('ignore', message=message)
        from mmengine.logging import MMLogger
        MMLogger.get_current_instance().addFilter(
            lambda record: not any(
                text in record.getMessage()
                for text in ('"FileClient" will be deprecated',
                             '"HardDiskBackend" is the alias')))
        with contextlib.suppress(ImportError):  # else OpenCV reads them
            import decord.logging
            # Forked decoding processes inherit the level.
            decord.logging.set_level(decord.logging.QUIET)
        yield
    finally:
        if moved:
            sys.stderr.flush()
            os.dup2(real, 2)
            sys.stderr.close()
            sys.stderr = python_stderr
            os.close(real)


def run_cli(parser: argparse.ArgumentParser,
            run_fn: Callable[[argparse.Namespace], int],
            argv: Optional[Sequence[str]],
            check_fn: Optional[ArgsCheck] = None) -> int:
    """Parse ``argv``, check (``check_fn``, before torch) and run
    (``run_fn``); returns the exit status, 2 with one line for an input
    error."""
    args = parser.parse_args(argv)
    try:
        if check_fn is not None:
            check_fn(args)
    except CliError as error:
        print(f'{parser.prog}: error: {error}', file=sys.stderr)
        return 2
    with (contextlib.nullcontext() if getattr(args, 'verbose', False)
          else _third_party_quiet()):
        from models.apis.video_scoring import INPUT_ERRORS
        try:
            return run_fn(args)
        except (CliError, ) + INPUT_ERRORS as error:
            print(f'{parser.prog}: error: {error}', file=sys.stderr)
            return 2


def tool_main(build_parser: Callable[[], argparse.ArgumentParser],
              run_fn: Callable[[argparse.Namespace], int],
              check_fn: Optional[ArgsCheck] = None
              ) -> Callable[[Optional[Sequence[str]]], int]:
    """A tool's ``main(argv=None)``: :func:`run_cli` on a new parser."""
    return lambda argv=None: run_cli(build_parser(), run_fn, argv, check_fn)

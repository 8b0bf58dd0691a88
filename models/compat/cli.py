"""Command line of the install-time fixes: ``--install`` and ``--check``.

Run as ``python models/compat --install`` (what ``make install`` does:
only the standard library and this package are imported) or, from the
project root, ``python -m models.compat --install``.
"""
import argparse
import importlib.util
import os.path as osp
import sys
from typing import List, Optional, Sequence

from .install import run_install_fixes

# Read by file: importing it as models.datasets.decoder_info would import
# the models package (torch, mmaction) before the fixes are in place.
_DECODER_INFO = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), 'datasets',
    'decoder_info.py')


def decoder_lines() -> List[str]:
    """What decodes videos, and with which FFmpeg: one line each for
    decord and for OpenCV (the fallback reader).

    Returns:
        list[str]: ``[info]`` lines, ``[warn]`` for an FFmpeg older than 6
        (unmaintained, and fed untrusted videos), ``[error]`` where the
        decoder cannot be inspected.
    """
    try:
        spec = importlib.util.spec_from_file_location(
            '_actionclip_decoder_info', _DECODER_INFO)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        infos = [module.decoder_info(), module.opencv_info()]
    except Exception as error:  # a report, not a fix: never fatal
        return [f'[error] decoder: cannot inspect ({error})']
    lines = []
    for info in infos:
        old = info.libavcodec_major is not None and not info.maintained
        state = 'warn' if old else 'info'
        lines.append(f'[{state}] decoder: {info.describe()}' + (
            ' (older than FFmpeg 6: install the pinned decord2)'
            if old else ''))
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point.

    Args:
        argv (Sequence[str], optional): Arguments. Defaults to
            ``sys.argv[1:]``.

    Returns:
        int: Exit status: 0 when everything is fine (``--check``) or was
        patched (``--install``), 1 otherwise.
    """
    parser = argparse.ArgumentParser(
        prog='python -m models.compat',
        description='Patch the installed mmaction2, clip and openmim '
        'packages so that they work with this project\'s pinned stack.')
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        '--install', action='store_true', help='patch the installed files')
    mode.add_argument(
        '--check',
        action='store_true',
        help='report each fix and exit non-zero if any is missing')
    parser.add_argument(
        '--site-packages',
        metavar='DIR',
        help='directory holding mmaction/, clip/ and mim/ (default: where '
        'they are installed)')
    args = parser.parse_args(argv)
    results = run_install_fixes(args.site_packages, dry_run=args.check)
    for result in results:
        stream = sys.stderr if result.state == 'error' else sys.stdout
        print(f'[{result.state}] {result.name}: {result.detail}', file=stream)
    failed = [r for r in results if r.state in ('error', 'missing')]
    if args.check:
        for line in decoder_lines():
            print(line)
    if failed:
        hint = ('run `python -m models.compat --install`'
                if args.check else 'the fixes above could not be applied')
        print(f'{len(failed)} fix(es) not in place: {hint}', file=sys.stderr)
        return 1
    if args.install and all(r.state == 'ok' for r in results):
        print('everything was already fine; nothing changed')
    return 0

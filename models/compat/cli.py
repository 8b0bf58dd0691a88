"""Command line: ``python models/compat --check`` (installed wheels' files,
video decoders) / ``--repair`` (``make install``: reinstall, same versions,
no dependencies, the distributions whose files differ) /
``--startup-hook`` (:mod:`.startup`). Standard library only.
"""
import argparse
import importlib.util
import os.path as osp
import subprocess
import sys
from typing import List, Optional, Sequence

from .startup import install_hook
from .wheels import damaged_distributions

# Read by file: importing it as models.datasets.decoder_info would import
# the models package (torch, mmaction), which a damaged install may break.
_DECODER_INFO = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), 'datasets',
    'decoder_info.py')


def decoder_lines() -> List[str]:
    """What decodes videos (decord, OpenCV) with which FFmpeg: ``[info]``
    lines, ``[warn]`` for an FFmpeg older than 6, ``[error]`` where a
    decoder cannot be inspected."""
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
    """Exit status 0 when every distribution matches its wheel (after
    ``--repair``), else 1."""
    parser = argparse.ArgumentParser(
        prog='python models/compat',
        description='Check that the installed packages hold their wheels\' '
        'files (pip\'s RECORD hashes); --repair reinstalls those that '
        'do not.')
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        '--check', action='store_true', help='report, change nothing')
    mode.add_argument(
        '--startup-hook',
        action='store_true',
        help='write this checkout\'s DRN placeholder hook (a .pth file of '
        'its own) into site-packages, so that import mmaction.models works '
        'before the plugin is imported')
    mode.add_argument(
        '--repair',
        action='store_true',
        help='reinstall (pip --force-reinstall --no-deps, same versions) '
        'the distributions whose files differ, then check')
    args = parser.parse_args(argv)
    if args.startup_hook:
        print(f'[ok] startup hook: {install_hook()}')
        return 0
    damaged = damaged_distributions()
    if damaged and args.repair:
        pins = [f'{d.name}=={d.version}' for d in damaged]
        print('reinstalling ' + ' '.join(pins))
        subprocess.run([
            sys.executable, '-m', 'pip', 'install', '-q',
            '--disable-pip-version-check', '--force-reinstall', '--no-deps',
            *pins
        ], check=False)
        damaged = damaged_distributions()
    for d in damaged:
        shown = ', '.join(d.files[:5]) + (
            f' and {len(d.files) - 5} more' if len(d.files) > 5 else '')
        print(f'[error] {d.name} {d.version}: {len(d.files)} file(s) differ '
              f'from its wheel: {shown}', file=sys.stderr)
    if damaged:
        print('reinstall them: pip install --force-reinstall --no-deps '
              + ' '.join(f'{d.name}=={d.version}' for d in damaged),
              file=sys.stderr)
    else:
        print('[ok] every installed distribution matches its wheel\'s '
              'RECORD')
    for line in decoder_lines():
        print(line)
    return 1 if damaged else 0

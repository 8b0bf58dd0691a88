"""Command line of the install-time fixes: ``--install`` and ``--check``.

Run as ``python models/compat --install`` (what ``make install`` does:
only the standard library and this package are imported) or, from the
project root, ``python -m models.compat --install``.
"""
import argparse
import sys
from typing import Optional, Sequence

from .install import run_install_fixes


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
    if failed:
        hint = ('run `python -m models.compat --install`'
                if args.check else 'the fixes above could not be applied')
        print(f'{len(failed)} fix(es) not in place: {hint}', file=sys.stderr)
        return 1
    if args.install and all(r.state == 'ok' for r in results):
        print('everything was already fine; nothing changed')
    return 0

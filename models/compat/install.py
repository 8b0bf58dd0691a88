"""Install-time fixes: patches of the installed mmaction2, clip and openmim.

``make install`` runs them (``python models/compat --install``; the
command line is :mod:`.cli`). Each fix is a plan: the files to write,
computed from what is installed, so that ``--check`` reports without
writing and a second run writes nothing. New files are added to the wheel's
``RECORD`` so that ``pip uninstall`` removes them. Imports only the
standard library, because mmaction is not importable before these patches.
"""
import base64
import glob
import hashlib
import importlib.util
import os
import os.path as osp
import sys
import tempfile
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

from .patches import (DRN_INIT_SOURCE, DRN_PLACEHOLDER_SOURCE, MARKER,
                      MIM_LAUNCH_ORIGINAL, MIM_LAUNCH_PATCHED,
                      patch_clip_source, patch_mim_parse_args_source,
                      patch_multimodal_source)


class CompatError(RuntimeError):
    """Raised when an installed file cannot be checked or patched."""


class FixResult(NamedTuple):
    """Outcome of one install-time fix.

    Attributes:
        name (str): Short name of the fix.
        state (str): ``'ok'`` (nothing to do), ``'patched'`` (files were
            written), ``'missing'`` (``--check``: the fix is needed) or
            ``'error'``.
        detail (str): Human-readable explanation.
    """
    name: str
    state: str
    detail: str


class _Plan(NamedTuple):
    """Files one fix has to write, and what to report."""
    edits: List[Tuple[str, str]]
    done_detail: str
    todo_detail: str


def _read(path: str) -> Optional[str]:
    """Return the text of ``path``, or None if it does not exist."""
    try:
        with open(path, encoding='utf-8', newline='') as f:
            return f.read()
    except FileNotFoundError:
        return None


def _read_installed(path: str) -> str:
    """Return the text of an installed file that a fix depends on.

    Args:
        path (str): The file.

    Returns:
        str: Its text.

    Raises:
        CompatError: The file does not exist.
    """
    text = _read(path)
    if text is None:
        raise CompatError(f'{path} not found')
    return text


def _write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so readers never see a partial file.

    Args:
        path (str): Destination file; its permission bits are kept.
        text (str): New content.
    """
    directory = osp.dirname(path)
    os.makedirs(directory, exist_ok=True)
    mode = os.stat(path).st_mode & 0o777 if osp.exists(path) else 0o644
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.actionclip-')
    try:
        with os.fdopen(fd, 'w', encoding='utf-8', newline='') as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise


def _package_dir(name: str, site_root: Optional[str]) -> str:
    """Locate an installed top-level package without importing it.

    Args:
        name (str): Top-level package name, e.g. ``'mmaction'``.
        site_root (str, optional): Directory holding the package (a
            site-packages copy). Defaults to None: the installed one.

    Returns:
        str: The package directory.
    """
    if site_root is not None:
        path = osp.join(site_root, name)
        if not osp.isdir(path):
            raise CompatError(f'{name} not found under {site_root}')
        return path
    # Top-level find_spec does not execute the (broken) package.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise CompatError(f'the {name!r} package is not installed in '
                          f'{sys.prefix}')
    return list(spec.submodule_search_locations)[0]


def _record_line(rel_path: str, text: str) -> str:
    """Return a wheel RECORD line for a file with content ``text``."""
    data = text.encode('utf-8')
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest())
    return f'{rel_path},sha256={digest.decode().rstrip("=")},{len(data)}'


def _record_edit(
        mmaction_dir: str,
        new_files: Sequence[Tuple[str, str]]) -> List[Tuple[str, str]]:
    """Add files to mmaction2's RECORD so ``pip uninstall`` removes them.

    Args:
        mmaction_dir (str): The installed ``mmaction`` directory.
        new_files (Sequence[tuple[str, str]]): ``(path, text)`` of the
            files this project adds.

    Returns:
        list[tuple[str, str]]: The RECORD edit, or nothing when there is
        no RECORD or it is already up to date.
    """
    site_root = osp.dirname(mmaction_dir)
    records = glob.glob(osp.join(site_root, 'mmaction2-*.dist-info',
                                 'RECORD'))
    if len(records) != 1:
        return []
    text = _read(records[0])
    lines = text.splitlines()
    for path, content in new_files:
        rel = osp.relpath(path, site_root).replace(os.sep, '/')
        new = _record_line(rel, content)
        idx = [i for i, line in enumerate(lines) if line.startswith(rel + ',')]
        if idx:
            lines[idx[0]] = new
        else:
            lines.append(new)
    new_text = '\n'.join(lines) + '\n'
    return [] if new_text == text else [(records[0], new_text)]


def plan_drn_placeholder(site_root: Optional[str] = None) -> _Plan:
    """Plan writing the missing DRN package as a placeholder (fix a).

    Args:
        site_root (str, optional): site-packages directory to patch.
            Defaults to None: the one mmaction is installed in.

    Returns:
        _Plan: Files to write and what to report.
    """
    pkg = _package_dir('mmaction', site_root)
    localizers = osp.join(pkg, 'models', 'localizers')
    init_text = _read_installed(osp.join(localizers, '__init__.py'))
    if 'from .drn.drn import DRN' not in init_text:
        return _Plan([], 'not needed: this mmaction does not import DRN', '')
    drn_init = osp.join(localizers, 'drn', '__init__.py')
    drn_py = osp.join(localizers, 'drn', 'drn.py')
    current = _read(drn_py)
    if current is not None and MARKER not in current:
        return _Plan([], 'real DRN sources are installed', '')
    wanted = [(drn_py, DRN_PLACEHOLDER_SOURCE)]
    current_init = _read(drn_init)
    if current_init is None or MARKER in current_init:
        wanted.append((drn_init, DRN_INIT_SOURCE))
    edits = [(p, t) for p, t in wanted if _read(p) != t]
    if edits:
        edits += _record_edit(pkg, wanted)
    return _Plan(
        edits, f'placeholder DRN is installed in {osp.dirname(drn_py)}',
        f'{osp.dirname(drn_py)} is missing (the mmaction2 1.2.0 wheel does '
        'not ship it), so `import mmaction.models` fails')


def plan_vindlu_fallback(site_root: Optional[str] = None) -> _Plan:
    """Plan making the VindLU import fall back to placeholders (fix b).

    Args:
        site_root (str, optional): site-packages directory to patch.
            Defaults to None: the one mmaction is installed in.

    Returns:
        _Plan: Files to write and what to report.
    """
    path = osp.join(
        _package_dir('mmaction', site_root), 'models', 'multimodal',
        '__init__.py')
    text = _read_installed(path)
    done = f'{path} falls back to placeholders if VindLU fails to import'
    todo = (f'{path} breaks `import mmaction.models` when an incompatible '
            'transformers is installed')
    new_text, changed = patch_multimodal_source(text)
    if changed:
        return _Plan([(path, new_text)], done, todo)
    if MARKER in text:
        return _Plan([], done, todo)
    if 'from .vindlu import' not in text:
        return _Plan([], f'not needed: {path} does not import VindLU', '')
    raise CompatError(f'{path} has unexpected content (not mmaction2 '
                      '1.2.0?); refusing to patch it')


def plan_clip_packaging(site_root: Optional[str] = None) -> _Plan:
    """Plan removing clip's ``pkg_resources`` import (fix d).

    Args:
        site_root (str, optional): site-packages directory to patch.
            Defaults to None: the one clip is installed in.

    Returns:
        _Plan: Files to write and what to report.
    """
    path = osp.join(_package_dir('clip', site_root), 'clip.py')
    text = _read_installed(path)
    new_text, changed = patch_clip_source(text)
    if changed:
        return _Plan([(path, new_text)], '',
                     f'{path} imports pkg_resources.packaging, which '
                     'setuptools 70 lacks and setuptools >= 82 removed '
                     'with all of pkg_resources')
    if MARKER in text:
        return _Plan([], f'{path} uses packaging.version', '')
    return _Plan([], f'not needed: {path} does not use pkg_resources', '')


def _mim_dir(site_root: Optional[str]) -> Optional[str]:
    """The installed ``mim`` package, or None: openmim is optional, the
    plugin works with mmaction's own tools."""
    try:
        return _package_dir('mim', site_root)
    except CompatError:
        return None


def plan_mim_click_unset(site_root: Optional[str] = None) -> _Plan:
    """Plan making mim's commands see None for options not given (fix f).

    Args:
        site_root (str, optional): site-packages directory to patch.
            Defaults to None: the one mim is installed in.

    Returns:
        _Plan: Files to write and what to report.
    """
    pkg = _mim_dir(site_root)
    if pkg is None:
        return _Plan([], 'not needed: openmim is not installed', '')
    path = osp.join(pkg, 'click', 'customcommand.py')
    text = _read(path)
    if text is None:
        return _Plan([], f'not needed: {path} does not exist (another '
                     'openmim than 0.3.9)', '')
    new_text, changed = patch_mim_parse_args_source(text)
    if changed:
        return _Plan([(path, new_text)], '',
                     f'{path} passes click >= 8.3\'s UNSET sentinel to '
                     'mim for options that were not given, so e.g. `mim '
                     'train --launcher slurm` without --srun-args fails')
    if MARKER in text:
        return _Plan([], f'{path} turns click\'s UNSET sentinel into None',
                     '')
    return _Plan([], f'not needed: {path} does not have openmim 0.3.9\'s '
                 'copy of click\'s parse_args', '')


def plan_mim_exit_status(site_root: Optional[str] = None) -> _Plan:
    """Plan making ``mim train``/``mim test`` exit with the script's
    status instead of a traceback (fix g).

    Args:
        site_root (str, optional): site-packages directory to patch.
            Defaults to None: the one mim is installed in.

    Returns:
        _Plan: Files to write and what to report.
    """
    pkg = _mim_dir(site_root)
    if pkg is None:
        return _Plan([], 'not needed: openmim is not installed', '')
    edits, done = [], []
    for command in ('train', 'test'):
        path = osp.join(pkg, 'commands', f'{command}.py')
        text = _read(path)
        if text is None or MIM_LAUNCH_PATCHED in text:
            done.append(path)
        elif text.count(MIM_LAUNCH_ORIGINAL) == 1:
            edits.append((path, text.replace(MIM_LAUNCH_ORIGINAL,
                                             MIM_LAUNCH_PATCHED)))
    if edits:
        return _Plan(
            edits, '', ', '.join(p for p, _ in edits) + ' turn a failed '
            'script into a traceback of mim\'s and exit status 1')
    if done:
        return _Plan([], 'mim train/test exit with the script\'s status', '')
    return _Plan([], 'not needed: this mim launches its scripts '
                 'differently', '')


_PLANS: Tuple[Tuple[str, Callable[[Optional[str]], _Plan]], ...] = (
    ('drn-placeholder', plan_drn_placeholder),
    ('vindlu-fallback', plan_vindlu_fallback),
    ('clip-packaging', plan_clip_packaging),
    ('mim-click-unset', plan_mim_click_unset),
    ('mim-exit-status', plan_mim_exit_status))


def run_install_fixes(site_root: Optional[str] = None,
                      dry_run: bool = False) -> List[FixResult]:
    """Check or apply the install-time patches; idempotent.

    Args:
        site_root (str, optional): site-packages directory to patch, e.g.
            a copy for testing. Defaults to None: where the packages are
            installed.
        dry_run (bool): Only report (``--check``). Defaults to False.

    Returns:
        list[FixResult]: One result per fix.
    """
    results = []
    for name, plan_fn in _PLANS:
        try:
            plan = plan_fn(site_root)
            if not plan.edits:
                results.append(FixResult(name, 'ok', plan.done_detail))
            elif dry_run:
                results.append(FixResult(name, 'missing', plan.todo_detail))
            else:
                for path, text in plan.edits:
                    _write_atomic(path, text)
                # Re-plan, so that a patch that does not stick is reported.
                if plan_fn(site_root).edits:
                    raise CompatError('files still differ after writing')
                written = ', '.join(p for p, _ in plan.edits)
                results.append(FixResult(name, 'patched',
                                         f'wrote {written}'))
        except (CompatError, OSError, ValueError) as error:
            results.append(FixResult(name, 'error', str(error)))
    return results

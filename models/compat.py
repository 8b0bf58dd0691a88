"""Compatibility fixes for the software stack ActionCLIP runs on.

The pinned stack (mmaction2 1.2.0 from PyPI, clip-anytorch 2.6.0, torch
2.14 with setuptools >= 77, openmim 0.3.9 with click >= 8.3) cannot be
used as installed. This module fixes it in two layers:

* an install-time patch of the installed files, run by ``make install`` as
  ``python -m models.compat --install`` (``--check`` reports the state);
* :func:`apply_runtime_fixes`, called when our ``models`` package is
  imported, which makes the same imports work in environments where the
  install step never ran (e.g. a user's own GPU environment).

Both layers are idempotent. This module imports only the standard library
at import time, so it also works as a plain script
(``python models/compat.py --install``) and before mmaction is importable.

The breakages fixed here:

a. The mmaction2 1.2.0 wheel lacks ``mmaction/models/localizers/drn``
   (upstream has no ``__init__.py`` there, so it was not packaged), yet
   ``mmaction/models/localizers/__init__.py`` imports ``DRN`` from it.
b. mmaction2 imports its VindLU code whenever ``transformers>=4.28`` is
   installed, and recent transformers releases break that import.
c. mmaction2 imports ``importlib_metadata`` without declaring it.
d. ``clip/clip.py`` does ``from pkg_resources import packaging``, which
   fails on setuptools >= 70 (no such attribute) and on recent setuptools
   that no longer ship ``pkg_resources`` at all.
e. Without a GPU, mmengine 0.10.7's ``init_dist`` (pytorch and slurm
   launchers) calls ``torch.cuda.set_device`` and its Runner gives
   ``DistributedDataParallel`` CUDA ``device_ids``, so a distributed run
   on the gloo backend cannot start (runtime fix only: the plugin is
   imported through ``custom_imports`` by ``Config.fromfile``, before the
   Runner initialises the process group).
f. openmim 0.3.9's ``CustomCommand.parse_args`` (used by ``mim train``,
   ``mim test`` and ``mim gridsearch``) is a copy of click's older
   ``Command.parse_args``. click >= 8.3 keeps its ``UNSET`` sentinel as the
   value of an option that has no default and was not given, until its own
   ``parse_args`` turns it into None; mim's copy does not, so the sentinel
   reaches mim: ``mim train/test --launcher slurm`` without ``--srun-args``
   fails with ``'Sentinel' object has no attribute 'split'``, a missing
   ``--gpus-per-node``/``--partition`` passes mim's ``is not None`` check
   and ends up in the srun command, ``mim test --launcher pytorch`` without
   ``--gpus`` runs ``--nproc_per_node=Sentinel.UNSET``, and so on
   (install-time fix only: mim's command line never imports the plugin).
g. openmim 0.3.9's ``mim train`` and ``mim test`` run MMAction2's script
   with ``subprocess.check_call``, so any failure of the script, even a
   one-line refusal of a wrong checkpoint with exit status 2, ends in a
   traceback of mim's own and exit status 1. Patched, mim exits with the
   script's status and adds nothing (install-time fix only).
"""
import argparse
import base64
import functools
import glob
import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import os.path as osp
import re
import sys
import tempfile
import types
import warnings
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

#: Written into every file this module creates or patches, so that later
#: runs recognise their own work.
MARKER = 'actionclip-compat'

DRN_PACKAGE = 'mmaction.models.localizers.drn'
DRN_MODULE = DRN_PACKAGE + '.drn'
VINDLU_PACKAGE = 'mmaction.models.multimodal.vindlu'
VINDLU_NAMES = ('VindLUVQA', 'VindLURetrievalMC', 'VindLURetrieval')
CLIP_MODULE = 'clip.clip'
DIST_UTILS_MODULE = 'mmengine.dist.utils'
DDP_MODULE = 'mmengine.model.wrappers.distributed'

DRN_INIT_SOURCE = f'''\
# Written by the ActionCLIP project (models/compat.py, {MARKER}).
# The mmaction2 1.2.0 wheel on PyPI does not ship this package: upstream
# has no drn/__init__.py, so setuptools left it out of the wheel and
# ``import mmaction.models`` failed. See drn.py.
"""Placeholder package for mmaction2's DRN temporal grounding model."""
'''

DRN_PLACEHOLDER_SOURCE = f'''\
# Written by the ActionCLIP project (models/compat.py, {MARKER}).
# The mmaction2 1.2.0 wheel on PyPI does not ship the DRN sources (upstream
# has no drn/__init__.py, so setuptools left them out of the wheel), which
# made ``import mmaction.models`` fail. ActionCLIP does not use DRN; this
# placeholder keeps ``DRN`` registered in MODELS, as the real module does,
# and explains how to get the real model when somebody tries to build it.
"""Placeholder for mmaction2's DRN temporal grounding model."""
from mmaction.registry import MODELS

DRN_UNAVAILABLE_MESSAGE = (
    'DRN is not available: the mmaction2 1.2.0 wheel on PyPI does not '
    'ship mmaction/models/localizers/drn, so the ActionCLIP project '
    'installed a placeholder. To use DRN, install mmaction2 from source: '
    '`git clone https://github.com/open-mmlab/mmaction2.git && '
    'cd mmaction2 && pip install -v -e .`')


@MODELS.register_module()
class DRN:
    """Placeholder for ``DRN`` that raises ImportError when built."""

    def __init__(self, *args, **kwargs) -> None:
        raise ImportError(DRN_UNAVAILABLE_MESSAGE)


__all__ = ['DRN']
'''

# ``mmaction/models/multimodal/__init__.py`` exactly as mmaction2 1.2.0
# ships it; only this content is rewritten.
MULTIMODAL_ORIGINAL = '''\
# Copyright (c) OpenMMLab. All rights reserved.
from mmaction.utils.dependency import WITH_MULTIMODAL

if WITH_MULTIMODAL:
    from .vindlu import *  # noqa: F401,F403

else:
    from mmaction.registry import MODELS
    from mmaction.utils.dependency import register_multimodal_placeholder

    register_multimodal_placeholder(
        ['VindLUVQA', 'VindLURetrievalMC', 'VindLURetrieval'], MODELS)
'''

MULTIMODAL_PATCHED = f'''\
# Copyright (c) OpenMMLab. All rights reserved.
# Patched by the ActionCLIP project (models/compat.py, {MARKER}):
# mmaction2 1.2.0 imports VindLU whenever transformers>=4.28 is installed,
# and recent transformers releases break that import. Fall back to
# mmaction's own placeholders instead of breaking ``import mmaction.models``.
from mmaction.utils.dependency import WITH_MULTIMODAL

if WITH_MULTIMODAL:
    try:
        from .vindlu import *  # noqa: F401,F403
    except Exception as _vindlu_error:
        import warnings

        warnings.warn(
            'mmaction2 could not import its VindLU models '
            f'({{type(_vindlu_error).__name__}}: {{_vindlu_error}}); the '
            'installed transformers is probably too new for mmaction2 '
            '1.2.0. VindLU models are replaced by placeholders that raise '
            'ImportError when built.')
        WITH_MULTIMODAL = False

if not WITH_MULTIMODAL:
    from mmaction.registry import MODELS
    from mmaction.utils.dependency import register_multimodal_placeholder

    # One name per call: register_multimodal_placeholder's closure binds
    # the loop variable late, so its messages would all name the last one.
    for _name in ['VindLUVQA', 'VindLURetrievalMC', 'VindLURetrieval']:
        if _name not in MODELS.module_dict:
            register_multimodal_placeholder([_name], MODELS)
'''

_CLIP_PKG_RESOURCES_RE = re.compile(
    r'^from pkg_resources import packaging[ \t]*$', re.MULTILINE)
# A single line, so that line numbers in clip tracebacks stay right.
# ``packaging`` is a dependency of mmcv, and ``packaging.version.parse``
# is all that clip uses.
CLIP_REPLACEMENT_LINE = (f'import packaging.version  # {MARKER}: was '
                         '"from pkg_resources import packaging"')

# The loop of ``CustomCommand.parse_args`` in openmim 0.3.9's
# ``mim/click/customcommand.py`` (a copy of click < 8.3's
# ``Command.parse_args``); the block below is inserted after it.
_MIM_PARSE_LOOP_RE = re.compile(
    r'^(?P<indent>[ \t]+)for param in iter_params_for_processing\('
    r'(?:[^()]|\([^()]*\))*\):[ \t]*\n'
    r'[ \t]+value, args = param\.handle_parse_result\(ctx, opts, args\)'
    r'[ \t]*\n', re.MULTILINE)
# What click >= 8.3's own ``Command.parse_args`` does after that loop. On
# click < 8.3 there is no ``click.core.UNSET`` and this changes nothing.
MIM_UNSET_BLOCK = f'''\
        # Patched by the ActionCLIP project (models/compat.py,
        # {MARKER}): click >= 8.3 keeps its UNSET sentinel as the
        # value of an option without a default until Command.parse_args
        # turns it into None, which this copy of parse_args did not do;
        # mim then failed, e.g. `mim train --launcher slurm` without
        # --srun-args ('Sentinel' object has no attribute 'split').
        for name, value in ctx.params.items():
            if value is getattr(click.core, 'UNSET', None):
                ctx.params[name] = None
'''


# How openmim 0.3.9's train and test commands launch MMAction2's script.
_MIM_LAUNCH = '''\
    ret = subprocess.check_call(
        cmd, env=dict(os.environ, MASTER_PORT=str(port)))
'''
MIM_LAUNCH_PATCHED = f'''\
    # Patched by the ActionCLIP project (models/compat.py, {MARKER}):
    # the script's own exit status (2: a refused input, already explained
    # in one line) instead of a traceback of mim's and status 1.
    try:
        ret = subprocess.check_call(
            cmd, env=dict(os.environ, MASTER_PORT=str(port)))
    except subprocess.CalledProcessError as error:
        raise SystemExit(error.returncode) from None
'''


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


# ---------------------------------------------------------------------------
# Runtime fixes
# ---------------------------------------------------------------------------


def _patch_clip_source(source: str) -> Tuple[str, bool]:
    """Replace clip's ``pkg_resources`` import with ``packaging.version``.

    Args:
        source (str): Text of ``clip/clip.py``.

    Returns:
        tuple[str, bool]: The new text and whether anything was replaced.
    """
    new_source, count = _CLIP_PKG_RESOURCES_RE.subn(CLIP_REPLACEMENT_LINE,
                                                    source)
    return new_source, count > 0


class _DRNPlaceholderLoader(importlib.abc.Loader):
    """Creates the placeholder DRN package and module in memory."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        """Use the default module creation."""
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        """Run the same placeholder code the install step writes to disk.

        Args:
            module (ModuleType): The module being imported.
        """
        if module.__name__ == DRN_MODULE:
            code = compile(DRN_PLACEHOLDER_SOURCE,
                           f'<{MARKER}: placeholder drn.py>', 'exec')
        else:
            code = compile(DRN_INIT_SOURCE,
                           f'<{MARKER}: placeholder drn/__init__.py>', 'exec')
        exec(code, module.__dict__)


def _register_vindlu_placeholders(module: types.ModuleType,
                                  error: BaseException) -> None:
    """Turn a failed VindLU import into mmaction's placeholders.

    Args:
        module (ModuleType): The half-initialised ``vindlu`` package; it is
            given the placeholders so that ``from .vindlu import *`` in
            ``mmaction.models.multimodal`` binds them like the real names.
        error (BaseException): Why the real import failed.
    """
    from mmaction.registry import MODELS
    from mmaction.utils.dependency import register_multimodal_placeholder

    # One name per call, because register_multimodal_placeholder binds its
    # loop variable late. Names the partial import registered are kept.
    for name in VINDLU_NAMES:
        if name not in MODELS.module_dict:
            register_multimodal_placeholder([name], MODELS)
        setattr(module, name, MODELS.module_dict[name])
    module.__all__ = list(VINDLU_NAMES)
    warnings.warn(
        'mmaction2 could not import its VindLU models '
        f'({type(error).__name__}: {error}); the installed transformers is '
        'probably too new for mmaction2 1.2.0. VindLU models are replaced '
        'by placeholders that raise ImportError when built; ActionCLIP is '
        'not affected.',
        stacklevel=2)


class _WrappingLoader(importlib.abc.Loader):
    """A loader that delegates to the real one; subclasses change
    ``exec_module``.

    Args:
        loader (Loader): The loader found for the real module.
    """

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def __getattr__(self, name: str):
        # get_source, get_filename, ... keep working for tracebacks; the
        # own attributes are not set yet during copy.copy().
        if name in ('_loader', '_patch'):
            raise AttributeError(name)
        return getattr(self._loader, name)

    def create_module(
            self, spec: importlib.machinery.ModuleSpec
    ) -> Optional[types.ModuleType]:
        """Delegate to the real loader."""
        return self._loader.create_module(spec)


class _VindLUFallbackLoader(_WrappingLoader):
    """Wraps the real VindLU loader and falls back to placeholders.

    Args:
        loader (Loader): The loader found for the real ``vindlu`` package.
    """

    def exec_module(self, module: types.ModuleType) -> None:
        """Import the real VindLU code, or register placeholders on failure.

        Args:
            module (ModuleType): The module being imported.
        """
        try:
            self._loader.exec_module(module)
        except Exception as error:  # transformers breaks in many ways
            _register_vindlu_placeholders(module, error)


class _ClipPatchedLoader(importlib.machinery.SourceFileLoader):
    """Loads ``clip/clip.py`` with the ``pkg_resources`` import replaced."""

    def get_code(self, fullname: str) -> types.CodeType:
        """Compile the patched source.

        The bytecode cache is bypassed on purpose: a cached ``.pyc`` of the
        unpatched file would otherwise be used as is.

        Args:
            fullname (str): Name of the module.

        Returns:
            CodeType: Code object of the patched module.
        """
        source, _ = _patch_clip_source(self.get_source(fullname))
        return compile(source, self.path, 'exec', dont_inherit=True)


def _patch_mim_parse_args_source(source: str) -> Tuple[str, bool]:
    """Make mim's ``CustomCommand.parse_args`` turn click's ``UNSET`` into
    None, as click's own ``parse_args`` does (fix f).

    Args:
        source (str): Text of ``mim/click/customcommand.py``.

    Returns:
        tuple[str, bool]: The new text and whether anything was inserted.
        Nothing is when the loop is not there (another mim) or the file
        already deals with ``UNSET`` (a fixed mim, or patched before).
    """
    if MARKER in source or 'UNSET' in source:
        return source, False
    match = _MIM_PARSE_LOOP_RE.search(source)
    if match is None:
        return source, False
    indent = match.group('indent')
    block = ''.join(indent + line[8:] if line.strip() else line
                    for line in MIM_UNSET_BLOCK.splitlines(keepends=True))
    return source[:match.end()] + block + source[match.end():], True


def _cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


def _without_cuda_set_device(init_fn):
    """Wrap one of ``init_dist``'s launcher functions so that, when CUDA is
    unavailable, its ``torch.cuda.set_device(local_rank)`` is skipped."""

    @functools.wraps(init_fn)
    def init_without_gpu(*args, **kwargs):
        import torch
        if torch.cuda.is_available():
            return init_fn(*args, **kwargs)
        set_device = torch.cuda.set_device
        torch.cuda.set_device = lambda device: None
        try:
            return init_fn(*args, **kwargs)
        finally:
            torch.cuda.set_device = set_device

    init_without_gpu._actionclip_compat = True
    return init_without_gpu


def _patch_init_dist(module: types.ModuleType) -> None:
    """Patch ``mmengine.dist.utils`` in place (breakage e); idempotent."""
    for name in ('_init_dist_pytorch', '_init_dist_slurm'):
        init_fn = getattr(module, name, None)
        if init_fn is not None and not getattr(init_fn, '_actionclip_compat',
                                               False):
            setattr(module, name, _without_cuda_set_device(init_fn))


def _patch_ddp_wrapper(module: types.ModuleType) -> None:
    """Let ``MMDistributedDataParallel`` wrap a CPU model when CUDA is
    unavailable: the Runner passes ``device_ids=[LOCAL_RANK]``, which
    ``DistributedDataParallel`` refuses for CPU modules (breakage e)."""
    cls = getattr(module, 'MMDistributedDataParallel', None)
    if cls is None or getattr(cls.__init__, '_actionclip_compat', False):
        return
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        model = kwargs.get('module', args[0] if args else None)
        if (kwargs.get('device_ids') and model is not None
                and not _cuda_available()
                and all(p.device.type == 'cpu' for p in model.parameters())):
            kwargs['device_ids'] = None
            kwargs.pop('output_device', None)
        init(self, *args, **kwargs)

    __init__._actionclip_compat = True
    cls.__init__ = __init__


#: Modules patched in place once imported: name -> patch function.
_POST_IMPORT_PATCHES = {
    DIST_UTILS_MODULE: _patch_init_dist,
    DDP_MODULE: _patch_ddp_wrapper,
}


class _PatchAfterImportLoader(_WrappingLoader):
    """Wraps a real loader and patches the module once it has run.

    Args:
        loader (Loader): The loader found for the real module.
        patch (callable): Called with the module after it has executed.
    """

    def __init__(self, loader: importlib.abc.Loader, patch) -> None:
        super().__init__(loader)
        self._patch = patch

    def exec_module(self, module: types.ModuleType) -> None:
        """Run the real module, then patch it.

        Args:
            module (ModuleType): The module being imported.
        """
        self._loader.exec_module(module)
        self._patch(module)


class _CompatFinder(importlib.abc.MetaPathFinder):
    """Meta path finder that applies the runtime fixes at import time.

    It only reacts to the few module names in :attr:`targets`, so it costs
    one set lookup for every other import.
    """

    #: Recognised by :func:`_get_finder` even across module reloads.
    _actionclip_compat_finder = True

    def __init__(self) -> None:
        self.targets = set()

    def find_spec(
        self,
        fullname: str,
        path: Optional[Sequence[str]],
        target: Optional[types.ModuleType] = None
    ) -> Optional[importlib.machinery.ModuleSpec]:
        """Find a spec for one of the patched modules.

        Args:
            fullname (str): Name of the module being imported.
            path (Sequence[str], optional): ``__path__`` of the parent.
            target (ModuleType, optional): Unused.

        Returns:
            ModuleSpec, optional: A patched spec, or None to let the other
            finders handle the import.
        """
        if fullname not in self.targets:
            return None
        real = importlib.machinery.PathFinder.find_spec(fullname, path)
        if fullname in (DRN_PACKAGE, DRN_MODULE):
            if real is not None:
                return None  # real (or installed placeholder) sources
            return importlib.util.spec_from_loader(
                fullname,
                _DRNPlaceholderLoader(),
                origin=f'<{MARKER}>',
                is_package=fullname == DRN_PACKAGE)
        if real is None or real.loader is None:
            return None
        if fullname in _POST_IMPORT_PATCHES:
            real.loader = _PatchAfterImportLoader(
                real.loader, _POST_IMPORT_PATCHES[fullname])
            return real
        if fullname == VINDLU_PACKAGE:
            real.loader = _VindLUFallbackLoader(real.loader)
            return real
        if fullname == CLIP_MODULE:
            if not isinstance(real.loader,
                              importlib.machinery.SourceFileLoader):
                return None
            try:
                with open(real.origin, encoding='utf-8') as f:
                    _, needed = _patch_clip_source(f.read())
            except (OSError, UnicodeDecodeError):
                return None
            if not needed:
                return None
            real.loader = _ClipPatchedLoader(fullname, real.origin)
            return real
        return None


def _get_finder() -> _CompatFinder:
    """Return the installed :class:`_CompatFinder`, installing it once.

    Returns:
        _CompatFinder: The finder at the front of ``sys.meta_path``.
    """
    for finder in sys.meta_path:
        if getattr(finder, '_actionclip_compat_finder', False):
            return finder
    finder = _CompatFinder()
    # In front, because the VindLU and clip fixes wrap the loaders that
    # the regular path finder would otherwise use directly.
    sys.meta_path.insert(0, finder)
    return finder


def fix_drn_import() -> bool:
    """Make ``mmaction.models.localizers.drn.drn`` resolve (breakage a).

    The mmaction2 1.2.0 wheel does not ship the DRN sources, so
    ``import mmaction.models`` fails. If the sources are missing when they
    are imported, an in-memory placeholder identical to the one the
    install step writes is used; real sources always win.

    Returns:
        bool: Whether the import hook is active (False when
        ``mmaction.models`` was already imported).
    """
    if 'mmaction.models' in sys.modules:
        return False
    _get_finder().targets.update((DRN_PACKAGE, DRN_MODULE))
    return True


def fix_vindlu_import() -> bool:
    """Fall back to placeholders if VindLU fails to import (breakage b).

    mmaction2 1.2.0 imports VindLU whenever ``transformers>=4.28`` is
    installed, and recent transformers releases break that import, which
    breaks ``import mmaction.models`` for everybody. The real loader is
    wrapped so that any failure registers mmaction's own placeholders
    (with a warning) instead.

    Returns:
        bool: Whether the import hook is active (False when
        ``mmaction.models`` was already imported).
    """
    if 'mmaction.models' in sys.modules:
        return False
    _get_finder().targets.add(VINDLU_PACKAGE)
    return True


def fix_importlib_metadata() -> bool:
    """Provide ``importlib_metadata`` if it is missing (breakage c).

    mmaction2 1.2.0 imports the ``importlib_metadata`` backport without
    declaring it. Our requirements install it; where they were not used,
    the standard library's ``importlib.metadata`` offers the two names
    mmaction needs (``distribution`` and ``PackageNotFoundError``).

    Returns:
        bool: Whether the alias was installed.
    """
    if sys.modules.get('importlib_metadata') is not None:
        return False
    try:
        import importlib_metadata  # noqa: F401
    except ImportError:
        import importlib.metadata
        sys.modules['importlib_metadata'] = importlib.metadata
        return True
    return False


def fix_clip_pkg_resources() -> bool:
    """Make ``clip/clip.py`` importable without ``pkg_resources`` (d).

    clip does ``from pkg_resources import packaging``, which fails on
    setuptools >= 70 and on setuptools without ``pkg_resources``, while
    torch 2.14 requires setuptools >= 77. When ``clip.clip`` is imported,
    its source is compiled with that line replaced by
    ``import packaging.version``. This neither imports ``pkg_resources``
    nor puts a fake one in ``sys.modules``, which could mislead other
    libraries that check for it.

    Returns:
        bool: Whether the import hook is active (False when ``clip.clip``
        was already imported).
    """
    if CLIP_MODULE in sys.modules:
        return False
    _get_finder().targets.add(CLIP_MODULE)
    return True


def fix_dist_without_gpu() -> bool:
    """Let distributed runs start on a machine without a GPU (breakage e).

    MMEngine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device`` for the
    pytorch and slurm launchers whatever the backend, and its Runner wraps
    the model in ``MMDistributedDataParallel(device_ids=[LOCAL_RANK])``,
    which PyTorch refuses for a model on the CPU. So a config run with
    ``--launcher pytorch`` or ``slurm`` and
    ``env_cfg.dist_cfg.backend='gloo'`` failed on CPUs. Only while CUDA is
    unavailable, ``set_device`` is skipped and a CPU model is wrapped
    without ``device_ids``; with a GPU nothing changes. The modules are
    patched in place, now or when they are imported.

    Returns:
        bool: Always True: the patch is in place or will be on import.
    """
    for name, patch in _POST_IMPORT_PATCHES.items():
        module = sys.modules.get(name)
        if module is not None:
            patch(module)
        else:
            _get_finder().targets.add(name)
    return True


def apply_runtime_fixes() -> Dict[str, bool]:
    """Apply all runtime fixes; idempotent and cheap.

    Call it before anything imports ``mmaction.models`` or ``clip``.
    Modules that were already imported are left alone.

    Returns:
        dict[str, bool]: For each fix, whether it is active.
    """
    return dict(
        importlib_metadata=fix_importlib_metadata(),
        drn=fix_drn_import(),
        vindlu=fix_vindlu_import(),
        clip=fix_clip_pkg_resources(),
        dist_without_gpu=fix_dist_without_gpu())


# ---------------------------------------------------------------------------
# Install-time patch
# ---------------------------------------------------------------------------


def _read(path: str) -> Optional[str]:
    """Return the text of ``path``, or None if it does not exist."""
    try:
        with open(path, encoding='utf-8', newline='') as f:
            return f.read()
    except FileNotFoundError:
        return None


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
    init_text = _read(osp.join(localizers, '__init__.py'))
    if init_text is None:
        raise CompatError(f'{localizers}/__init__.py not found')
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
    text = _read(path)
    if text is None:
        raise CompatError(f'{path} not found')
    done = f'{path} falls back to placeholders if VindLU fails to import'
    todo = (f'{path} breaks `import mmaction.models` when an incompatible '
            'transformers is installed')
    if text == MULTIMODAL_PATCHED:
        return _Plan([], done, todo)
    if text.replace('\r\n', '\n') == MULTIMODAL_ORIGINAL or MARKER in text:
        return _Plan([(path, MULTIMODAL_PATCHED)], done, todo)
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
    text = _read(path)
    if text is None:
        raise CompatError(f'{path} not found')
    new_text, changed = _patch_clip_source(text)
    if changed:
        return _Plan([(path, new_text)], '',
                     f'{path} imports pkg_resources.packaging, which '
                     'setuptools 70 lacks and setuptools >= 82 removed '
                     'with all of pkg_resources')
    if MARKER in text:
        return _Plan([], f'{path} uses packaging.version', '')
    return _Plan([], f'not needed: {path} does not use pkg_resources', '')


def plan_mim_click_unset(site_root: Optional[str] = None) -> _Plan:
    """Plan making mim's commands see None for options not given (fix f).

    Args:
        site_root (str, optional): site-packages directory to patch.
            Defaults to None: the one mim is installed in.

    Returns:
        _Plan: Files to write and what to report.
    """
    try:
        pkg = _package_dir('mim', site_root)
    except CompatError:
        return _Plan([], 'not needed: openmim is not installed', '')
    path = osp.join(pkg, 'click', 'customcommand.py')
    text = _read(path)
    if text is None:
        return _Plan([], f'not needed: {path} does not exist (another '
                     'openmim than 0.3.9)', '')
    new_text, changed = _patch_mim_parse_args_source(text)
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
    try:
        pkg = _package_dir('mim', site_root)
    except CompatError:
        return _Plan([], 'not needed: openmim is not installed', '')
    edits, done = [], []
    for command in ('train', 'test'):
        path = osp.join(pkg, 'commands', f'{command}.py')
        text = _read(path)
        if text is None or MIM_LAUNCH_PATCHED in text:
            done.append(path)
        elif text.count(_MIM_LAUNCH) == 1:
            edits.append((path, text.replace(_MIM_LAUNCH,
                                             MIM_LAUNCH_PATCHED)))
    if edits:
        return _Plan(
            edits, '', ', '.join(p for p, _ in edits) + ' turn a failed '
            'script into a traceback of mim\'s and exit status 1')
    if done:
        return _Plan([], 'mim train/test exit with the script\'s status', '')
    return _Plan([], 'not needed: this mim launches its scripts '
                 'differently', '')


_PLANS = (('drn-placeholder', plan_drn_placeholder),
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


if __name__ == '__main__':
    # As a plain script, sys.path[0] is models/, whose modules must not
    # shadow the packages being patched.
    if sys.path and osp.abspath(sys.path[0]) == osp.dirname(
            osp.abspath(__file__)):
        sys.path.pop(0)
    sys.exit(main())

"""Import hooks that repair breakages a-c (:mod:`models.compat`) in memory:
a meta path finder supplies the DRN placeholder where the sources are
missing and compiles mmaction's multimodal package and ``clip/clip.py``
with the rewrites of :mod:`.patches`. Standard library only.
"""
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from typing import Callable, Dict, Optional, Sequence, Tuple

from .patches import (DRN_INIT_SOURCE, DRN_PLACEHOLDER_SOURCE, MARKER,
                      patch_clip_source, patch_multimodal_source)

DRN_PACKAGE = 'mmaction.models.localizers.drn'
DRN_MODULE = DRN_PACKAGE + '.drn'
MULTIMODAL_PACKAGE = 'mmaction.models.multimodal'
CLIP_MODULE = 'clip.clip'

#: Modules compiled from rewritten source: name -> rewrite.
_SOURCE_PATCHES: Dict[str, Callable[[str], Tuple[str, bool]]] = {
    MULTIMODAL_PACKAGE: patch_multimodal_source,
    CLIP_MODULE: patch_clip_source,
}


class _DRNPlaceholderLoader(importlib.abc.Loader):
    """Creates the placeholder DRN package and module in memory."""

    def exec_module(self, module: types.ModuleType) -> None:
        if module.__name__ == DRN_MODULE:
            code = compile(DRN_PLACEHOLDER_SOURCE,
                           f'<{MARKER}: placeholder drn.py>', 'exec')
        else:
            code = compile(DRN_INIT_SOURCE,
                           f'<{MARKER}: placeholder drn/__init__.py>', 'exec')
        exec(code, module.__dict__)


class _PatchedSourceLoader(importlib.machinery.SourceFileLoader):
    """Loads a source file compiled from the text ``patch`` rewrites."""

    def __init__(self, fullname: str, path: str,
                 patch: Callable[[str], Tuple[str, bool]]) -> None:
        super().__init__(fullname, path)
        self._patch = patch

    def get_code(self, fullname: str) -> types.CodeType:
        """Compile the rewritten source, bypassing the unpatched ``.pyc``."""
        source, _ = self._patch(self.get_source(fullname))
        return compile(source, self.path, 'exec', dont_inherit=True)


class _CompatFinder(importlib.abc.MetaPathFinder):
    """Meta path finder for the module names in :attr:`targets` (one set
    lookup for every other import)."""

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
        """A patched spec for a target, else None."""
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
        patch = _SOURCE_PATCHES.get(fullname)
        if patch is None or not isinstance(
                real.loader, importlib.machinery.SourceFileLoader):
            return None
        try:
            with open(real.origin, encoding='utf-8') as f:
                _, needed = patch(f.read())
        except (OSError, UnicodeDecodeError):
            return None
        if not needed:
            return None  # another version, already fixed
        real.loader = _PatchedSourceLoader(fullname, real.origin, patch)
        return real


def _get_finder() -> _CompatFinder:
    """The :class:`_CompatFinder` on ``sys.meta_path``, installed once."""
    for finder in sys.meta_path:
        if getattr(finder, '_actionclip_compat_finder', False):
            return finder
    finder = _CompatFinder()
    # In front, because the VindLU and clip fixes replace the loaders that
    # the regular path finder would otherwise use directly.
    sys.meta_path.insert(0, finder)
    return finder


def fix_drn_import() -> bool:
    """Breakage a: a DRN placeholder where the sources are missing (real
    sources win). Returns whether the hook is active (False once
    ``mmaction.models`` is imported)."""
    if 'mmaction.models' in sys.modules:
        return False
    _get_finder().targets.update((DRN_PACKAGE, DRN_MODULE))
    return True


def fix_vindlu_import() -> bool:
    """Breakage b: mmaction's multimodal package compiled so that a failed
    VindLU import registers mmaction's placeholders, with a warning.
    Returns whether the hook is active (False once ``mmaction.models`` is
    imported)."""
    if 'mmaction.models' in sys.modules:
        return False
    _get_finder().targets.add(MULTIMODAL_PACKAGE)
    return True


def fix_clip_pkg_resources() -> bool:
    """Breakage c: ``clip/clip.py`` compiled with ``import
    packaging.version`` for its ``pkg_resources`` import (no fake
    ``pkg_resources``). Returns whether the hook is active (False once
    ``clip.clip`` is imported)."""
    if CLIP_MODULE in sys.modules:
        return False
    _get_finder().targets.add(CLIP_MODULE)
    return True


def apply_runtime_fixes() -> Dict[str, bool]:
    """Apply every fix (idempotent) before ``mmaction.models`` or ``clip``
    is imported; returns whether each is active."""
    return dict(
        drn=fix_drn_import(),
        vindlu=fix_vindlu_import(),
        clip=fix_clip_pkg_resources())

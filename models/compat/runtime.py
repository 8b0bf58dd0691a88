"""Runtime fixes: import hooks that repair the stack as it is imported.

:func:`apply_runtime_fixes`, called when our ``models`` package is
imported, repairs breakages a-d (see :mod:`models.compat`) in memory,
without writing any installed file. A meta path finder reacts to a few
module names: it supplies the DRN placeholder when the sources are
missing, and compiles mmaction's multimodal package and clip's
``clip.py`` with the rewrites of :mod:`.patches`. Idempotent; imports
only the standard library.
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

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        """Use the default module creation."""
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        """Run the placeholder code (:mod:`.patches`) in ``module``."""
        if module.__name__ == DRN_MODULE:
            code = compile(DRN_PLACEHOLDER_SOURCE,
                           f'<{MARKER}: placeholder drn.py>', 'exec')
        else:
            code = compile(DRN_INIT_SOURCE,
                           f'<{MARKER}: placeholder drn/__init__.py>', 'exec')
        exec(code, module.__dict__)


class _PatchedSourceLoader(importlib.machinery.SourceFileLoader):
    """Loads the source file ``path`` of module ``fullname`` compiled from
    the text rewritten by ``patch`` (one of :mod:`.patches`: it returns
    the new text and whether it changed anything)."""

    def __init__(self, fullname: str, path: str,
                 patch: Callable[[str], Tuple[str, bool]]) -> None:
        super().__init__(fullname, path)
        self._patch = patch

    def get_code(self, fullname: str) -> types.CodeType:
        """Compile the rewritten source.

        The bytecode cache is bypassed on purpose: a cached ``.pyc`` of the
        unpatched file would otherwise be used as is.
        """
        source, _ = self._patch(self.get_source(fullname))
        return compile(source, self.path, 'exec', dont_inherit=True)


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
        """A patched spec for one of the patched modules, else None to let
        the other finders handle the import."""
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
    """The :class:`_CompatFinder` at the front of ``sys.meta_path``,
    installed once."""
    for finder in sys.meta_path:
        if getattr(finder, '_actionclip_compat_finder', False):
            return finder
    finder = _CompatFinder()
    # In front, because the VindLU and clip fixes replace the loaders that
    # the regular path finder would otherwise use directly.
    sys.meta_path.insert(0, finder)
    return finder


def fix_drn_import() -> bool:
    """Make ``mmaction.models.localizers.drn.drn`` resolve (breakage a).

    The mmaction2 1.2.0 wheel does not ship the DRN sources, so
    ``import mmaction.models`` fails. If the sources are missing when they
    are imported, an in-memory placeholder is used; real sources always
    win. Returns whether the import hook is active (False when
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
    breaks ``import mmaction.models`` for everybody. mmaction2 1.2.0's
    ``mmaction/models/multimodal/__init__.py`` is compiled with a
    fallback: any failure registers mmaction's own placeholders (with a
    warning) instead. Returns whether the import hook is active (False
    when ``mmaction.models`` was already imported).
    """
    if 'mmaction.models' in sys.modules:
        return False
    _get_finder().targets.add(MULTIMODAL_PACKAGE)
    return True


def fix_importlib_metadata() -> bool:
    """Provide ``importlib_metadata`` if it is missing (breakage c).

    mmaction2 1.2.0 imports the ``importlib_metadata`` backport without
    declaring it. Our requirements install it; where they were not used,
    the standard library's ``importlib.metadata`` offers the two names
    mmaction needs (``distribution`` and ``PackageNotFoundError``).
    Returns whether the alias was installed.
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
    setuptools without ``pkg_resources`` (>= 82; torch 2.14 requires
    setuptools >= 77) and prints a deprecation warning on 81. When
    ``clip.clip`` is imported, its source is compiled with that line
    replaced by ``import packaging.version``. This neither imports
    ``pkg_resources`` nor puts a fake one in ``sys.modules``, which could
    mislead other libraries that check for it. Returns whether the import
    hook is active (False when ``clip.clip`` was already imported).
    """
    if CLIP_MODULE in sys.modules:
        return False
    _get_finder().targets.add(CLIP_MODULE)
    return True


def apply_runtime_fixes() -> Dict[str, bool]:
    """Apply all runtime fixes; idempotent and cheap.

    Call it before anything imports ``mmaction.models`` or ``clip``.
    Modules that were already imported are left alone. Returns, for
    each fix, whether it is active.
    """
    return dict(
        importlib_metadata=fix_importlib_metadata(),
        drn=fix_drn_import(),
        vindlu=fix_vindlu_import(),
        clip=fix_clip_pkg_resources())

"""Compatibility fixes for the pinned stack (mmaction2 1.2.0, clip-anytorch
2.6.0), applied in memory when ``models`` is imported (:mod:`.runtime`);
no installed file is written. ``python models/compat --check/--repair``
(:mod:`.cli`) checks the installed wheels' files (:mod:`.wheels`).
Standard library and relative imports only, so that it runs without
``models/__init__.py``.

a. The mmaction2 1.2.0 wheel lacks ``mmaction/models/localizers/drn``,
   which ``mmaction.models`` imports.
b. mmaction2 imports VindLU whenever ``transformers>=4.28`` is installed,
   and recent transformers releases break that import.
c. ``clip/clip.py`` does ``from pkg_resources import packaging``, which
   fails on setuptools >= 82 and warns on 81.
(mmaction2's undeclared ``importlib_metadata``: requirements/runtime.txt.)
"""
from .cli import main
from .patches import MARKER
from .runtime import (apply_runtime_fixes, fix_clip_pkg_resources,
                      fix_drn_import, fix_vindlu_import)
from .wheels import changed_files

__all__ = [
    'MARKER', 'apply_runtime_fixes', 'changed_files',
    'fix_clip_pkg_resources', 'fix_drn_import', 'fix_vindlu_import', 'main'
]

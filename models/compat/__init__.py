"""Compatibility fixes for the software stack ActionCLIP runs on.

The pinned stack (mmaction2 1.2.0 from PyPI, clip-anytorch 2.6.0, mmengine
0.10.7) breaks in a few places. :func:`apply_runtime_fixes`
(:mod:`.runtime`), called when our ``models`` package is imported (configs
import it before MMAction2 builds anything), repairs them in memory; no
installed file is ever written. :mod:`.wheels` checks that the installed
distributions still hold their wheels' files, and ``python models/compat
--repair`` (``make install``, :mod:`.cli`) reinstalls those that do not.
The package imports only the standard library at import time, and only
relatively, so that it runs without ``models/__init__.py`` (see
:mod:`.__main__`).

The breakages fixed here:

a. The mmaction2 1.2.0 wheel lacks ``mmaction/models/localizers/drn``
   (upstream has no ``__init__.py`` there, so it was not packaged), yet
   ``mmaction/models/localizers/__init__.py`` imports ``DRN`` from it.
b. mmaction2 imports its VindLU code whenever ``transformers>=4.28`` is
   installed, and recent transformers releases break that import.
c. mmaction2 imports ``importlib_metadata`` without declaring it.
d. ``clip/clip.py`` does ``from pkg_resources import packaging``, which
   fails on setuptools without ``pkg_resources`` (>= 82) and warns on
   81.

openmim 0.3.9's breakages are handled outside this package, because mim's
own process never imports the plugin: click is pinned below 8.3 (whose
``UNSET`` sentinel mim's copy of ``parse_args`` passes on), and
``docs/troubleshooting.md`` gives the one-line way to get the script's
exit status that ``mim train``/``mim test`` replace by 1; mmengine
0.10.7's distributed runs without a GPU, by the configs' runner
(:mod:`models.engine.runner`).
"""
# Relative imports: the package is also loaded under a name of its own
# (``python models/compat``, tests that keep models/__init__.py out).
from .cli import main
from .patches import (CLIP_REPLACEMENT_LINE, DRN_INIT_SOURCE,
                      DRN_PLACEHOLDER_SOURCE, MARKER, MULTIMODAL_ORIGINAL,
                      MULTIMODAL_PATCHED)
from .runtime import (apply_runtime_fixes, fix_clip_pkg_resources,
                      fix_drn_import, fix_importlib_metadata,
                      fix_vindlu_import)
from .wheels import Damage, changed_files, damaged_distributions

__all__ = [
    'CLIP_REPLACEMENT_LINE', 'DRN_INIT_SOURCE', 'DRN_PLACEHOLDER_SOURCE',
    'MARKER', 'MULTIMODAL_ORIGINAL', 'MULTIMODAL_PATCHED', 'Damage',
    'apply_runtime_fixes', 'changed_files', 'damaged_distributions',
    'fix_clip_pkg_resources', 'fix_drn_import', 'fix_importlib_metadata',
    'fix_vindlu_import', 'main'
]

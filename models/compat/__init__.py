"""Compatibility fixes for the software stack ActionCLIP runs on.

The pinned stack (mmaction2 1.2.0 from PyPI, clip-anytorch 2.6.0, torch
2.14 with setuptools >= 77, openmim 0.3.9 with click >= 8.3) cannot be
used as installed. This package fixes it in two layers:

* :mod:`.install`: a patch of the installed files, run by ``make install``
  as ``python models/compat --install`` (``--check`` reports the state;
  :mod:`.cli`);
* :mod:`.runtime`: :func:`apply_runtime_fixes`, called when our ``models``
  package is imported, which makes the same imports work in environments
  where the install step never ran (e.g. a user's own GPU environment).

Both layers are idempotent and write or compile the same texts
(:mod:`.patches`). The package imports only the standard library at import
time, and only relatively, so that it runs before mmaction is importable
and without ``models/__init__.py`` (see :mod:`.__main__`).

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
# Relative imports: the package is also loaded under a name of its own
# (``python models/compat``, tests that keep models/__init__.py out).
from .cli import main
from .install import CompatError, FixResult, run_install_fixes
from .patches import (CLIP_REPLACEMENT_LINE, DRN_INIT_SOURCE,
                      DRN_PLACEHOLDER_SOURCE, MARKER, MIM_LAUNCH_ORIGINAL,
                      MIM_LAUNCH_PATCHED, MIM_UNSET_BLOCK,
                      MULTIMODAL_ORIGINAL, MULTIMODAL_PATCHED)
from .runtime import (apply_runtime_fixes, fix_clip_pkg_resources,
                      fix_dist_without_gpu, fix_drn_import,
                      fix_importlib_metadata, fix_vindlu_import)

__all__ = [
    'CLIP_REPLACEMENT_LINE', 'DRN_INIT_SOURCE', 'DRN_PLACEHOLDER_SOURCE',
    'MARKER', 'MIM_LAUNCH_ORIGINAL', 'MIM_LAUNCH_PATCHED', 'MIM_UNSET_BLOCK',
    'MULTIMODAL_ORIGINAL', 'MULTIMODAL_PATCHED', 'CompatError', 'FixResult',
    'apply_runtime_fixes', 'fix_clip_pkg_resources', 'fix_dist_without_gpu',
    'fix_drn_import', 'fix_importlib_metadata', 'fix_vindlu_import', 'main',
    'run_install_fixes'
]

"""Modules of the plugin read without importing the ``models`` package.

Importing ``models`` loads torch, MMAction2 and the stack fixes (seconds,
and in every worker process of a tool). The tools that need only a
standard-library module of it (``models/utils/safe_io.py``,
``models/apis/cli.py`` until a model is loaded,
``models/datasets/decoder_info.py``) read that file by itself: ``--help``
and a wrong option then answer at once. This file is not a tool; the tools
beside it import it (a script's folder is on ``sys.path``).
"""
import importlib
import importlib.util
import os.path as osp
import sys
from types import ModuleType

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_light(name: str) -> ModuleType:
    """A module of the plugin, without its package when not loaded yet.

    Args:
        name (str): Dotted name, e.g. ``'models.utils.safe_io'``.

    Returns:
        ModuleType: The package's own module when ``models`` is already
        imported (so that its classes are the ones the rest of the plugin
        raises and checks), else the file loaded by itself, once.
    """
    if 'models' in sys.modules:
        return importlib.import_module(name)
    alias = '_actionclip_light_' + name.replace('.', '_')
    if alias not in sys.modules:
        path = osp.join(ROOT, *name.split('.')) + '.py'
        spec = importlib.util.spec_from_file_location(alias, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[alias] = module
        spec.loader.exec_module(module)
    return sys.modules[alias]

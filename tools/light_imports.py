"""Modules of the plugin read without importing the ``models`` package.

Importing ``models`` loads torch, MMAction2 and the stack fixes (seconds,
and in every worker process of a tool). The tools that need only a
standard-library module of it (``models/utils/safe_io.py``,
``models/apis/cli.py`` until a model is loaded,
``models/datasets/decoder_info.py``) read that file by itself: ``--help``
and a wrong option then answer at once. Such a module may import its
standard-library siblings relatively (``from .moment_metrics import x``):
they are read by themselves too. This file is not a tool; the tools
beside it import it (a script's folder is on ``sys.path``), which also
puts the project's root on ``sys.path``: the package is then imported by
name when a tool runs from any folder.
"""
import importlib
import os.path as osp
import sys
from types import ModuleType

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
#: The light modules live under this name (``_actionclip_light.models.
#: apis.cli``), beside the real package, whose ``__init__`` files they skip.
PREFIX = '_actionclip_light'


def load_light(name: str) -> ModuleType:
    """The module of the plugin of dotted ``name`` (e.g.
    ``'models.utils.safe_io'``): the package's own when ``models`` is
    already imported (so that its classes are the ones the rest of the
    plugin raises and checks), else the file loaded by itself, once."""
    if 'models' in sys.modules:
        return importlib.import_module(name)
    parts = name.split('.')
    # Empty packages whose __path__ is the real folder: the import system
    # then finds the files (and a module's relative imports) there, and no
    # __init__.py runs.
    for k in range(len(parts)):
        package = '.'.join([PREFIX, *parts[:k]])
        if package not in sys.modules:
            module = ModuleType(package)
            module.__path__ = [osp.join(ROOT, *parts[:k])]
            sys.modules[package] = module
    return importlib.import_module(f'{PREFIX}.{name}')

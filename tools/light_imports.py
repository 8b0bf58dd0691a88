"""Modules of the plugin read without importing the ``models`` package
(which loads torch and MMAction2: seconds), so that ``--help`` and a wrong
option answer at once. Such a module uses only the standard library and its
standard-library siblings. Not a tool: the tools import it (a script's
folder is on ``sys.path``), which also puts the project's root there.
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
    """The plugin's module ``name`` (e.g. ``'models.utils.safe_io'``): the
    package's own once ``models`` is imported (its classes are the ones the
    plugin raises), else the file loaded by itself, once."""
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

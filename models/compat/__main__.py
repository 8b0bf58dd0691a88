"""``python models/compat`` (``make install``) and ``python -m models.compat``.

Run as a folder, the package is imported under a name of its own, without
``models/__init__.py`` (torch, mmaction: slow, broken in a damaged install)
and without the folder on ``sys.path`` (it would shadow e.g. ``patches``).
"""
import importlib.util
import os.path as osp
import sys

if __package__:
    from .cli import main
else:
    _HERE = osp.dirname(osp.abspath(__file__))
    if sys.path and osp.abspath(sys.path[0]) == _HERE:
        sys.path.pop(0)
    _spec = importlib.util.spec_from_file_location(
        'actionclip_compat',
        osp.join(_HERE, '__init__.py'),
        submodule_search_locations=[_HERE])
    _package = importlib.util.module_from_spec(_spec)
    # Registered first: the package's relative imports look it up there.
    sys.modules[_spec.name] = _package
    _spec.loader.exec_module(_package)
    main = _package.main

if __name__ == '__main__':
    sys.exit(main())

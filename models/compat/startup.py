"""A startup hook for the venv: the DRN placeholder before any import.

The mmaction2 1.2.0 wheel lacks ``mmaction/models/localizers/drn`` (breakage
a), so ``import mmaction.models`` fails in any process that has not
imported this plugin first, e.g. one that calls MMAction2's
``register_all_modules()`` before its config brings the plugin in. A
``.pth`` file of our own in site-packages runs :func:`.runtime.fix_drn_import`
when Python starts: the placeholder is used only where the module is
missing, and no installed package's file is written or changed.
"""
import os
import os.path as osp
import sysconfig

#: The hook's file name in site-packages.
HOOK_NAME = 'actionclip-mmaction2-drn.pth'


def hook_line(compat_dir: str) -> str:
    """The ``.pth`` line: site runs lines that start with ``import``.

    It loads this package's ``runtime`` module (standard library only)
    under a name of its own, without ``models/__init__.py``, and does
    nothing once the checkout is gone (``compat_dir``: this package's
    folder).
    """
    return ('import os, sys, types, importlib; '
            f'p = {compat_dir!r}; '
            "m = types.ModuleType('_actionclip_compat'); m.__path__ = [p]; "
            "os.path.isfile(os.path.join(p, 'runtime.py')) and ("
            "sys.modules.setdefault('_actionclip_compat', m), "
            "importlib.import_module('_actionclip_compat.runtime')"
            '.fix_drn_import())\n')


def install_hook(site_dir: str = '') -> str:
    """Write the hook into ``site_dir`` (this interpreter's site-packages
    by default), whole or not at all; returns its path."""
    site_dir = site_dir or sysconfig.get_paths()['purelib']
    path = osp.join(site_dir, HOOK_NAME)
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(hook_line(osp.dirname(osp.abspath(__file__))))
    os.replace(tmp, path)
    return path

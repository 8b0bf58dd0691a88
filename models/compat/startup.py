"""A ``.pth`` startup hook of our own in site-packages that runs
:func:`.runtime.fix_drn_import` when Python starts, so that ``import
mmaction.models`` works before the plugin is imported (breakage a); no
installed package's file is changed.
"""
import os
import os.path as osp
import sysconfig

#: The hook's file name in site-packages.
HOOK_NAME = 'actionclip-mmaction2-drn.pth'


def hook_line(compat_dir: str) -> str:
    """The ``.pth`` line (site runs lines starting with ``import``): loads
    ``compat_dir``'s ``runtime`` under a name of its own; a no-op once
    the checkout is gone."""
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

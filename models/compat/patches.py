"""What the fixes write: placeholder sources, patched sources and the text
rewrites that produce them.

Both layers use these: the install step writes them into site-packages,
the runtime layer compiles the same text in memory. Each fix is therefore
written once, and an environment behaves the same whichever layer fixed
it.

The texts are byte-identical to what earlier versions of this project
wrote (their comments name ``models/compat.py``, where they were first
written from), so that files patched then are recognised as patched and
the pristine wheels' contents can be restored from them in tests.
"""
import re
from typing import Tuple

#: Written into every file this package creates or patches, so that later
#: runs recognise their own work.
MARKER = 'actionclip-compat'

DRN_INIT_SOURCE = f'''\
# Written by the ActionCLIP project (models/compat.py, {MARKER}).
# The mmaction2 1.2.0 wheel on PyPI does not ship this package: upstream
# has no drn/__init__.py, so setuptools left it out of the wheel and
# ``import mmaction.models`` failed. See drn.py.
"""Placeholder package for mmaction2's DRN temporal grounding model."""
'''

DRN_PLACEHOLDER_SOURCE = f'''\
# Written by the ActionCLIP project (models/compat.py, {MARKER}).
# The mmaction2 1.2.0 wheel on PyPI does not ship the DRN sources (upstream
# has no drn/__init__.py, so setuptools left them out of the wheel), which
# made ``import mmaction.models`` fail. ActionCLIP does not use DRN; this
# placeholder keeps ``DRN`` registered in MODELS, as the real module does,
# and explains how to get the real model when somebody tries to build it.
"""Placeholder for mmaction2's DRN temporal grounding model."""
from mmaction.registry import MODELS

DRN_UNAVAILABLE_MESSAGE = (
    'DRN is not available: the mmaction2 1.2.0 wheel on PyPI does not '
    'ship mmaction/models/localizers/drn, so the ActionCLIP project '
    'installed a placeholder. To use DRN, install mmaction2 from source: '
    '`git clone https://github.com/open-mmlab/mmaction2.git && '
    'cd mmaction2 && pip install -v -e .`')


@MODELS.register_module()
class DRN:
    """Placeholder for ``DRN`` that raises ImportError when built."""

    def __init__(self, *args, **kwargs) -> None:
        raise ImportError(DRN_UNAVAILABLE_MESSAGE)


__all__ = ['DRN']
'''

# ``mmaction/models/multimodal/__init__.py`` exactly as mmaction2 1.2.0
# ships it; only this content is rewritten.
MULTIMODAL_ORIGINAL = '''\
# Copyright (c) OpenMMLab. All rights reserved.
from mmaction.utils.dependency import WITH_MULTIMODAL

if WITH_MULTIMODAL:
    from .vindlu import *  # noqa: F401,F403

else:
    from mmaction.registry import MODELS
    from mmaction.utils.dependency import register_multimodal_placeholder

    register_multimodal_placeholder(
        ['VindLUVQA', 'VindLURetrievalMC', 'VindLURetrieval'], MODELS)
'''

MULTIMODAL_PATCHED = f'''\
# Copyright (c) OpenMMLab. All rights reserved.
# Patched by the ActionCLIP project (models/compat.py, {MARKER}):
# mmaction2 1.2.0 imports VindLU whenever transformers>=4.28 is installed,
# and recent transformers releases break that import. Fall back to
# mmaction's own placeholders instead of breaking ``import mmaction.models``.
from mmaction.utils.dependency import WITH_MULTIMODAL

if WITH_MULTIMODAL:
    try:
        from .vindlu import *  # noqa: F401,F403
    except Exception as _vindlu_error:
        import warnings

        warnings.warn(
            'mmaction2 could not import its VindLU models '
            f'({{type(_vindlu_error).__name__}}: {{_vindlu_error}}); the '
            'installed transformers is probably too new for mmaction2 '
            '1.2.0. VindLU models are replaced by placeholders that raise '
            'ImportError when built.')
        WITH_MULTIMODAL = False

if not WITH_MULTIMODAL:
    from mmaction.registry import MODELS
    from mmaction.utils.dependency import register_multimodal_placeholder

    # One name per call: register_multimodal_placeholder's closure binds
    # the loop variable late, so its messages would all name the last one.
    for _name in ['VindLUVQA', 'VindLURetrievalMC', 'VindLURetrieval']:
        if _name not in MODELS.module_dict:
            register_multimodal_placeholder([_name], MODELS)
'''

_CLIP_PKG_RESOURCES_RE = re.compile(
    r'^from pkg_resources import packaging[ \t]*$', re.MULTILINE)
# A single line, so that line numbers in clip tracebacks stay right.
# ``packaging`` is a dependency of mmcv, and ``packaging.version.parse``
# is all that clip uses.
CLIP_REPLACEMENT_LINE = (f'import packaging.version  # {MARKER}: was '
                         '"from pkg_resources import packaging"')

# The loop of ``CustomCommand.parse_args`` in openmim 0.3.9's
# ``mim/click/customcommand.py`` (a copy of click < 8.3's
# ``Command.parse_args``); the block below is inserted after it.
_MIM_PARSE_LOOP_RE = re.compile(
    r'^(?P<indent>[ \t]+)for param in iter_params_for_processing\('
    r'(?:[^()]|\([^()]*\))*\):[ \t]*\n'
    r'[ \t]+value, args = param\.handle_parse_result\(ctx, opts, args\)'
    r'[ \t]*\n', re.MULTILINE)
# What click >= 8.3's own ``Command.parse_args`` does after that loop. On
# click < 8.3 there is no ``click.core.UNSET`` and this changes nothing.
MIM_UNSET_BLOCK = f'''\
        # Patched by the ActionCLIP project (models/compat.py,
        # {MARKER}): click >= 8.3 keeps its UNSET sentinel as the
        # value of an option without a default until Command.parse_args
        # turns it into None, which this copy of parse_args did not do;
        # mim then failed, e.g. `mim train --launcher slurm` without
        # --srun-args ('Sentinel' object has no attribute 'split').
        for name, value in ctx.params.items():
            if value is getattr(click.core, 'UNSET', None):
                ctx.params[name] = None
'''

#: How openmim 0.3.9's train and test commands launch MMAction2's script.
MIM_LAUNCH_ORIGINAL = '''\
    ret = subprocess.check_call(
        cmd, env=dict(os.environ, MASTER_PORT=str(port)))
'''
MIM_LAUNCH_PATCHED = f'''\
    # Patched by the ActionCLIP project (models/compat.py, {MARKER}):
    # the script's own exit status (2: a refused input, already explained
    # in one line) instead of a traceback of mim's and status 1.
    try:
        ret = subprocess.check_call(
            cmd, env=dict(os.environ, MASTER_PORT=str(port)))
    except subprocess.CalledProcessError as error:
        raise SystemExit(error.returncode) from None
'''


def patch_clip_source(source: str) -> Tuple[str, bool]:
    """Replace clip's ``pkg_resources`` import with ``packaging.version``
    (fix d).

    Args:
        source (str): Text of ``clip/clip.py``.

    Returns:
        tuple[str, bool]: The new text and whether anything was replaced.
    """
    new_source, count = _CLIP_PKG_RESOURCES_RE.subn(CLIP_REPLACEMENT_LINE,
                                                    source)
    return new_source, count > 0


def patch_multimodal_source(source: str) -> Tuple[str, bool]:
    """Make mmaction's multimodal package fall back to placeholders when
    VindLU fails to import (fix b).

    Args:
        source (str): Text of ``mmaction/models/multimodal/__init__.py``.

    Returns:
        tuple[str, bool]: :data:`MULTIMODAL_PATCHED` and True for
        mmaction2 1.2.0's file (whatever its line endings) or an earlier
        patch of ours; otherwise ``source`` unchanged and False.
    """
    if source == MULTIMODAL_PATCHED:
        return source, False
    if (source.replace('\r\n', '\n') == MULTIMODAL_ORIGINAL
            or MARKER in source):
        return MULTIMODAL_PATCHED, True
    return source, False


def patch_mim_parse_args_source(source: str) -> Tuple[str, bool]:
    """Make mim's ``CustomCommand.parse_args`` turn click's ``UNSET`` into
    None, as click's own ``parse_args`` does (fix f).

    Args:
        source (str): Text of ``mim/click/customcommand.py``.

    Returns:
        tuple[str, bool]: The new text and whether anything was inserted.
        Nothing is when the loop is not there (another mim) or the file
        already deals with ``UNSET`` (a fixed mim, or patched before).
    """
    if MARKER in source or 'UNSET' in source:
        return source, False
    match = _MIM_PARSE_LOOP_RE.search(source)
    if match is None:
        return source, False
    indent = match.group('indent')
    block = ''.join(indent + line[8:] if line.strip() else line
                    for line in MIM_UNSET_BLOCK.splitlines(keepends=True))
    return source[:match.end()] + block + source[match.end():], True

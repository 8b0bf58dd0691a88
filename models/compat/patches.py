"""What the import-time fixes compile: placeholder sources, and the text
rewrites of installed modules (:mod:`.runtime` compiles them in memory;
nothing is written to disk)."""
import re
from typing import Tuple

#: Named in the origin of every module compiled from these texts.
MARKER = 'actionclip-compat'

DRN_INIT_SOURCE = f'''\
# Compiled in memory by the ActionCLIP plugin ({MARKER}): the mmaction2 1.2.0
# wheel lacks this package.
"""Placeholder package for mmaction2's DRN temporal grounding model."""
'''

DRN_PLACEHOLDER_SOURCE = f'''\
# Compiled in memory by the ActionCLIP plugin ({MARKER}): the mmaction2 1.2.0
# wheel lacks the DRN sources. This keeps ``DRN`` registered in MODELS and
# says how to get the real model when somebody tries to build it.
"""Placeholder for mmaction2's DRN temporal grounding model."""
from mmaction.registry import MODELS

DRN_UNAVAILABLE_MESSAGE = (
    'DRN is not available: the mmaction2 1.2.0 wheel on PyPI does not '
    'ship mmaction/models/localizers/drn, so the ActionCLIP plugin '
    'registered a placeholder. To use DRN, install mmaction2 from source: '
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
# Compiled in memory by the ActionCLIP plugin ({MARKER}): where recent
# transformers releases break the VindLU import, mmaction's placeholders.
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


def patch_clip_source(source: str) -> Tuple[str, bool]:
    """Replace clip's ``pkg_resources`` import with ``packaging.version``
    in the text of ``clip/clip.py`` (fix c): the new text and whether
    anything was replaced."""
    new_source, count = _CLIP_PKG_RESOURCES_RE.subn(CLIP_REPLACEMENT_LINE,
                                                    source)
    return new_source, count > 0


def patch_multimodal_source(source: str) -> Tuple[str, bool]:
    """Make mmaction's multimodal package fall back to placeholders when
    VindLU fails to import (fix b): :data:`MULTIMODAL_PATCHED` and True
    for mmaction2 1.2.0's ``mmaction/models/multimodal/__init__.py``
    (whatever its line endings); otherwise ``source`` unchanged and False.
    """
    if source.replace('\r\n', '\n') == MULTIMODAL_ORIGINAL:
        return MULTIMODAL_PATCHED, True
    return source, False

"""MessageHub state that loads under torch's ``weights_only=True``.

mmengine's :class:`~mmengine.logging.MessageHub` saves, in every training
checkpoint, :class:`~mmengine.logging.HistoryBuffer` objects (whose
pickles call ``builtins.getattr``) and numpy scalars (``best_score``), so
that mmengine 0.10.7 cannot load its own checkpoints since torch 2.6
made ``weights_only=True`` the default. :class:`ActionClipRunner
<models.engine.runner.ActionClipRunner>`, the runner of this project's
configs, saves the state through :func:`to_plain_data` (history buffers
as plain tagged dicts, numpy scalars as Python numbers), so that its
checkpoints need no globals beyond torch's defaults, and rebuilds it with
:func:`from_plain_data` when resuming. MessageHub itself is left as it
is. Checkpoints of plain mmengine are loaded by
:mod:`models.checkpoints.safe_loading`, which rebuilds their buffers
itself.
"""
import copy
from collections import OrderedDict
from typing import Any

import numpy as np
from mmengine.logging import HistoryBuffer

#: Key marking a HistoryBuffer saved as a plain dict by
#: :func:`to_plain_data`.
HISTORY_BUFFER_TAG = '__actionclip_history_buffer__'


def history_buffer_to_dict(buffer: HistoryBuffer) -> dict:
    """Save a HistoryBuffer as a plain, tagged dict.

    Args:
        buffer (HistoryBuffer): The buffer.

    Returns:
        dict: Its data as Python lists, loadable with ``weights_only``.
    """
    log_history, count_history = buffer.data
    return {
        HISTORY_BUFFER_TAG: 1,
        'log_history': log_history.tolist(),
        'count_history': count_history.tolist(),
        'max_length': int(buffer.max_length),
    }


def dict_to_history_buffer(data: dict) -> HistoryBuffer:
    """Rebuild a HistoryBuffer saved by :func:`history_buffer_to_dict`.

    Args:
        data (dict): The tagged dict.

    Returns:
        HistoryBuffer: The buffer.
    """
    return HistoryBuffer(data['log_history'], data['count_history'],
                         data['max_length'])


def _is_tagged_history_buffer(value: Any) -> bool:
    return isinstance(value, dict) and HISTORY_BUFFER_TAG in value


def _numpy_to_builtin(value: Any) -> Any:
    """Convert numpy scalars to Python numbers inside plain containers.

    Args:
        value (Any): A runtime-info value.

    Returns:
        Any: ``value`` with numpy scalars replaced; other objects are kept.
    """
    if isinstance(value, np.generic):
        return value.item()
    if type(value) in (dict, OrderedDict):
        return type(value)(
            (k, _numpy_to_builtin(v)) for k, v in value.items())
    if type(value) in (list, tuple):
        return type(value)(_numpy_to_builtin(v) for v in value)
    return value


def to_plain_data(state: dict) -> dict:
    """MessageHub's state dict without pickled objects.

    HistoryBuffers become tagged dicts (their pickles need
    ``builtins.getattr``) and numpy scalars become Python numbers.

    Args:
        state (dict): What :meth:`MessageHub.state_dict` returned.

    Returns:
        dict: A new state dict that loads under ``weights_only=True``.
    """
    state = copy.copy(state)
    state['log_scalars'] = OrderedDict(
        (key, history_buffer_to_dict(value)
         if isinstance(value, HistoryBuffer) else value)
        for key, value in state['log_scalars'].items())
    state['runtime_info'] = _numpy_to_builtin(state['runtime_info'])
    return state


def from_plain_data(state: Any) -> Any:
    """Rebuild the HistoryBuffers of a state saved by :func:`to_plain_data`.

    Other values pass as they are: real HistoryBuffer objects (checkpoints
    of plain mmengine, rebuilt by the safe loader) are kept.

    Args:
        state (Any): A checkpoint's ``message_hub`` entry.

    Returns:
        Any: What :meth:`MessageHub.load_state_dict` accepts.
    """
    if not (isinstance(state, dict)
            and isinstance(state.get('log_scalars'), dict)):
        return state
    state = copy.copy(state)
    state['log_scalars'] = OrderedDict(
        (key, dict_to_history_buffer(value)
         if _is_tagged_history_buffer(value) else value)
        for key, value in state['log_scalars'].items())
    return state


__all__ = [
    'HISTORY_BUFFER_TAG', 'dict_to_history_buffer', 'from_plain_data',
    'history_buffer_to_dict', 'to_plain_data'
]

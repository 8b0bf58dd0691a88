"""MessageHub state that loads under torch's ``weights_only=True``.

mmengine's :class:`~mmengine.logging.MessageHub` saves
:class:`~mmengine.logging.HistoryBuffer` objects (whose pickles call
``builtins.getattr``) and numpy scalars (``best_score``) in every training
checkpoint, which torch >= 2.6 does not load by default. The runner of
this project's configs (:class:`~models.engine.runner.ActionClipRunner`)
saves the state through :func:`to_plain_data` and rebuilds it with
:func:`from_plain_data`; MessageHub itself is left as it is. Checkpoints
of plain mmengine are read by :mod:`models.checkpoints.safe_loading`.
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


def _numbers(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers, inside plain
    containers."""
    if isinstance(value, np.generic):
        return value.item()
    if type(value) in (dict, OrderedDict):
        return type(value)((k, _numbers(v)) for k, v in value.items())
    if type(value) in (list, tuple):
        return type(value)(_numbers(v) for v in value)
    return value


def to_plain_data(state: dict) -> dict:
    """MessageHub's state dict without pickled objects.

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
    state['runtime_info'] = _numbers(state['runtime_info'])
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
        (key, dict_to_history_buffer(value) if isinstance(value, dict)
         and HISTORY_BUFFER_TAG in value else value)
        for key, value in state['log_scalars'].items())
    return state


__all__ = [
    'HISTORY_BUFFER_TAG', 'dict_to_history_buffer', 'from_plain_data',
    'history_buffer_to_dict', 'to_plain_data'
]

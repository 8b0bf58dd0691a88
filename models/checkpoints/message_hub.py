"""MessageHub state that loads under torch's ``weights_only=True``:
HistoryBuffers and numpy scalars saved as plain data by the configs' runner
(:func:`to_plain_data`) and rebuilt (:func:`from_plain_data`)."""
import copy
from collections import OrderedDict
from typing import Any

import numpy as np
from mmengine.logging import HistoryBuffer

#: Marks a HistoryBuffer saved as a plain dict.
HISTORY_BUFFER_TAG = '__actionclip_history_buffer__'


def history_buffer_to_dict(buffer: HistoryBuffer) -> dict:
    """A HistoryBuffer as a plain, tagged dict of lists."""
    log_history, count_history = buffer.data
    return {
        HISTORY_BUFFER_TAG: 1,
        'log_history': log_history.tolist(),
        'count_history': count_history.tolist(),
        'max_length': int(buffer.max_length),
    }


def dict_to_history_buffer(data: dict) -> HistoryBuffer:
    """Rebuild a HistoryBuffer saved by :func:`history_buffer_to_dict`."""
    return HistoryBuffer(data['log_history'], data['count_history'],
                         data['max_length'])


def _numbers(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers."""
    if isinstance(value, np.generic):
        return value.item()
    if type(value) in (dict, OrderedDict):
        return type(value)((k, _numbers(v)) for k, v in value.items())
    if type(value) in (list, tuple):
        return type(value)(_numbers(v) for v in value)
    return value


def to_plain_data(state: dict) -> dict:
    """A copy of MessageHub's state dict without pickled objects."""
    state = copy.copy(state)
    state['log_scalars'] = OrderedDict(
        (key, history_buffer_to_dict(value)
         if isinstance(value, HistoryBuffer) else value)
        for key, value in state['log_scalars'].items())
    state['runtime_info'] = _numbers(state['runtime_info'])
    return state


def from_plain_data(state: Any) -> Any:
    """A checkpoint's ``message_hub`` entry with the HistoryBuffers that
    :func:`to_plain_data` saved rebuilt; other values as they are."""
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

"""MessageHub state that loads under torch's ``weights_only=True``.

mmengine's :class:`~mmengine.logging.MessageHub` saves, in every training
checkpoint, :class:`~mmengine.logging.HistoryBuffer` objects (whose
pickles call ``builtins.getattr``) and numpy scalars (``best_score``), so
that mmengine 0.10.7 cannot load its own checkpoints since torch 2.6
made ``weights_only=True`` the default. Patched, MessageHub saves history
buffers as plain tagged dicts and numpy scalars as Python numbers, so
that checkpoints saved by this project need no globals beyond torch's
defaults, and it rebuilds the buffers when loading. Checkpoints of plain
mmengine are loaded by :mod:`models.checkpoints.safe_loading`, which
rebuilds their buffers itself.
"""
import copy
import functools
from collections import OrderedDict
from typing import Any, Callable, Union

import numpy as np
from mmengine.logging import HistoryBuffer, MessageHub

#: Key marking a HistoryBuffer saved as a plain dict by the patched
#: :meth:`MessageHub.state_dict`.
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


def _safe_state_dict(original: Callable) -> Callable:
    """Wrap ``MessageHub.state_dict`` to return only plain data."""

    @functools.wraps(original)
    def state_dict(self: MessageHub) -> dict:
        """Return MessageHub's state dict without pickled objects.

        HistoryBuffers become tagged dicts (their pickles need
        ``builtins.getattr``) and numpy scalars become Python numbers.

        Returns:
            dict: The state dict.
        """
        state = original(self)
        state['log_scalars'] = OrderedDict(
            (key, history_buffer_to_dict(value) if isinstance(
                value, HistoryBuffer) else value)
            for key, value in state['log_scalars'].items())
        state['runtime_info'] = _numpy_to_builtin(state['runtime_info'])
        return state

    state_dict._actionclip_safe = True
    return state_dict


def _safe_load_state_dict(original: Callable) -> Callable:
    """Wrap ``MessageHub.load_state_dict`` to accept tagged dicts."""

    @functools.wraps(original)
    def load_state_dict(self: MessageHub,
                        state_dict: Union[MessageHub, dict]) -> None:
        """Load a state dict, rebuilding HistoryBuffers from tagged dicts.

        Real HistoryBuffer objects (older checkpoints) are still accepted.

        Args:
            state_dict (dict | MessageHub): As for the original method.
        """
        if isinstance(state_dict, dict) and isinstance(
                state_dict.get('log_scalars'), dict):
            state_dict = copy.copy(state_dict)
            # Other values pass as they are: the safe loader has already
            # turned the restricted stand-ins of plain mmengine files into
            # real HistoryBuffers.
            state_dict['log_scalars'] = OrderedDict(
                (key, dict_to_history_buffer(value)
                 if _is_tagged_history_buffer(value) else value)
                for key, value in state_dict['log_scalars'].items())
        return original(self, state_dict)

    load_state_dict._actionclip_safe = True
    return load_state_dict


def patch_message_hub() -> None:
    """Make MessageHub save and load only plain data; idempotent."""
    if not getattr(MessageHub.state_dict, '_actionclip_safe', False):
        MessageHub.state_dict = _safe_state_dict(MessageHub.state_dict)
    if not getattr(MessageHub.load_state_dict, '_actionclip_safe', False):
        MessageHub.load_state_dict = _safe_load_state_dict(
            MessageHub.load_state_dict)


__all__ = [
    'HISTORY_BUFFER_TAG', 'dict_to_history_buffer', 'history_buffer_to_dict',
    'patch_message_hub'
]

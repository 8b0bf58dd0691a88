"""The recognizer's speed options (``ActionClip(speedups=dict(...))``),
applied in one place; each keeps the function and the parameter names."""
from typing import Any, Callable, Dict, NamedTuple, Optional, Union

import torch
from torch import nn

from models.acceleration.cuda_graphs import CudaGraphRunner
from models.acceleration.fast_attention import use_fast_attention
from models.acceleration.patch_embedding import use_patch_embedding

#: What ``ActionClip`` applies when a config names no speed option.
DEFAULT_SPEEDUPS = dict(
    fast_attention=True, patch_embedding=True, compile=False,
    cuda_graphs=False)

#: ``torch.compile`` modes, which ``compile`` also takes by name.
COMPILE_MODES = ('default', 'reduce-overhead', 'max-autotune',
                 'max-autotune-no-cudagraphs')

#: The ``torch.compile`` modes that replay CUDA graphs of their own.
GRAPH_MODES = ('reduce-overhead', 'max-autotune')


def compile_options(compile: Union[bool, str, dict]) -> dict:
    """``torch.compile`` keyword arguments from the ``compile`` option:
    True, a mode name or the keyword arguments themselves."""
    if compile is True:
        return {}
    if isinstance(compile, str):
        if compile not in COMPILE_MODES:
            raise ValueError(f'compile={compile!r}: use True, a dict of '
                             'torch.compile options or one of the modes '
                             f'{", ".join(COMPILE_MODES)}')
        return dict(mode=compile)
    return dict(compile)


def resolve_speedups(speedups: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """:data:`DEFAULT_SPEEDUPS` updated with ``speedups``, unknown names
    refused."""
    unknown = sorted(set(speedups or {}) - set(DEFAULT_SPEEDUPS))
    if unknown:
        raise ValueError(f'Unknown speedups {unknown}: use '
                         f'{", ".join(DEFAULT_SPEEDUPS)}')
    return {**DEFAULT_SPEEDUPS, **(speedups or {})}


class AppliedSpeedups(NamedTuple):
    """What the recognizer needs to know of the applied options.

    Attributes:
        compiled (bool): The encoders are compiled: feed text one length.
        compiled_graphs (bool): They replay torch's CUDA graphs: each call
            is a new step, outputs need copying.
        graphs (CudaGraphRunner, optional): Predict's replayer.
    """
    compiled: bool
    compiled_graphs: bool
    graphs: Optional[CudaGraphRunner]


def apply_speedups(model: nn.Module,
                   scores: Callable[..., torch.Tensor],
                   fast_attention: bool = True,
                   patch_embedding: bool = True,
                   compile: Union[bool, str, dict] = False,
                   cuda_graphs: bool = False) -> AppliedSpeedups:
    """Apply the speed options to an ``ActionClip``.

    Args:
        model (nn.Module): The recognizer: its ``clip`` and ``adapter``.
        scores (callable): Predict's ``fn(frames, text)``, which
            ``cuda_graphs`` replays.
        compile (bool | str | dict): ``torch.compile`` the image encoder,
            the adapter and the text transformer (a dict: its keyword
            arguments; a string: the mode); ``'reduce-overhead'`` replays
            them from torch's CUDA graphs, also in training.
        cuda_graphs (bool): Replay predict from CUDA graphs
            (:mod:`.cuda_graphs`), one per input shape.
    """
    if fast_attention:
        use_fast_attention(model)
    if patch_embedding:
        use_patch_embedding(model.clip)
    options = compile_options(compile) if compile else None
    compiled_graphs = (options is not None
                       and options.get('mode') in GRAPH_MODES)
    if compiled_graphs and cuda_graphs:
        raise ValueError(
            f'compile={compile!r} replays CUDA graphs itself; set '
            'cuda_graphs=False with it (or compile without that mode)')
    if options is not None:
        # nn.Module.compile keeps parameter names; torch.compile(module)
        # would prefix them with '_orig_mod.' and break checkpoints.
        model.clip.visual.compile(**options)
        model.adapter.compile(**options)
        model.clip.transformer.compile(**options)
    return AppliedSpeedups(
        compiled=options is not None,
        compiled_graphs=compiled_graphs,
        graphs=CudaGraphRunner(scores, model) if cuda_graphs else None)

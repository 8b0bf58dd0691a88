"""Replay inference from CUDA graphs (captured once per input shape), so
that small batches are not bound by kernel launches; the numbers are those
of the same kernels run eagerly."""
from collections import OrderedDict, namedtuple
from typing import Callable, Hashable, List, Optional, Tuple

import torch
from torch import nn


#: One captured graph: its static input and output tensors.
_Graph = namedtuple('_Graph', 'graph inputs output')


class CudaGraphRunner:
    """Runs ``fn(x, *static)`` from CUDA graphs, captured per input shape.

    In-place changes of ``module``'s weights and the ``static`` tensors are
    seen by the next replay; when one moves (``.to()``, a new ``static``
    tensor) the graphs are captured again. After replacing a parameter or
    buffer object, call :meth:`reset`. CPU inputs, gradient mode and
    training mode run ``fn`` eagerly.

    Args:
        fn (callable): Must not synchronise with the host (no ``.item()``,
            no data-dependent shapes).
        module (nn.Module): The module whose weights ``fn`` reads.
    """

    #: Graphs kept, least recently used dropped first.
    max_graphs = 4
    #: Eager runs before a capture.
    warmup = 2

    def __init__(self, fn: Callable[..., torch.Tensor], module: nn.Module):
        self.fn = fn
        self.module = module
        self._graphs: 'OrderedDict[Hashable, _Graph]' = OrderedDict()
        self._tensors_key: Optional[Tuple] = None
        self._weights: Optional[List[torch.Tensor]] = None
        self._pool = None

    def __getstate__(self) -> dict:
        # Graphs cannot be copied or pickled; a copy captures its own.
        return dict(self.__dict__, _graphs=OrderedDict(), _tensors_key=None,
                    _weights=None, _pool=None)

    def reset(self) -> None:
        """Drop every captured graph."""
        self._graphs.clear()
        self._tensors_key = self._weights = self._pool = None

    def applies(self, x: torch.Tensor) -> bool:
        """Whether a call with ``x`` replays: CUDA, no grad, eval mode."""
        return (x.is_cuda and not torch.is_grad_enabled()
                and not self.module.training)

    def __call__(self, x: torch.Tensor, *static: torch.Tensor
                 ) -> torch.Tensor:
        """``fn(x, *static)`` as a fresh tensor, replayed where it applies;
        ``static`` (e.g. cached text features) keep their address."""
        if not self.applies(x):
            return self.fn(x, *static)
        if self._weights is None:
            self._weights = [*self.module.parameters(), *self.module.buffers()]
        # Moved tensors have new addresses; a dtype change moves them too.
        # A new static tensor may reuse a freed one's address.
        tensors_key = (tuple(t.data_ptr() for t in self._weights),
                       tuple((t.data_ptr(), t.shape, t.dtype)
                             for t in static))
        if tensors_key != self._tensors_key:
            weights = self._weights
            self.reset()
            self._weights, self._tensors_key = weights, tensors_key
        autocast = torch.is_autocast_enabled('cuda')
        key = (tuple(x.shape), x.dtype, x.device, autocast,
               torch.get_autocast_dtype('cuda') if autocast else None,
               torch.is_inference_mode_enabled())
        if key not in self._graphs:
            self._graphs[key] = self._capture(x, static, autocast)
            while len(self._graphs) > self.max_graphs:
                self._graphs.popitem(last=False)
        self._graphs.move_to_end(key)
        entry = self._graphs[key]
        entry.inputs.copy_(x)
        entry.graph.replay()
        return entry.output.clone()

    def _capture(self, x: torch.Tensor, static: Tuple[torch.Tensor, ...],
                 autocast: bool) -> _Graph:
        dtype = torch.get_autocast_dtype('cuda')
        inputs = x.clone()
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()

        def run() -> torch.Tensor:
            # Autocast's cast cache would keep casts made during the capture
            # outside the graph's memory: the casts are recorded instead.
            with torch.autocast('cuda', dtype=dtype, enabled=autocast,
                                cache_enabled=False):
                return self.fn(inputs, *static)

        with torch.cuda.device(x.device):
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(self.warmup):
                    run()
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            # thread_local: the DataLoader's pin-memory thread allocates
            # pinned buffers while this captures (pin_memory=True in the
            # test configs); the default global mode counts that as an
            # unsafe call and invalidates the capture.
            with torch.cuda.graph(graph, pool=self._pool,
                                  capture_error_mode='thread_local'):
                output = run()
        return _Graph(graph, inputs, output)

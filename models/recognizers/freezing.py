"""Leave chosen parameters out of training."""
from typing import List, Sequence

from torch import nn


def freeze_parameters(model: nn.Module, names: Sequence[str]) -> List[str]:
    """Stop gradients for the parameters ``names`` (names or dotted
    prefixes) match; returns their names. A name that matches none raises
    ValueError listing the model's prefixes."""
    if isinstance(names, str):
        names = [names]
    params = dict(model.named_parameters())
    frozen = []
    for name in names:
        hits = [
            key for key in params
            if key == name or key.startswith(name.rstrip('.') + '.')
        ]
        if not hits:
            prefixes = sorted({'.'.join(k.split('.')[:2]) for k in params})
            raise ValueError(
                f'frozen: {name!r} matches no parameter of '
                f'{type(model).__name__}; use a parameter name or a dotted '
                f'prefix such as {", ".join(prefixes[:12])}')
        for key in hits:
            params[key].requires_grad_(False)
        frozen.extend(hits)
    return frozen

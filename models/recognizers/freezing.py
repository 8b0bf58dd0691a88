"""Leave chosen parameters out of training."""
from typing import List, Sequence

from torch import nn


def freeze_parameters(model: nn.Module, names: Sequence[str]) -> List[str]:
    """Stop gradients for parameters named by ``names``.

    Args:
        model (nn.Module): The model.
        names (Sequence[str]): Parameter names or dotted prefixes of them
            (``'clip.token_embedding'`` freezes ``...token_embedding.weight``).

    Returns:
        list[str]: The frozen parameters' names.

    Raises:
        ValueError: When a name matches no parameter; the message lists the
            model's top-level prefixes to choose from.
    """
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

"""Settings of an ActionCLIP run that cannot work, refused when the runner
is built, before any data is read or any step is taken.

``--cfg-options`` reach the config unchecked: ``batch_size=0`` fails deep
in PyTorch's DataLoader once the run has started, ``lr=nan`` trains
without a word into NaN weights, a misspelt model key is a ``TypeError``
from the registry, an empty template list a ``ValueError`` in the model.
:class:`~models.engine.runner.ActionClipRunner` runs these checks, so that
each ends as one line naming the setting (:mod:`models.engine.refusals`).
"""
import difflib
import inspect
import math
from typing import Any, Optional


class ConfigValueError(ValueError):
    """A setting of the run's config that cannot work; the message names
    it and what to give instead."""


#: The dataloaders a run's config may set.
DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _get(cfg: Any, key: str) -> Any:
    return cfg.get(key) if isinstance(cfg, dict) else None


def check_dataloader(name: str, cfg: Any) -> None:
    """Refuse, with a :class:`ConfigValueError` naming it (e.g.
    ``'test_dataloader'``), a dataloader config (a dict; anything else
    passes) whose ``batch_size`` is given and is not an integer >= 1."""
    size = _get(cfg, 'batch_size')
    if size is None:
        return
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigValueError(
            f'{name}.batch_size={size!r}: give a whole number of videos per '
            'batch, at least 1')


def check_optimizer(optim_wrapper: Any) -> None:
    """Refuse, with a :class:`ConfigValueError`, an
    ``optim_wrapper.optimizer.lr`` that is NaN, infinite, negative or not
    a number."""
    lr = _get(_get(optim_wrapper, 'optimizer'), 'lr')
    if lr is None:
        return
    if (isinstance(lr, bool) or not isinstance(lr, (int, float))
            or not math.isfinite(lr) or lr < 0):
        raise ConfigValueError(
            f'optim_wrapper.optimizer.lr={lr!r}: the learning rate must be a '
            'finite number >= 0 (NaN or infinity turns every weight into '
            'NaN at the first step)')


def check_model_keys(cfg: Any, model_class: type) -> None:
    """Refuse, with a :class:`ConfigValueError` that suggests the closest
    one, a key of the ``model`` config that is not an argument of
    ``model_class``, the class its ``type`` names."""
    parameters = inspect.signature(model_class.__init__).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return
    known = [name for name in parameters if name != 'self']
    for key in cfg:
        if key == 'type' or key in known:
            continue
        close = difflib.get_close_matches(key, known, n=1)
        hint = f'; did you mean {close[0]!r}?' if close else ''
        raise ConfigValueError(
            f'model.{key}: {model_class.__name__} takes no such setting'
            f'{hint} (its settings: {", ".join(known)})')


def model_class_of(cfg: Any) -> Optional[type]:
    """The class (:class:`~models.recognizers.actionclip.ActionClip` or a
    subclass) the ``model`` config builds; None for another model."""
    from models.recognizers.actionclip import ActionClip
    kind = _get(cfg, 'type')
    if isinstance(kind, str):
        from mmaction.registry import MODELS
        kind = MODELS.get(kind)
    if isinstance(kind, type) and issubclass(kind, ActionClip):
        return kind
    return None

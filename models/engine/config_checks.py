"""Settings of an ActionCLIP run that cannot work (``batch_size=0``,
``lr=nan``, a misspelt model key), refused when
:class:`~models.engine.runner.ActionClipRunner` is built, before any data is
read: unchecked, each fails deep in PyTorch or trains into NaN weights.
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
    """Refuse (:class:`ConfigValueError` naming ``name``) a dataloader
    config dict whose ``batch_size`` is given and not an integer >= 1."""
    size = _get(cfg, 'batch_size')
    if size is None:
        return
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigValueError(
            f'{name}.batch_size={size!r}: give a whole number of videos per '
            'batch, at least 1')


def check_optimizer(optim_wrapper: Any) -> None:
    """Refuse an ``optim_wrapper.optimizer.lr`` that is NaN, infinite,
    negative or not a number."""
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
    """Refuse a key of the ``model`` config that ``model_class`` does not
    take, suggesting the closest one."""
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
    """The ActionClip class (or subclass) the ``model`` config builds;
    None for another model."""
    from models.recognizers.actionclip import ActionClip
    kind = _get(cfg, 'type')
    if isinstance(kind, str):
        from mmaction.registry import MODELS
        kind = MODELS.get(kind)
    if isinstance(kind, type) and issubclass(kind, ActionClip):
        return kind
    return None

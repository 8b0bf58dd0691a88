"""The runner of this project's configs (``runner_type =
'ActionClipRunner'``); mmengine's Runner and every other model are left as
they are. It loads checkpoints safely (``weights_only=True``,
:mod:`models.checkpoints.safe_loading`), saves them whole with the model's
labels and the MessageHub state as plain data, checks resumes
(:mod:`.training_checkpoints`) and a test's label order
(:mod:`.hooks.label_check`), refuses settings that cannot work
(:mod:`.config_checks`) in one line with exit status 2 (:mod:`.refusals`),
and runs distributed without a GPU (gloo), which mmengine 0.10.7 cannot.
"""
import contextlib
from typing import (Callable, ContextManager, Dict, Iterator, Optional,
                    Union)
from unittest import mock

import torch
from mmaction.registry import RUNNERS
from mmengine.device import get_device
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import (_load_checkpoint,
                                        _load_checkpoint_to_model)

from models.checkpoints.message_hub import from_plain_data, to_plain_data
from models.checkpoints.safe_loading import load_checkpoint_file
from models.engine.config_checks import (DATALOADERS, ConfigValueError,
                                         check_dataloader, check_model_keys,
                                         check_optimizer, model_class_of)
from models.engine.hooks.label_check import (LABELS_META_KEY,
                                             check_label_order,
                                             recorded_labels)
from models.engine.refusals import install_excepthook, refusal_types
from models.engine.training_checkpoints import (ATOMIC_BACKEND,
                                                check_resumable,
                                                find_resumable,
                                                register_atomic_backend)


class _PlainMessageHubHook(Hook):
    """Saves the MessageHub state of each checkpoint as plain data."""

    priority = 'LOWEST'  # after any hook that adds to the checkpoint

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Replace the state's HistoryBuffers and numpy scalars."""
        if isinstance(checkpoint.get('message_hub'), dict):
            checkpoint['message_hub'] = to_plain_data(
                checkpoint['message_hub'])


def _skip_cuda_set_device() -> ContextManager:
    """``torch.cuda.set_device`` does nothing in the block without CUDA."""
    if torch.cuda.is_available():
        return contextlib.nullcontext()
    return mock.patch.object(torch.cuda, 'set_device', lambda device: None)


@RUNNERS.register_module()
class ActionClipRunner(Runner):
    """mmengine's :class:`~mmengine.runner.Runner` (same arguments) with
    safe loading, atomic saving and checked resumes (see the module)."""

    def __init__(self, *args, **kwargs) -> None:
        # First: the model and datasets built below may refuse already.
        install_excepthook()
        for name in DATALOADERS:
            check_dataloader(name, kwargs.get(name))
        check_optimizer(kwargs.get('optim_wrapper'))
        register_atomic_backend()
        self._resuming = self._evaluating = False
        super().__init__(*args, **kwargs)
        self.register_hook(_PlainMessageHubHook())

    @contextlib.contextmanager
    def _while(self, flag: str) -> Iterator[None]:
        setattr(self, flag, True)
        try:
            yield
        finally:
            setattr(self, flag, False)

    def build_model(self, model: Union[torch.nn.Module,
                                       Dict]) -> torch.nn.Module:
        """Build the model as mmengine's Runner does; an ActionClip config
        with a key or value the model refuses ends in a
        :class:`ConfigValueError`."""
        model_class = model_class_of(model)
        if model_class is None:
            return super().build_model(model)
        check_model_keys(model, model_class)
        try:
            return super().build_model(model)
        except ValueError as error:
            if isinstance(error, refusal_types()):
                raise
            raise ConfigValueError(f'model: {error}') from error

    def setup_env(self, env_cfg: Dict) -> None:
        """As mmengine's Runner, also without a GPU: mmengine 0.10.7's
        ``init_dist`` calls ``torch.cuda.set_device`` whatever the backend."""
        with _skip_cuda_set_device():
            super().setup_env(env_cfg)

    def wrap_model(self, model_wrapper_cfg: Optional[Dict],
                   model: torch.nn.Module) -> torch.nn.Module:
        """As mmengine's Runner, also on the CPU, where PyTorch refuses
        the ``device_ids=[LOCAL_RANK]`` mmengine 0.10.7 gives DDP."""
        if (model_wrapper_cfg is None and self.distributed
                and not is_model_wrapper(model) and get_device() == 'cpu'):
            model_wrapper_cfg = dict(
                type='MMDistributedDataParallel', device_ids=None,
                broadcast_buffers=False, find_unused_parameters=self.cfg.get(
                    'find_unused_parameters', False))
        return super().wrap_model(model_wrapper_cfg, model)

    def load_or_resume(self) -> None:
        """Load ``load_from``, or resume; ``--resume`` without a file
        takes the newest checkpoint of the work dir that reads."""
        if (self._has_loaded or not self._resume
                or self._load_from is not None):
            return super().load_or_resume()
        # mmengine's find_latest_checkpoint trusts last_checkpoint, even
        # when it names a file a killed run left partial.
        latest = find_resumable(self.work_dir)
        self.logger.info(f'Auto resumed from the latest checkpoint {latest}.')
        if latest is not None:
            self.resume(latest)
            self._has_loaded = True

    def resume(self, filename: str, *args, **kwargs) -> None:
        """As mmengine's ``Runner.resume``, refusing weights alone."""
        with self._while('_resuming'):
            return super().resume(filename, *args, **kwargs)

    def val(self) -> dict:
        """As mmengine's Runner, refusing a checkpoint's labels in another
        order (see :meth:`load_checkpoint`); returns the metrics."""
        with self._while('_evaluating'):
            return super().val()

    def test(self) -> dict:
        """Test as :meth:`val` validates; returns the metrics."""
        with self._while('_evaluating'):
            return super().test()

    def _model(self) -> torch.nn.Module:
        return self.model.module if is_model_wrapper(
            self.model) else self.model

    def load_checkpoint(self, filename: str,
                        map_location: Union[str, Callable] = 'cpu',
                        strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]) -> dict:
        """As mmengine's Runner (same arguments; returns the checkpoint),
        local files and http(s) URLs read with ``weights_only=True`` and the
        allowlist. In a test or validation run, a :class:`LabelSetError`
        when the model's labels are the checkpoint's in another order."""
        filename = str(filename)
        if '://' not in filename or filename.startswith(
                ('http://', 'https://')):
            checkpoint = load_checkpoint_file(filename, map_location)
        else:
            checkpoint = _load_checkpoint(filename, map_location=map_location)
        if self._resuming:
            check_resumable(checkpoint, filename)
        model = self._model()
        labels = getattr(model, 'labels', None)
        if self._evaluating and labels:
            # In training, the order of the labels is the new run's own.
            check_label_order(
                recorded_labels(checkpoint), labels, filename,
                getattr(model, 'label_source', None) or 'the label list')
        if 'message_hub' in checkpoint:
            checkpoint['message_hub'] = from_plain_data(
                checkpoint['message_hub'])
        # The rest as mmengine's Runner.load_checkpoint does it.
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        checkpoint = _load_checkpoint_to_model(
            model, checkpoint, strict, revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    def save_checkpoint(self, out_dir: str, filename: str,
                        file_client_args: Optional[dict] = None,
                        save_optimizer: bool = True,
                        save_param_scheduler: bool = True,
                        meta: Optional[dict] = None,
                        by_epoch: bool = True,
                        backend_args: Optional[dict] = None) -> None:
        """As mmengine's Runner (same arguments); a local one without
        ``file_client_args`` or ``backend_args`` is written whole or not at
        all, and ``meta['labels']`` records the model's labels."""
        if (file_client_args is None and backend_args is None
                and '://' not in str(out_dir)):
            backend_args = dict(backend=ATOMIC_BACKEND)
        labels = getattr(self._model(), 'labels', None)
        if labels:
            # A test with these labels in another order is refused.
            meta = {LABELS_META_KEY: list(labels), **(meta or {})}
        super().save_checkpoint(
            out_dir, filename, file_client_args=file_client_args,
            save_optimizer=save_optimizer,
            save_param_scheduler=save_param_scheduler, meta=meta,
            by_epoch=by_epoch, backend_args=backend_args)

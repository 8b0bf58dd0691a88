"""The ActionCLIP recognizer: video-text matching on top of CLIP."""
import warnings
from contextlib import nullcontext
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from clip.model import convert_weights
from mmaction.registry import MODELS
from mmaction.utils import (ConfigType, ForwardResults, OptConfigType,
                            OptSampleList, SampleList)
from mmengine.dist import all_gather
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope

from models.acceleration.speedups import apply_speedups, resolve_speedups
from models.backbones.clip_builder import build_clip
from models.checkpoints.checks import check_state_dict
from models.engine.hooks.label_check import LabelSetError
from models.recognizers.adapters import build_adapter
from models.recognizers.contrastive import (build_contrastive_targets,
                                            draw_template_ids, gather_features)
from models.recognizers.freezing import freeze_parameters
from models.recognizers.temporal_shift import TemporalShift
from models.text.prompts import load_labels, load_templates
from models.text.text_features import PromptBank, encode_text, l2_normalize

#: CLIP's input normalisation on 0-255 pixels.
CLIP_MEAN = (122.771, 116.746, 104.093)
CLIP_STD = (68.500, 66.632, 70.323)


#: ActionCLIP's logit scale at test time.
TEST_LOGIT_SCALE = 100.0


def label_probabilities(
        video: torch.Tensor,
        text: torch.Tensor,
        scale: Union[float, torch.Tensor] = TEST_LOGIT_SCALE) -> torch.Tensor:
    """Label probabilities: a softmax over labels per template and view,
    averaged over both.

    Args:
        video (torch.Tensor): ``(N, V, D)`` normalised features of V views.
        text (torch.Tensor): ``(P, L, D)`` normalised prompt features.
        scale (float | torch.Tensor): Multiplies the cosine similarities.

    Returns:
        torch.Tensor: ``(N, L)`` probabilities.
    """
    logits = scale * torch.einsum('nvd,pld->nvpl', video, text)
    return logits.softmax(dim=-1).mean(dim=(1, 2))


def _label_source(labels_or_label_file: Union[str, List[str]]) -> str:
    if isinstance(labels_or_label_file, str):
        return f'label file {labels_or_label_file}'
    return f'a list of {len(labels_or_label_file)} labels'


def _template_argument(
    template: Optional[Union[str, List[str]]],
    templates_or_template_file: Optional[Union[str, List[str]]]
) -> Optional[Union[str, List[str]]]:
    """``template``, or the deprecated ``templates_or_template_file``.

    ``template`` wins when both are set: a user who sets it on a config
    that still uses the old name (the seed's ``config.model.template =
    ...``) means it.
    """
    if templates_or_template_file is None:
        return template
    if template is not None:
        warnings.warn(
            f'ActionClip: template={template!r} is used and the deprecated '
            f'templates_or_template_file={templates_or_template_file!r} is '
            'ignored; rename templates_or_template_file to template in the '
            'config')
        return template
    warnings.warn(
        'ActionClip: templates_or_template_file is deprecated; set template '
        '(a string, a list of strings or a file with one template a line)',
        DeprecationWarning)
    return templates_or_template_file


def _check_checkpoint(module: 'ActionClip', state_dict: dict, prefix: str,
                      *args) -> None:
    check_state_dict(module.state_dict(), state_dict, prefix)


@MODELS.register_module()
class ActionClip(BaseModel):
    """ActionCLIP: CLIP frames, a temporal adapter, and text prompts.

    Args:
        clip_arch (str | dict): OpenAI model name (``'ViT-B/32'``,
            ``'ViT-B/16'``, ``'ViT-L/14'``, ``'ViT-L/14@336px'``) or a dict
            of CLIP hyperparameters.
        num_adapter_segs (int): Frames per view T.
        num_adapter_layers (int): Blocks of the transformer adapter.
        temporal_adapter (str): ``'transformer'`` (ActionCLIP's) or
            ``'mean'`` (parameter-free mean pooling, for zero-shot use of
            plain CLIP weights).
        pretrained (bool | str): ``True``: OpenAI's CLIP weights (cached,
            downloaded when missing); a path: a local CLIP weights file;
            ``False``: random CLIP weights, for when a checkpoint follows.
            Defaults to False, so that building a model never downloads.
        to_float32 (bool): Test in float32. When False (the test configs'),
            :meth:`test_step` on a CUDA device first stores CLIP's matrices
            in float16 (:meth:`apply_test_precision`), as OpenAI's
            ``clip.load`` does, halving its memory: ``mim test`` runs the
            released models as they were tested. Moving the model never
            changes its dtype; CPU runs, training and direct calls
            (:meth:`predict_scores`, :meth:`encode_video`) keep the weights
            as they are. Training configs set True.
        labels_or_label_file (str | list[str], optional): Class names, or a
            file with one per line. Needed for predict and loss.
        template (str | list[str], optional): The prompt templates: one
            (``'a video of {}'``), a list, or the path of a file with one
            template a line (see :func:`models.text.prompts.load_templates`).
            Defaults to ActionCLIP's 16 templates.
        templates_or_template_file (str | list[str], optional): Deprecated
            alias of ``template`` (older configs and the configs recorded in
            older checkpoints), taken with a DeprecationWarning; when both
            are set, ``template`` wins with a warning.
        loss (dict): The classification loss applied to both the
            video-to-text and the text-to-video logits (soft targets for
            ``contrastive_targets='same_label'``).
        contrastive_targets (str): ``'diagonal'`` (CLIP's: only a video's
            own text is positive) or ``'same_label'`` (all texts of its
            class are; the original ActionCLIP's label-aware loss). See
            :func:`models.recognizers.contrastive.build_contrastive_targets`.
        text_chunk_size (int): Prompts per text-encoder pass in predict.
        test_logit_scale (float | str): Scale of the cosine similarities
            when predicting: a number (ActionCLIP tests with 100), or
            ``'learned'``: ``exp(clip.logit_scale)``, as ViFi-CLIP tests.
        temporal_shift (bool): ActionCLIP's in-network "Shift" prompt: mix
            neighbouring frames inside the image encoder
            (:mod:`models.recognizers.temporal_shift`), so that it sees
            motion. No new weights; the released models were trained
            without it.
        speedups (dict, optional): Speed options that keep the function
            and the parameter names, applied by
            :func:`models.acceleration.speedups.apply_speedups`; name only
            those to change. Defaults to ``dict(fast_attention=True,
            patch_embedding=True, compile=False, cuda_graphs=False)``.
            Two CUDA-graph mechanisms stay, each the faster where it runs
            (docs/benchmark.md, H200): for predict ``cuda_graphs`` over
            compiled encoders beat ``compile='reduce-overhead'`` in all 10
            comparisons (ViT-B/32, batch 1: 607 against 485 videos/s) and
            needs no compiling, while in training only ``'reduce-overhead'``
            replays graphs (654 against 179 samples/s). The two exclude
            each other.
        frozen (Sequence[str]): Parameters left out of training: names or
            dotted prefixes, e.g. ``('clip.token_embedding', )``. A frozen
            parameter gets no gradient, so backward and the optimizer skip
            its work (the 49,408-row token table is most of a small CLIP's
            weights). A name that matches nothing raises ValueError.
        data_preprocessor (dict, optional): Defaults to
            ``ActionDataPreprocessor`` with CLIP's mean and std, NCHW.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 clip_arch: Union[str, dict],
                 num_adapter_segs: int,
                 num_adapter_layers: int = 6,
                 temporal_adapter: str = 'transformer',
                 pretrained: Union[bool, str] = False,
                 to_float32: bool = False,
                 labels_or_label_file: Optional[Union[str, List[str]]] = None,
                 template: Optional[Union[str, List[str]]] = None,
                 templates_or_template_file: Optional[Union[str,
                                                            List[str]]] = None,
                 loss: ConfigType = dict(
                     type='CrossEntropyLoss', loss_weight=0.5),
                 contrastive_targets: str = 'diagonal',
                 text_chunk_size: int = 2048,
                 test_logit_scale: Union[float, str] = TEST_LOGIT_SCALE,
                 temporal_shift: bool = False,
                 speedups: Optional[Dict[str, Any]] = None,
                 frozen: Sequence[str] = (),
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptConfigType = None):
        if data_preprocessor is None:
            data_preprocessor = dict(
                type='ActionDataPreprocessor',
                mean=list(CLIP_MEAN),
                std=list(CLIP_STD),
                format_shape='NCHW')
        # Built in MMAction2's scope whatever the current default scope is
        # (none in plain PyTorch use, another one after a foreign Runner).
        with DefaultScope.overwrite_default_scope('mmaction'):
            if isinstance(data_preprocessor, dict):
                data_preprocessor = MODELS.build(data_preprocessor)
            loss_func = MODELS.build(loss)
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.clip = build_clip(clip_arch, pretrained)
        self.temporal_shift = (
            TemporalShift(self.clip.visual) if temporal_shift else None)
        self.num_segs = num_adapter_segs
        if isinstance(test_logit_scale, str) and test_logit_scale != 'learned':
            raise ValueError(f'test_logit_scale must be a number or '
                             f"'learned', got {test_logit_scale!r}")
        self.test_logit_scale = test_logit_scale
        self.to_float32 = to_float32
        self.adapter = build_adapter(temporal_adapter,
                                     self.clip.text_projection.shape[1],
                                     num_adapter_segs, num_adapter_layers)
        applied = apply_speedups(self, self._scores,
                                 **resolve_speedups(speedups))
        # Compiled text is fed the label set's longest prompt length in
        # training, one shape, not the batch's, a new shape each step.
        self._compiled_text = applied.compiled
        self._compiled_graphs = applied.compiled_graphs
        self._graphs = applied.graphs
        self.frozen = freeze_parameters(self, frozen)
        self.loss_func = loss_func
        build_contrastive_targets(torch.zeros(1), contrastive_targets)
        self.contrastive_targets = contrastive_targets
        self.templates = load_templates(
            _template_argument(template, templates_or_template_file))
        self.prompt_bank: Optional[PromptBank] = None
        self.label_source: Optional[str] = None
        if labels_or_label_file is not None:
            self.prompt_bank = PromptBank(
                load_labels(labels_or_label_file), self.templates,
                text_chunk_size)
            self.label_source = _label_source(labels_or_label_file)
        # mmengine's load_checkpoint (mim test, init_recognizer, load_from,
        # --resume) only warns about missing, unexpected and reshaped keys
        # and goes on with random weights in their place: a silently wrong
        # model. Every load is checked instead (models.checkpoints.checks).
        self.register_load_state_dict_pre_hook(_check_checkpoint)

    # The released checkpoints and the random initialisation of CLIP must
    # survive the runner's init_weights(); only the adapter is initialised.
    def init_weights(self) -> None:
        """Initialise the adapter; CLIP keeps its (pretrained) weights."""
        if hasattr(self.adapter, 'init_weights'):
            self.adapter.init_weights()

    def convert_clip_to_fp16(self) -> 'ActionClip':
        """Store CLIP's matrices in float16, as OpenAI's ``clip.load`` does
        on CUDA; its norms and the adapter stay float32.

        Returns:
            ActionClip: The model itself.
        """
        convert_weights(self.clip)
        return self

    def apply_test_precision(self) -> 'ActionClip':
        """Store CLIP's matrices in float16 when the model is on a CUDA
        device and ``to_float32`` is False, as the released models were
        tested; otherwise (CPU, ``to_float32``, already float16) leave it.

        :meth:`test_step` calls it first; call it after moving the model to
        test the same way outside the test loop.

        Returns:
            ActionClip: The model itself.
        """
        if (not self.to_float32 and self.clip.positional_embedding.is_cuda
                and self.clip.dtype == torch.float32):
            self.convert_clip_to_fp16()
        return self

    def test_step(self, data: Union[dict, tuple, list]) -> SampleList:
        """Predict a batch of the test loop (``mim test``), in the test
        precision (:meth:`apply_test_precision`).

        Args:
            data (dict | tuple | list): A batch from the test dataloader.

        Returns:
            list[ActionDataSample]: The samples with ``pred_score`` and
            ``pred_label``.
        """
        self.apply_test_precision()
        return super().test_step(data)

    @property
    def labels(self) -> List[str]:
        """The class names predict scores."""
        return self.prompt_bank.labels if self.prompt_bank else []

    def set_labels(self,
                   labels_or_label_file: Union[str, List[str]],
                   templates: Optional[Sequence[str]] = None) -> None:
        """Score another label set from now on (no retraining needed).

        Args:
            labels_or_label_file (str | list[str]): Class names or a file.
            templates (list[str], optional): New templates; by default the
                current ones.
        """
        if templates is not None:
            self.templates = load_templates(templates)
        self.prompt_bank = PromptBank(
            load_labels(labels_or_label_file), self.templates,
            self.prompt_bank.chunk_size if self.prompt_bank else 2048)
        self.label_source = _label_source(labels_or_label_file)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """CLIP image features.

        Args:
            images (torch.Tensor): ``(B, C, H, W)`` normalised images.

        Returns:
            torch.Tensor: ``(B, D)`` features.
        """
        return self.clip.encode_image(images)

    def encode_text(self,
                    tokens: torch.Tensor,
                    length: Optional[int] = None) -> torch.Tensor:
        """CLIP text features of tokens (cut to the longest text).

        Args:
            tokens (torch.Tensor): ``(N, 77)`` tokens from
                ``clip.tokenize``.
            length (int, optional): Cut to this many tokens instead (see
                :func:`models.text.text_features.encode_text`).

        Returns:
            torch.Tensor: ``(N, D)`` features.
        """
        return encode_text(self.clip, tokens, length=length)

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """Video features, one per view.

        Args:
            video (torch.Tensor): ``(N, V * T, C, H, W)`` normalised frames,
                ``T = num_adapter_segs``, ``V`` views (clips or crops) of
                each video.

        Returns:
            torch.Tensor: ``(N * V, D)`` unnormalised features, view-minor.
        """
        if video.dim() != 5:
            raise ValueError('Expected frames of shape (N, V*T, C, H, W), '
                             f'got {tuple(video.shape)}; use '
                             "FormatShape(input_format='NCHW')")
        n, frames = video.shape[:2]
        if frames % self.num_segs:
            raise ValueError(
                f'Got {frames} frames per video, not a multiple of '
                f'num_adapter_segs={self.num_segs}; sample num_clips='
                f'{self.num_segs} (or a multiple for several views)')
        if self._compiled_graphs:
            # Each call is a new step of the compiled CUDA graphs, whose
            # replays reuse their output memory.
            torch.compiler.cudagraph_mark_step_begin()
        with (self.temporal_shift.clips_of(self.num_segs)
              if self.temporal_shift else nullcontext()):
            frame_features = self.encode_image(video.flatten(0, 1))
        frame_features = frame_features.view(n * frames // self.num_segs,
                                             self.num_segs, -1)
        adapter_dtype = next(
            (p.dtype for p in self.adapter.parameters()), None)
        if adapter_dtype is not None:
            frame_features = frame_features.to(adapter_dtype)
        features = self.adapter(frame_features)
        # A copy outlives the next replay; callers may keep features.
        return features.clone() if self._compiled_graphs else features

    def _require_labels(self) -> PromptBank:
        if self.prompt_bank is None:
            raise RuntimeError(
                'ActionClip has no labels: set labels_or_label_file in the '
                'model config (or call set_labels) to predict or train')
        return self.prompt_bank

    def predict_scores(self, inputs: torch.Tensor) -> torch.Tensor:
        """Class probabilities averaged over templates and views.

        Args:
            inputs (torch.Tensor): ``(N, V * T, C, H, W)`` frames.

        Returns:
            torch.Tensor: ``(N, num_labels)`` probabilities.
        """
        bank = self._require_labels()
        text = bank.features(self.clip)  # (P, L, D), normalised, float32
        if self._graphs is not None:
            return self._graphs(inputs, text)
        return self._scores(inputs, text)

    def _scores(self, inputs: torch.Tensor,
                text: torch.Tensor) -> torch.Tensor:
        """Probabilities of ``inputs`` against normalised ``text``."""
        video = l2_normalize(self.encode_video(inputs).float())
        # The similarities cost little next to the encoders; in float32,
        # also under autocast, they add no rounding of their own to the
        # scores of a reduced-precision model.
        with torch.autocast(inputs.device.type, enabled=False):
            return label_probabilities(
                video.view(len(inputs), -1, video.shape[-1]), text,
                self.logit_scale_at_test())

    def logit_scale_at_test(self) -> Union[float, torch.Tensor]:
        """The scale of the cosine similarities when predicting.

        Returns:
            float | torch.Tensor: ``test_logit_scale``, or for
            ``'learned'`` the float32 ``exp(clip.logit_scale)``.
        """
        if self.test_logit_scale == 'learned':
            return self.clip.logit_scale.detach().float().exp()
        return self.test_logit_scale

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper) -> Dict[str, torch.Tensor]:
        """``BaseModel.train_step``, then the cached label text features
        dropped: fused optimizers (``AdamW(fused=True)``) change weights
        without bumping their version counters, which the cache's key
        reads, so validation would score stale text features.

        Args:
            data (dict | tuple | list): A batch from the DataLoader.
            optim_wrapper (OptimWrapper): Updates the weights.

        Returns:
            dict: The log variables.
        """
        try:
            return super().train_step(data, optim_wrapper)
        finally:
            if self.prompt_bank is not None:
                self.prompt_bank.clear()

    def loss(self, inputs: torch.Tensor,
             data_samples: SampleList) -> Dict[str, torch.Tensor]:
        """Symmetric video-text contrastive loss over the whole batch.

        Each video is paired with its class text under one random template;
        features of all ranks take part when training is distributed.

        Args:
            inputs (torch.Tensor): ``(N, V * T, C, H, W)`` frames.
            data_samples (list[ActionDataSample]): With ``gt_label``.

        Returns:
            dict: ``loss_v2t`` and ``loss_t2v``.
        """
        bank = self._require_labels()
        labels = torch.cat([s.gt_label.view(-1)[:1] for s in data_samples])
        labels = labels.cpu().long()
        if labels.min() < 0 or labels.max() >= bank.num_labels:
            raise ValueError(
                f'gt_label {labels.tolist()} out of range for '
                f'{bank.num_labels} labels; check labels_or_label_file '
                'against the annotation file')
        template_ids = draw_template_ids(bank.num_templates, len(labels))
        tokens = bank.tokens[template_ids, labels]
        video = self.encode_video(inputs)
        video = video.view(len(data_samples), -1, video.shape[-1]).mean(1)
        video = l2_normalize(video)
        text = l2_normalize(
            self.encode_text(
                tokens,
                length=bank.max_length if self._compiled_text else None))
        video, text = gather_features(video, text.to(video.dtype))
        logits = self.clip.logit_scale.exp() * video @ text.t()
        targets = build_contrastive_targets(
            torch.cat(all_gather(labels.to(logits.device))),
            self.contrastive_targets)
        return dict(
            loss_v2t=self.loss_func(logits, targets),
            loss_t2v=self.loss_func(logits.t(), targets))

    def predict(self, inputs: torch.Tensor,
                data_samples: SampleList) -> SampleList:
        """Set ``pred_score`` and ``pred_label`` on each data sample.

        Args:
            inputs (torch.Tensor): ``(N, V * T, C, H, W)`` frames.
            data_samples (list[ActionDataSample]): One per video.

        Returns:
            list[ActionDataSample]: The samples with ``pred_score`` and
            ``pred_label`` (the index of the top score).
        """
        self._check_sample_labels(data_samples)
        scores = self.predict_scores(inputs)
        # As MMAction2's heads do (BaseHead.predict_by_feat): its
        # Inferencer, demos and visualizer read pred_label.
        pred_labels = scores.argmax(dim=-1, keepdim=True).detach()
        for sample, score, label in zip(data_samples, scores, pred_labels):
            sample.set_pred_score(score)
            sample.set_pred_label(label)
        return data_samples

    def _check_sample_labels(self, data_samples: OptSampleList) -> None:
        # A label the label set lacks can never be predicted right: the
        # accuracy would be wrong without a word (configs without
        # LabelSetCheckHook reach this first).
        bank = self._require_labels()
        for sample in data_samples or ():
            gt = sample.get('gt_label') if hasattr(sample, 'get') else None
            if gt is None:
                continue
            # -1 is no class: inference_recognizer's unlabelled video (an
            # annotation line without one is refused by the metric)
            highest = int(torch.as_tensor(gt).max())
            if highest >= bank.num_labels:
                raise LabelSetError(
                    f'A test sample has class {highest} '
                    f"({sample.get('filename', 'unknown video')}), but the "
                    f'model has {bank.num_labels} labels '
                    f'({self.label_source}); use the label file that belongs '
                    'to the annotations')

    def forward(self,
                inputs: torch.Tensor,
                data_samples: OptSampleList = None,
                mode: str = 'tensor') -> ForwardResults:
        """Dispatch to :meth:`loss`, :meth:`predict` or feature extraction.

        Args:
            inputs (torch.Tensor): ``(N, V * T, C, H, W)`` frames.
            data_samples (list[ActionDataSample], optional): Annotations.
            mode (str): ``'loss'``, ``'predict'`` or ``'tensor'`` (returns
                the ``(N * V, D)`` video features).

        Returns:
            dict | list | torch.Tensor: Losses, data samples or features.
        """
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.encode_video(inputs)
        raise RuntimeError(f'Invalid mode {mode!r}: use "loss", "predict" '
                           'or "tensor"')

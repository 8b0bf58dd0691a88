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
    """``(N, L)`` softmax over labels of ``(N, V, D)`` normalised views
    against ``(P, L, D)`` normalised prompts, averaged over views and
    templates; ``scale`` multiplies the cosine similarities."""
    logits = scale * torch.einsum('nvd,pld->nvpl', video, text)
    return logits.softmax(dim=-1).mean(dim=(1, 2))


def _template_argument(
    template: Optional[Union[str, List[str]]],
    templates_or_template_file: Optional[Union[str, List[str]]]
) -> Optional[Union[str, List[str]]]:
    """``template``, or the deprecated ``templates_or_template_file``;
    ``template`` wins when both are set (the seed sets it on old configs)."""
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
            ``'mean'`` (parameter-free, for zero-shot plain CLIP weights).
        pretrained (bool | str): ``True``: OpenAI's CLIP weights (cached,
            downloaded when missing); a path: a local CLIP weights file;
            ``False`` (default, never downloads): random, a checkpoint
            follows.
        to_float32 (bool): Test in float32. When False (the test configs'),
            :meth:`test_step` on CUDA stores CLIP's matrices in float16
            first, as the released models were tested
            (:meth:`apply_test_precision`). Training configs set True.
        labels_or_label_file (str | list[str], optional): Class names, or a
            file with one per line. Needed for predict and loss.
        template (str | list[str], optional): One template, a list, or a
            file with one a line. Defaults to ActionCLIP's 16 templates.
        templates_or_template_file (str | list[str], optional): Deprecated
            alias of ``template`` (DeprecationWarning; ``template`` wins).
        loss (dict): The loss of both the video-to-text and text-to-video
            logits.
        contrastive_targets (str): ``'diagonal'`` (CLIP's) or
            ``'same_label'`` (all texts of a video's class are positive; the
            original ActionCLIP's loss).
        text_chunk_size (int): Prompts per text-encoder pass in predict.
        test_logit_scale (float | str): Scale of the cosine similarities
            when predicting: a number (ActionCLIP's 100), or ``'learned'``:
            ``exp(clip.logit_scale)``, as ViFi-CLIP tests.
        temporal_shift (bool): ActionCLIP's "Shift" prompt: mix
            neighbouring frames inside the image encoder; no new weights.
        speedups (dict, optional): Options of
            :func:`models.acceleration.speedups.apply_speedups` to change
            from ``fast_attention`` and ``patch_embedding`` on, ``compile``
            and ``cuda_graphs`` off (docs/benchmark.md: ``cuda_graphs`` for
            predict, ``compile='reduce-overhead'`` for training; not both).
        frozen (Sequence[str]): Names or dotted prefixes of parameters left
            out of training; one that matches nothing raises ValueError.
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
        self.text_chunk_size = text_chunk_size
        self.prompt_bank: Optional[PromptBank] = None
        self.label_source: Optional[str] = None
        if labels_or_label_file is not None:
            self.set_labels(labels_or_label_file)
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
        on CUDA (norms and adapter stay float32); returns the model."""
        convert_weights(self.clip)
        return self

    def apply_test_precision(self) -> 'ActionClip':
        """:meth:`convert_clip_to_fp16` when on CUDA and ``to_float32`` is
        False, as the released models were tested (:meth:`test_step` calls
        it); returns the model."""
        if (not self.to_float32 and self.clip.positional_embedding.is_cuda
                and self.clip.dtype == torch.float32):
            self.convert_clip_to_fp16()
        return self

    def test_step(self, data: Union[dict, tuple, list]) -> SampleList:
        """``BaseModel.test_step`` in the test precision
        (:meth:`apply_test_precision`)."""
        self.apply_test_precision()
        return super().test_step(data)

    @property
    def labels(self) -> List[str]:
        """The class names predict scores."""
        return self.prompt_bank.labels if self.prompt_bank else []

    def set_labels(self,
                   labels_or_label_file: Union[str, List[str]],
                   templates: Optional[Sequence[str]] = None) -> None:
        """Score another label set (class names or a file) from now on,
        with new ``templates`` if given."""
        if templates is not None:
            self.templates = load_templates(templates)
        self.prompt_bank = PromptBank(
            load_labels(labels_or_label_file), self.templates,
            self.text_chunk_size)
        self.label_source = (
            f'label file {labels_or_label_file}'
            if isinstance(labels_or_label_file, str) else
            f'a list of {len(labels_or_label_file)} labels')

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, D)`` CLIP features of ``(B, C, H, W)`` normalised images."""
        return self.clip.encode_image(images)

    def encode_text(self,
                    tokens: torch.Tensor,
                    length: Optional[int] = None) -> torch.Tensor:
        """``(N, D)`` CLIP features of ``(N, 77)`` tokens, cut to the
        longest text or to ``length``."""
        return encode_text(self.clip, tokens, length=length)

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """``(N * V, D)`` unnormalised features, view-minor, of
        ``(N, V * T, C, H, W)`` normalised frames (``T = num_adapter_segs``,
        V views)."""
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
        """``(N, num_labels)`` probabilities of ``(N, V * T, C, H, W)``
        frames, averaged over templates and views."""
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
        """``test_logit_scale``, or for ``'learned'`` the float32
        ``exp(clip.logit_scale)``."""
        if self.test_logit_scale == 'learned':
            return self.clip.logit_scale.detach().float().exp()
        return self.test_logit_scale

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper) -> Dict[str, torch.Tensor]:
        """``BaseModel.train_step``, then the cached text features dropped:
        fused optimizers change weights without bumping the version
        counters the cache's key reads."""
        try:
            return super().train_step(data, optim_wrapper)
        finally:
            if self.prompt_bank is not None:
                self.prompt_bank.clear()

    def loss(self, inputs: torch.Tensor,
             data_samples: SampleList) -> Dict[str, torch.Tensor]:
        """``loss_v2t`` and ``loss_t2v``: symmetric video-text contrastive
        loss over the batch of all ranks, each video against its class text
        under one random template."""
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
        """Set ``pred_score`` and ``pred_label`` (top index) on each
        sample; returns the samples."""
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
        """:meth:`loss`, :meth:`predict` or, for ``'tensor'``,
        :meth:`encode_video`."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.encode_video(inputs)
        raise RuntimeError(f'Invalid mode {mode!r}: use "loss", "predict" '
                           'or "tensor"')

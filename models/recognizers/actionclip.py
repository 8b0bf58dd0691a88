"""The ActionCLIP recognizer: video-text matching on top of CLIP."""
from contextlib import nullcontext
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.distributed as dist
from clip.model import convert_weights
from mmaction.registry import MODELS
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope

from models.acceleration.cuda_graphs import CudaGraphRunner
from models.acceleration.fast_attention import use_fast_attention
from models.acceleration.patch_embedding import use_patch_embedding
from models.backbones.clip_builder import build_clip
from models.checkpoints.checks import check_state_dict
from models.engine.hooks.label_check import LabelSetError
from models.recognizers.adapters import build_adapter
from models.recognizers.freezing import freeze_parameters
from models.recognizers.temporal_shift import TemporalShift
from models.text.prompts import load_labels, load_templates
from models.text.text_features import PromptBank, encode_text, l2_normalize

#: CLIP's input normalisation on 0-255 pixels.
CLIP_MEAN = (122.771, 116.746, 104.093)
CLIP_STD = (68.500, 66.632, 70.323)


def gather_features(*features: torch.Tensor) -> List[torch.Tensor]:
    """Concatenate features of all ranks, keeping every rank's gradient.

    Every rank then computes the same loss L over the whole ``W * B``
    batch. ``torch.distributed.nn.all_gather`` sums, in backward, the
    gradients that all W ranks' (equal) losses send to this rank's
    features: W times dL/d(features). DDP's average over the ranks divides
    by W again, so W ranks train exactly like one process with the whole
    batch (``tools/dist_check.py`` checks it).

    Args:
        *features (torch.Tensor): ``(B, D)`` tensors of this rank.

    Returns:
        list[torch.Tensor]: ``(W * B, D)`` tensors, rank-major.
    """
    if not (dist.is_available() and dist.is_initialized()
            and dist.get_world_size() > 1):
        return list(features)
    from torch.distributed.nn.functional import all_gather
    return [torch.cat(all_gather(f), dim=0) for f in features]


def draw_template_ids(num_templates: int, batch_size: int) -> torch.Tensor:
    """Random template indices for this rank's ``batch_size`` samples.

    Each rank draws the indices of the whole ``W * B`` batch from torch's
    global generator, which MMEngine seeds from ``randomness.seed``, and
    keeps its own slice. With the same seed on every rank (MMEngine's
    default) the ranks take disjoint parts of one sequence, so they draw
    independently of each other and exactly what one process with the
    whole batch would; with rank-dependent seeds (``diff_rank_seed``) they
    draw from different sequences.

    Args:
        num_templates (int): Number of templates to choose from.
        batch_size (int): Samples on this rank.

    Returns:
        torch.Tensor: ``(batch_size, )`` indices.
    """
    world_size, rank = 1, 0
    if dist.is_available() and dist.is_initialized():
        world_size, rank = dist.get_world_size(), dist.get_rank()
    ids = torch.randint(num_templates, (world_size * batch_size, ))
    return ids[rank * batch_size:(rank + 1) * batch_size]


def gather_labels(labels: torch.Tensor) -> torch.Tensor:
    """Concatenate the labels of all ranks (no gradient), rank-major.

    Args:
        labels (torch.Tensor): ``(B, )`` labels of this rank.

    Returns:
        torch.Tensor: ``(W * B, )`` labels.
    """
    if not (dist.is_available() and dist.is_initialized()
            and dist.get_world_size() > 1):
        return labels
    parts = [torch.empty_like(labels) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, labels)
    return torch.cat(parts)


def build_contrastive_targets(labels: torch.Tensor, mode: str) -> torch.Tensor:
    """Targets of the video-to-text logits (the text-to-video ones are the
    same, by symmetry).

    Args:
        labels (torch.Tensor): ``(B, )`` class of each (video, text) pair.
        mode (str): ``'diagonal'``: each video's own text is its only
            positive, as in CLIP and the public MMAction2 plugin; two videos
            of one class then push each other's texts away.
            ``'same_label'``: every text of the same class is a positive,
            with equal weight (the original ActionCLIP's KL loss against its
            label-aware target matrix; its ``softmax(10 * gt)`` tends to
            this).

    Returns:
        torch.Tensor: ``(B, )`` indices, or ``(B, B)`` rows summing to one.
    """
    if mode == 'diagonal':
        return torch.arange(len(labels), device=labels.device)
    if mode == 'same_label':
        same = (labels[:, None] == labels[None, :]).float()
        return same / same.sum(dim=1, keepdim=True)
    raise ValueError(f"contrastive_targets must be 'diagonal' or "
                     f"'same_label', got {mode!r}")


#: ActionCLIP's logit scale at test time.
TEST_LOGIT_SCALE = 100.0


def label_probabilities(video: torch.Tensor,
                        text: torch.Tensor) -> torch.Tensor:
    """Label probabilities: a softmax over labels per template and view,
    averaged over both.

    Args:
        video (torch.Tensor): ``(N, V, D)`` normalised features of V views.
        text (torch.Tensor): ``(P, L, D)`` normalised prompt features.

    Returns:
        torch.Tensor: ``(N, L)`` probabilities.
    """
    logits = TEST_LOGIT_SCALE * torch.einsum('nvd,pld->nvpl', video, text)
    return logits.softmax(dim=-1).mean(dim=(1, 2))


#: ``torch.compile`` modes, which ``compile`` also takes by name.
COMPILE_MODES = ('default', 'reduce-overhead', 'max-autotune',
                 'max-autotune-no-cudagraphs')


def compile_options(compile: Union[bool, str, dict]) -> dict:
    """``torch.compile`` keyword arguments from the ``compile`` argument.

    Args:
        compile (bool | str | dict): True, a mode name (what
            ``--cfg-options model.compile=reduce-overhead`` gives) or the
            keyword arguments themselves.

    Returns:
        dict: The keyword arguments.
    """
    if compile is True:
        return {}
    if isinstance(compile, str):
        if compile not in COMPILE_MODES:
            raise ValueError(f'compile={compile!r}: use True, a dict of '
                             'torch.compile options or one of the modes '
                             f'{", ".join(COMPILE_MODES)}')
        return dict(mode=compile)
    return dict(compile)


def _label_source(labels_or_label_file: Union[str, List[str]]) -> str:
    if isinstance(labels_or_label_file, str):
        return f'label file {labels_or_label_file}'
    return f'a list of {len(labels_or_label_file)} labels'


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
        to_float32 (bool): Keep CLIP in float32 on the GPU. When False, as
            with OpenAI's ``clip.load``, CLIP's matrices are stored in
            float16 once the model is moved to a CUDA device (halving its
            memory for testing); on the CPU they always stay float32.
            Training configs set True.
        labels_or_label_file (str | list[str], optional): Class names, or a
            file with one per line. Needed for predict and loss.
        templates_or_template_file (str | list[str], optional): Prompt
            templates (or a file, one per line). Defaults to ActionCLIP's
            16 templates.
        template (str | list[str], optional): Alternative spelling for a
            single template (or a list), as set in the seed's examples.
        loss (dict): The classification loss applied to both the
            video-to-text and the text-to-video logits (soft targets for
            ``contrastive_targets='same_label'``).
        contrastive_targets (str): ``'diagonal'`` (CLIP's: only a video's
            own text is positive) or ``'same_label'`` (all texts of its
            class are; the original ActionCLIP's label-aware loss). See
            :func:`build_contrastive_targets`.
        text_chunk_size (int): Prompts per text-encoder pass in predict.
        temporal_shift (bool): ActionCLIP's in-network "Shift" prompt: mix
            neighbouring frames inside the image encoder
            (:mod:`models.recognizers.temporal_shift`), so that it sees
            motion. No new weights; the released models were trained
            without it.
        fast_attention (bool): Compute CLIP's and the adapter's attention
            with ``F.scaled_dot_product_attention`` (flash and
            memory-efficient kernels on GPU, ``is_causal`` for the text
            encoder); same parameters, same function
            (:mod:`models.acceleration.fast_attention`).
        fast_patch_embedding (bool): Compute a ViT's patch embedding (a
            convolution with stride equal to its kernel) as one matrix
            product (:mod:`models.acceleration.patch_embedding`): same
            parameters, same function, faster on the GPU.
        compile (bool | str | dict): ``torch.compile`` the image encoder,
            the adapter and the text transformer (a dict: its keyword
            arguments, e.g. ``dict(mode='max-autotune')``; a string: the
            mode). Parameter names stay the same. ``'reduce-overhead'``
            also replays the encoders from CUDA graphs, in training too,
            which pays where kernel launches bound a step
            (docs/benchmark.md); it excludes ``cuda_graphs``.
        frozen (Sequence[str]): Parameters left out of training: names or
            dotted prefixes, e.g. ``('clip.token_embedding', )``. A frozen
            parameter gets no gradient, so backward and the optimizer skip
            its work (the 49,408-row token table is most of a small CLIP's
            weights). A name that matches nothing raises ValueError.
        cuda_graphs (bool): Replay predict's video encoding and scoring
            from CUDA graphs, one per input shape
            (:mod:`models.acceleration.cuda_graphs`): removes the launch
            overhead that bounds small batches. Same kernels, same
            numbers; costs a capture per new batch shape and the graphs'
            activation memory.
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
                 templates_or_template_file: Optional[Union[str,
                                                            List[str]]] = None,
                 template: Optional[Union[str, List[str]]] = None,
                 loss: Dict = dict(type='CrossEntropyLoss', loss_weight=0.5),
                 contrastive_targets: str = 'diagonal',
                 text_chunk_size: int = 2048,
                 temporal_shift: bool = False,
                 fast_attention: bool = True,
                 fast_patch_embedding: bool = True,
                 compile: Union[bool, str, dict] = False,
                 cuda_graphs: bool = False,
                 frozen: Sequence[str] = (),
                 data_preprocessor: Optional[Dict] = None,
                 init_cfg: Optional[Dict] = None):
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
        self.to_float32 = to_float32
        self.adapter = build_adapter(temporal_adapter,
                                     self.clip.text_projection.shape[1],
                                     num_adapter_segs, num_adapter_layers)
        if fast_attention:
            use_fast_attention(self)
        if fast_patch_embedding:
            use_patch_embedding(self.clip)
        options = compile_options(compile) if compile else None
        if options is not None:
            # nn.Module.compile keeps parameter names; torch.compile(module)
            # would prefix them with '_orig_mod.' and break checkpoints.
            self.clip.visual.compile(**options)
            self.adapter.compile(**options)
            self.clip.transformer.compile(**options)
        # Compiled text is fed the label set's longest prompt length in
        # training, one shape, not the batch's, a new shape each step.
        self._compiled_text = options is not None
        # These torch.compile modes replay CUDA graphs of their own.
        self._compiled_graphs = options is not None and options.get(
            'mode') in ('reduce-overhead', 'max-autotune')
        if self._compiled_graphs and cuda_graphs:
            raise ValueError(
                f'compile={compile!r} replays CUDA graphs itself; set '
                'cuda_graphs=False with it (or compile without that mode)')
        self.frozen = freeze_parameters(self, frozen)
        self._graphs = (
            CudaGraphRunner(self._scores, self) if cuda_graphs else None)
        self.loss_func = loss_func
        build_contrastive_targets(torch.zeros(1), contrastive_targets)
        self.contrastive_targets = contrastive_targets
        self.templates = load_templates(templates_or_template_file, template)
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

    def to(self, *args, **kwargs) -> 'ActionClip':
        """Move the model; on CUDA, store CLIP in float16 unless
        ``to_float32``."""
        super().to(*args, **kwargs)
        self._maybe_half()
        return self

    def cuda(self, *args, **kwargs) -> 'ActionClip':
        """Move the model to CUDA (see :meth:`to`)."""
        super().cuda(*args, **kwargs)
        self._maybe_half()
        return self

    def _maybe_half(self) -> None:
        if (not self.to_float32 and self.clip.positional_embedding.is_cuda
                and self.clip.dtype == torch.float32):
            convert_weights(self.clip)

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
                video.view(len(inputs), -1, video.shape[-1]), text)

    def loss(self, inputs: torch.Tensor, data_samples: List) -> Dict:
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
            gather_labels(labels.to(logits.device)), self.contrastive_targets)
        return dict(
            loss_v2t=self.loss_func(logits, targets),
            loss_t2v=self.loss_func(logits.t(), targets))

    def predict(self, inputs: torch.Tensor, data_samples: List) -> List:
        """Set ``pred_score`` on each data sample.

        Args:
            inputs (torch.Tensor): ``(N, V * T, C, H, W)`` frames.
            data_samples (list[ActionDataSample]): One per video.

        Returns:
            list[ActionDataSample]: The samples with ``pred_score``.
        """
        self._check_sample_labels(data_samples)
        scores = self.predict_scores(inputs)
        for sample, score in zip(data_samples, scores):
            sample.set_pred_score(score)
        return data_samples

    def _check_sample_labels(self, data_samples: Optional[List]) -> None:
        # A label the label set lacks can never be predicted right: the
        # accuracy would be wrong without a word (configs without
        # LabelSetCheckHook reach this first).
        bank = self._require_labels()
        for sample in data_samples or ():
            gt = sample.get('gt_label') if hasattr(sample, 'get') else None
            if gt is None:
                continue
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
                data_samples: Optional[List] = None,
                mode: str = 'tensor'):
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

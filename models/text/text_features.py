"""Text features of prompts: encoded in chunks, cut to the longest prompt,
and cached while the text encoder's weights stay the same."""
from typing import Optional, Sequence, Tuple

import torch

from models.text.prompts import eot_lengths, prompt_tokens


def encode_text(clip_model: torch.nn.Module,
                tokens: torch.Tensor,
                chunk_size: Optional[int] = None,
                length: Optional[int] = None) -> torch.Tensor:
    """``(N, D)`` unnormalised features of ``(N, 77)`` tokens by a
    :class:`clip.model.CLIP`, exact: under CLIP's causal mask the padding
    after the longest prompt's end-of-text token changes no feature, so it
    is cut (to ``length`` tokens instead where given: fixed shapes for
    compiled encoders), and ``chunk_size`` prompts are encoded at a time."""
    if tokens.numel() == 0:
        raise ValueError('No prompts to encode')
    longest = int(eot_lengths(tokens).max())
    if length is not None and not longest <= length <= tokens.shape[1]:
        raise ValueError(f'length={length} would cut prompts of {longest} '
                         f'tokens; use {longest} to {tokens.shape[1]}')
    tokens = tokens[:, :length or longest]
    device = clip_model.positional_embedding.device
    chunk_size = chunk_size or len(tokens)
    return torch.cat([
        clip_model.encode_text(tokens[i:i + chunk_size].to(device))
        for i in range(0, len(tokens), chunk_size)
    ])


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """Divide by the L2 norm over the last dim, as CLIP does (no eps)."""
    return x / x.norm(dim=-1, keepdim=True)


class PromptBank:
    """The (template, label) prompts of ``labels`` and ``templates`` and
    their features, encoded ``chunk_size`` prompts a pass and reused until
    a text-encoder weight changes: the cache key holds each parameter's
    storage and version counter, which an optimizer step,
    ``load_state_dict`` or a move all change."""

    def __init__(self,
                 labels: Sequence[str],
                 templates: Sequence[str],
                 chunk_size: int = 2048):
        self.labels = list(labels)
        self.templates = list(templates)
        self.chunk_size = chunk_size
        self.tokens = prompt_tokens(self.labels, self.templates)
        #: Tokens of the longest prompt, end-of-text included.
        self.max_length = int(eot_lengths(self.tokens.flatten(0, 1)).max())
        self._key: Optional[Tuple] = None
        self._features: Optional[torch.Tensor] = None

    @property
    def num_templates(self) -> int:
        return len(self.templates)

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @staticmethod
    def _weights_key(clip_model: torch.nn.Module) -> Tuple:
        device = clip_model.positional_embedding.device
        autocast = torch.is_autocast_enabled(device.type)
        # Every tensor the text encoder reads
        params = [clip_model.positional_embedding, clip_model.text_projection]
        for name in ('token_embedding', 'transformer', 'ln_final'):
            params.extend(getattr(clip_model, name).parameters())
        return (device, autocast,
                torch.get_autocast_dtype(device.type) if autocast else None,
                tuple((p.data_ptr(), p._version, p.dtype) for p in params))

    def features(self, clip_model: torch.nn.Module) -> torch.Tensor:
        """``(num_templates, num_labels, D)`` float32 L2-normalised
        features of every prompt by the text encoder of ``clip_model``,
        computed without gradient."""
        key = self._weights_key(clip_model)
        if self._features is None or key != self._key:
            self._features = None  # free the old ones before computing
            with torch.no_grad():
                feats = encode_text(clip_model, self.tokens.flatten(0, 1),
                                    self.chunk_size)
            # float32 whatever the encoder's: scores are float32.
            self._features = l2_normalize(feats.float()).view(
                self.num_templates, self.num_labels, -1)
            self._key = key
        return self._features

    def clear(self) -> None:
        """Drop the cached features."""
        self._key = self._features = None

"""Label texts, prompt templates and their CLIP tokens. Standard library
at import: the tools check ``--labels`` and ``--template`` before torch.
"""
from __future__ import annotations

import collections
import os.path as osp
import warnings
from typing import TYPE_CHECKING, List, Optional, Sequence, Union

if TYPE_CHECKING:
    import torch

#: The 16 prompt templates of ActionCLIP (Wang et al., 2021).
DEFAULT_TEMPLATES = (
    'a photo of action {}',
    'a picture of action {}',
    'Human action of {}',
    '{}, an action',
    '{} this is an action',
    '{}, a video of action',
    'Playing action of {}',
    '{}',
    'Playing a kind of action, {}',
    'Doing a kind of action, {}',
    'Look, the human is {}',
    'Can you recognize the action of {}?',
    'Video classification of {}',
    'A video of {}',
    'The man is {}',
    'The woman is {}',
)

CONTEXT_LENGTH = 77


def _read_lines(path: str, what: str) -> List[str]:
    """The lines of a UTF-8 file; a blank line inside is refused (it
    would shift every later class index)."""
    from models.utils.paths import require_file
    path = require_file(
        path, f'{what} file',
        ' (relative paths are resolved from the current directory: run '
        'from the project root, or pass an absolute path or a list)')
    try:
        # utf-8-sig: a byte-order mark is not part of the first label.
        with open(path, encoding='utf-8-sig') as f:
            lines = [line.strip() for line in f.read().splitlines()]
    except UnicodeDecodeError as error:
        line = 1 + error.object[:error.start].count(b'\n')
        raise ValueError(
            f'{what} file {path!r} is not UTF-8 text (byte {error.start}, '
            f'line {line}); save it as UTF-8') from None
    while lines and not lines[-1]:
        lines.pop()
    for number, line in enumerate(lines, 1):
        if not line:
            raise ValueError(f'{what} file {path!r} has a blank line at line '
                             f'{number}; remove it (each line is one entry)')
    return lines


def load_labels(labels_or_label_file: Union[str, Sequence[str]]) -> List[str]:
    """The class names of a list, or of a UTF-8 file (line ``i`` is class
    ``i``); warns of labels the model would read as the same text."""
    if isinstance(labels_or_label_file, str):
        labels = _read_lines(labels_or_label_file, 'Label')
        source = repr(labels_or_label_file)
    elif isinstance(labels_or_label_file, (list, tuple)):
        labels = [str(label).strip() for label in labels_or_label_file]
        source = 'the label list'
        if not all(labels):
            raise ValueError(f'{source} contains an empty label at index '
                             f'{labels.index("")}')
    else:
        raise TypeError('labels_or_label_file must be a list of class names '
                        'or the path of a label file, got '
                        f'{type(labels_or_label_file).__name__}')
    if not labels:
        raise ValueError(f'{source} holds no labels: give at least one')
    duplicates = sorted(x for x, n in collections.Counter(labels).items()
                        if n > 1)
    if duplicates:
        warnings.warn(
            f'{source} repeats labels {duplicates}: each copy '
            'is a separate class and they will split the probability')
    # CLIP's tokenizer lowercases and collapses spaces.
    same_text: dict = {}
    for label in dict.fromkeys(labels):
        same_text.setdefault(' '.join(label.lower().split()), []).append(label)
    alike = [group for group in same_text.values() if len(group) > 1]
    if alike:
        warnings.warn(
            f'{source} has labels that differ only in case or spacing '
            f'({"; ".join(" / ".join(map(repr, g)) for g in alike)}): the '
            'model reads them as the same text, so they will split the '
            'probability; keep one of each')
    return labels


def names_a_file(text: str) -> bool:
    """Whether a template without ``{}`` means a file: it exists or looks
    like a path (a mistyped path is then reported as missing)."""
    return (osp.lexists(osp.expanduser(text)) or '/' in text
            or osp.sep in text or text.endswith('.txt'))


def load_templates(template: Union[None, str, Sequence[str]] = None
                   ) -> List[str]:
    """Prompt templates, each with one ``{}`` (as in ``'a video of
    {}'``), from one template, a list, or a UTF-8 file of one a line (a
    string without ``{}`` that :func:`names_a_file`); None: the 16
    ActionCLIP templates. The model's ``template``, ``set_labels`` and the
    tools' ``--template`` all read them so."""
    if template is None:
        return list(DEFAULT_TEMPLATES)
    if isinstance(template, str):
        if '{' in template or not names_a_file(template):
            templates = [template]
        else:
            templates = _read_lines(template, 'Template')
    elif isinstance(template, (list, tuple)):
        templates = list(template)
    else:
        raise TypeError('template must be a string, a list of strings or '
                        'the path of a file with one template a line, got '
                        f'{type(template).__name__}')
    if not templates:
        raise ValueError('The template list is empty: give at least one, '
                         "for example 'a video of {}'")
    for t in templates:
        if not isinstance(t, str):
            raise TypeError(f'Template {t!r} is not a string')
        try:
            filled = t.format('\0')
        except (IndexError, KeyError, ValueError) as e:
            raise ValueError(
                f'Template {t!r} cannot be filled with a label ({e}); use '
                "exactly one '{}' where the label goes") from None
        if '\0' not in filled:
            raise ValueError(f"Template {t!r} has no '{{}}' for the label, so "
                             "every class would get the same text; write "
                             "e.g. 'a video of {}'")
    return templates


def tokenize(texts: Sequence[str],
             context_length: int = CONTEXT_LENGTH) -> torch.Tensor:
    """``clip.tokenize(texts, truncate=True)``, token for token, but a
    warning names the texts that were cut."""
    from clip.clip import _tokenizer, tokenize
    # One token more than fits: a text that reaches it was cut.
    tokens = tokenize(list(texts), context_length + 1, truncate=True)
    was_cut = tokens[:, -1] != 0
    tokens = tokens[:, :context_length].contiguous()
    tokens[was_cut, -1] = _tokenizer.encoder['<|endoftext|>']
    cut = [text for text, c in zip(texts, was_cut.tolist()) if c]
    if cut:
        shown = ', '.join(repr(t) for t in cut[:3])
        more = f' and {len(cut) - 3} more' if len(cut) > 3 else ''
        warnings.warn(f'{len(cut)} prompt(s) exceed CLIP\'s {context_length}-'
                      f'token context and were cut: {shown}{more}')
    return tokens


def build_prompts(labels: Sequence[str],
                  templates: Sequence[str]) -> List[str]:
    """Every (template, label) prompt, template-major: prompt ``t *
    len(labels) + c`` is template ``t`` filled with label ``c``."""
    return [t.format(label) for t in templates for label in labels]


def eot_lengths(tokens: torch.Tensor) -> torch.Tensor:
    """``(N,)`` lengths of :func:`tokenize` rows up to their end-of-text
    token (the largest id, as CLIP finds it)."""
    return tokens.argmax(dim=-1) + 1


def prompt_tokens(labels: Sequence[str],
                  templates: Optional[Sequence[str]] = None) -> torch.Tensor:
    """``(len(templates), len(labels), 77)`` tokens of every (template,
    label) prompt; the ActionCLIP templates by default."""
    templates = list(templates or DEFAULT_TEMPLATES)
    tokens = tokenize(build_prompts(labels, templates))
    return tokens.view(len(templates), len(labels), -1)

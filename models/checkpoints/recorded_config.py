"""The config a checkpoint records in ``meta['cfg']``, read with :mod:`ast`
as plain data: ``Config.fromstring`` would execute it as Python."""
import ast
from typing import Any, Optional

from mmengine.config import Config


class ConfigTextError(ValueError):
    """A recorded config holds something other than plain data."""


class _DictCalls(ast.NodeTransformer):
    """``dict(key=value)`` calls (as ``pretty_text`` writes dicts) as dict
    literals, for :func:`ast.literal_eval`."""

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if (isinstance(node.func, ast.Name) and node.func.id == 'dict'
                and not node.args
                and all(k.arg is not None for k in node.keywords)):
            return ast.Dict([ast.Constant(k.arg) for k in node.keywords],
                            [k.value for k in node.keywords])
        return node


def parse_config_text(text: str) -> Config:
    """Read ``Config.pretty_text`` (``name = value`` lines of literals and
    ``dict(key=value)`` calls) as data; anything else raises
    :class:`ConfigTextError`, unexecuted."""
    try:
        tree = ast.parse(text)
    except SyntaxError as error:
        raise ConfigTextError(f'not valid Python ({error})') from None
    data = {}
    for statement in tree.body:
        if not (isinstance(statement, ast.Assign)
                and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)):
            raise ConfigTextError(
                f'line {statement.lineno} is not `name = value`')
        name = statement.targets[0].id
        try:
            data[name] = ast.literal_eval(_DictCalls().visit(statement.value))
        except (ValueError, TypeError, SyntaxError):
            raise ConfigTextError(
                f'the value of {name!r} at line {statement.lineno} is not '
                'made of literals and dict(key=value) calls') from None
    return Config(data)


def recorded_config(checkpoint: Any, source: str) -> Optional[Config]:
    """The config recorded in ``checkpoint`` (read from ``source``), or
    None; :class:`ConfigTextError` when it is not plain data."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    text = meta.get('cfg') if isinstance(meta, dict) else None
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return parse_config_text(text)
    except ConfigTextError as error:
        raise ConfigTextError(
            f"The config recorded in {source} (meta['cfg']) is not plain "
            f'data: {error}. It is not executed; pass the config the model '
            'was trained with (--config / config=)') from None

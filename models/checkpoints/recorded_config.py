"""The config a checkpoint records in ``meta['cfg']``, read with :mod:`ast`
as plain data: ``Config.fromstring`` would execute it as Python."""
import ast
from typing import Any, Optional

from mmengine.config import Config


class ConfigTextError(ValueError):
    """A recorded config holds something other than plain data."""


def _value(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    for kind, make in ((ast.List, list), (ast.Tuple, tuple), (ast.Set, set)):
        if isinstance(node, kind):
            return make(_value(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise ConfigTextError('dict unpacking (**) is not plain data')
        return {_value(k): _value(v) for k, v in zip(node.keys, node.values)}
    if (isinstance(node, ast.UnaryOp)
            and isinstance(node.op, (ast.USub, ast.UAdd))):
        operand = _value(node.operand)
        if not isinstance(operand, (int, float, complex)):
            raise ConfigTextError('a sign before something not a number')
        return -operand if isinstance(node.op, ast.USub) else operand
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == 'dict' and not node.args
            and all(k.arg is not None for k in node.keywords)):
        return {k.arg: _value(k.value) for k in node.keywords}
    raise ConfigTextError(
        f'{type(node).__name__} at line {getattr(node, "lineno", "?")} is '
        'not plain data')


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
        data[statement.targets[0].id] = _value(statement.value)
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

"""The plugin's modules import one another without circles, counting the
imports inside functions too (a circle dodged by a late import is still
one: neither module can be read without the other)."""
import ast
import graphlib
import os
import os.path as osp

from conftest import ROOT


def plugin_imports() -> dict:
    """``{module: {plugin modules it imports}}`` for every file of
    ``models/``, read from the source."""
    files = {}
    for folder, _, names in os.walk(osp.join(ROOT, 'models')):
        for name in names:
            if name.endswith('.py'):
                path = osp.join(folder, name)
                module = osp.relpath(path, ROOT)[:-3].replace(os.sep, '.')
                files[module.removesuffix('.__init__')] = path
    graph = {}
    for module, path in files.items():
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module)
                imported.update(f'{node.module}.{alias.name}'
                                for alias in node.names)
        # a package's own submodules are its contents, not a circle
        graph[module] = {
            name for name in imported
            if name in files and name != module
            and not name.startswith(module + '.')
        }
    return graph


def test_the_checker_finds_a_circle():
    graph = dict(a={'b'}, b={'a'})
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError:
        return
    raise AssertionError('a circle was not found')


def test_no_import_circles():
    graph = plugin_imports()
    assert 'models.apis.video_scoring' in graph['models.apis.feature_cache']
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        raise AssertionError(f'import circle: {error.args[1]}') from None

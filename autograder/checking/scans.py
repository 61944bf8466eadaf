"""Static scans of answer code, in the grader, before anything runs: names of library
calls a part forbids, and of torch internals that switch off the run-time recorder."""
from __future__ import annotations

import ast

__all__ = ["static_library_uses", "static_imports", "RECORDER_SWITCHES"]

# torch internals that turn off or step around the torch-function mode that records library
# calls at run time (each tried in the red-team tests); naming one in an answer costs the part.
RECORDER_SWITCHES = ("DisableTorchFunction", "DisableTorchFunctionSubclass",
                     "_pop_mode_temporarily", "_pop_mode", "_pop_torch_function_stack",
                     "_push_on_torch_function_stack", "_len_torch_function_stack",
                     "_get_function_stack_at", "_set_torch_function_mode",
                     "_disable_current_modes", "_disabled_torch_function_impl",
                     "_is_torch_function_mode_enabled")


def static_imports(source: str, modules: tuple[str, ...]) -> list[tuple[int, str]]:
    """(line, module) for every import statement of one of ``modules`` or a submodule."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append((node.lineno, node.module))
    return sorted({(line, name) for line, name in names
                   if any(name == m or name.startswith(m + ".") for m in modules)})


def static_library_uses(source: str, names: tuple[str, ...]) -> list[tuple[int, str]]:
    """(line, name) for every reference to a forbidden name: attributes, names, strings."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    hits = []
    for node in ast.walk(tree):
        found = (node.attr if isinstance(node, ast.Attribute) else
                 node.id if isinstance(node, ast.Name) else
                 node.value if isinstance(node, ast.Constant) and isinstance(node.value, str)
                 else None)
        if found in names:
            hits.append((node.lineno, found))
    return sorted(set(hits))

"""What keeps an answer from being imported instead of written, checked in the child where
the answer runs, by means its code cannot switch off.

- An audit hook (``sys.addaudithook``: once added, no Python code can remove it) refuses
  every import of a module that holds reference answers (the course's package, d2l) and
  writes down that it did, before the answer cells run. In a job that checks a function
  or a block nothing else imports those modules, so every such import is refused; in a
  job that trains, the grader's own training code imports the course's package, so only
  imports that student code asks for (a frame compiled from an answer cell, or from a
  string, on the stack) are refused.
- Provenance: the graded function or class must be defined by the answer cells' own code.
  A function's code object must be one that compiling the answer cells made (identity,
  not name); a class's methods likewise, and every class it derives from must be defined
  there too, or be ``nn.Module`` itself. An alias of a reference, a subclass of one, or a
  function built by ``exec`` from a reference's source all fail.

Names this module uses are captured when it is imported, before any student code runs,
so patching builtins later changes nothing here.
"""
from __future__ import annotations

import sys
import types

__all__ = ["code_tree", "origin_problem", "install_import_guard", "REFUSED"]

REFUSED = ("cnncourse", "d2l")   # modules that hold reference answers
_type, _id, _len, _str, _isinstance = type, id, len, str, isinstance
_any, _all, _range, _set, _frozenset, _list = any, all, range, set, frozenset, list
_dict_get = dict.get
_FunctionType, _CodeType = types.FunctionType, types.CodeType
_startswith, _str_eq = str.startswith, str.__eq__
_getframe, _addaudithook = sys._getframe, sys.addaudithook
_code_of = _FunctionType.__dict__["__code__"].__get__
_mro_of = type.__dict__["__mro__"].__get__
_dict_of = type.__dict__["__dict__"].__get__
_fn_dict_of = _FunctionType.__dict__["__dict__"].__get__


def code_tree(codes: list) -> frozenset[int]:
    """The ids of every code object inside the answer cells' compiled code (kept alive by
    ``codes`` for as long as the ids are used)."""
    seen: set[int] = _set()
    stack = _list(codes)
    while stack:
        code = stack.pop()
        if _id(code) in seen:
            continue
        seen.add(_id(code))
        stack += [c for c in code.co_consts if _type(c) is _CodeType]
    return _frozenset(seen)


def _own_function(fn, tree: frozenset[int]) -> bool:
    """A function from the answer cells, or a decorator's wrapper around one."""
    for _ in _range(8):
        if _id(_code_of(fn)) in tree:
            return True
        wrapped = _dict_get(_fn_dict_of(fn), "__wrapped__")  # functools.wraps, torch.no_grad()
        if _type(wrapped) is not _FunctionType:
            return False
        fn = wrapped
    return False


def _own_class(cls, tree: frozenset[int], allowed: tuple) -> bool:
    for klass in _mro_of(cls):
        if _any(klass is a for a in allowed):
            continue
        own = _dict_of(klass)
        functions = [v for v in own.values() if _type(v) is _FunctionType]
        if not functions:  # adds nothing (``class Base(nn.Module): pass``): made in a cell?
            if _str_eq(_str(own.get("__module__")), "__main__"):
                continue
            return False
        if not _all(_own_function(f, tree) for f in functions):
            return False
    return True


def origin_problem(obj, tree: frozenset[int], allowed_bases: tuple = (object,)) -> str | None:
    """None when ``obj`` is defined by the answer cells; else where it seems to come from
    (the module it names, which only the message uses)."""
    if _type(obj) is _FunctionType:
        ok = _own_function(obj, tree)
    elif _isinstance(obj, type):
        ok = _own_class(obj, tree, (object, *allowed_bases))
    else:
        ok = False
    if ok:
        return None
    module = _dict_get(_fn_dict_of(obj), "__module__") if _type(obj) is _FunctionType else \
        (_dict_of(obj).get("__module__") if _isinstance(obj, type) else None)
    return module if _type(module) is _str and _len(module) <= 80 else "elsewhere"


def _student_frame() -> bool:
    """Is code compiled from an answer cell (or from a string) on the current stack?"""
    frame = _getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if _type(name) is _str and (_startswith(name, "<cell ") or _str_eq(name, "<string>")):
            return True
        frame = frame.f_back
    return False


def install_import_guard(refused: list[str], paths: list[str], strict: bool, emit) -> None:
    """Refuse, from now on, imports of ``refused`` modules (and their submodules) and
    running code from files under ``paths`` (their folders: ``importlib.import_module``
    raises no import event, but every module it loads runs through ``exec``). Each
    refusal is reported through ``emit`` before the import fails."""
    refused = [_str(r) for r in refused]
    paths = [_str(p).rstrip("/") + "/" for p in paths]

    def refuse(what: str) -> None:
        if strict or _student_frame():
            emit({"op": "refused_import", "module": what[:80]})
            raise ImportError(f"{what} holds the course's reference answers and is not "
                              "available to answers: write it yourself")

    def hook(event, args):
        if _str_eq(event, "exec") and args and _type(args[0]) is _CodeType:
            filename = args[0].co_filename
            if _type(filename) is _str:
                for r, path in by_path:
                    if _startswith(filename, path):
                        refuse(r)
            return
        if not _str_eq(event, "import") or not args or _type(args[0]) is not _str:
            return
        name = args[0]
        for r in refused:
            if _str_eq(name, r) or _startswith(name, r + "."):
                refuse(name)
                return

    by_path = [(_package_of(p, refused), p) for p in paths]
    _addaudithook(hook)


def _package_of(path: str, refused: list[str]) -> str:
    """The refused package a folder holds (its last path component), for the message."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name if name in refused else (refused[0] if refused else name)

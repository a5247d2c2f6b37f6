"""What a stored row may make jobctl import: the rule behind job class paths and Enum arguments.

A row never chooses which code runs (SPEC 9). A path it names resolves, without importing, in a module
this process has already imported (the application, the `imports:` of queue.yml and everything they
import). A module not imported yet is imported only when it is one of:

- a module under a package named in `imports` (the configuration's `imports:`), or
- the application's own code: found on `sys.path` outside Python's standard library and installed
  packages (site-packages, dist-packages), not part of jobctl, and its source file defines the named
  class at its top level (read, not run, before the import).

Anything else raises `JobClassError` and imports nothing: `this:X`, `antigravity:X`, `os:system`, an
installed package's module, a script of the project that defines no such class. Attributes are read
statically: no module `__getattr__` or descriptor runs either.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Sequence
from typing import Any

from jobctl.errors import JobClassError


def resolve_path(path: str, *, what: str = "job class", imports: Sequence[str] = ()) -> Any:
    """The object a stored `module:QualName` names, under the rule above; `what` names it in errors."""
    module_name, qualname = _split_class_path(path, what)
    if module_name not in sys.modules:
        refusal = _import_refusal(module_name, qualname, imports)
        if refusal is not None:
            raise JobClassError(f"{what} {path!r} {refusal}")
    try:
        # For a loaded module this runs nothing: it returns it, after waiting for another thread
        # that may be importing it right now (never a half-initialised module).
        module = importlib.import_module(module_name)
    except Exception as exc:  # the application's module may raise anything while importing
        text = " ".join(str(exc).split())
        raise JobClassError(f"{what} {path!r} cannot be imported: {type(exc).__name__}"
                            + (f": {text}" if text else "")) from None
    obj: Any = module
    for part in qualname.split("."):
        try:
            obj = inspect.getattr_static(obj, part)
        except AttributeError:
            raise JobClassError(f"{what} {path!r} cannot be imported: {module_name} has no attribute "
                                f"{qualname!r}") from None
    return obj


def _split_class_path(path: str, what: str) -> tuple[str, str]:
    """(module, qualname) of `module:QualName` or `module.QualName`, as `arguments.import_path` reads them."""
    module_name, sep, qualname = path.partition(":")
    if not sep:
        module_name, _, qualname = path.rpartition(".")
    names = [*module_name.split("."), *qualname.split(".")]
    if not module_name or not qualname or not all(n.isidentifier() for n in names):
        raise JobClassError(f"{what} {path!r} is not a class path (expected module:QualName)")
    return module_name, qualname


def _import_refusal(module_name: str, qualname: str, imports: Sequence[str]) -> str | None:
    """Why a row may not make us import `module_name` (None when it may), as the end of a sentence
    about the class path; imports nothing itself."""
    if any(module_name == root or module_name.startswith(root + ".") for root in imports):
        return None
    refused = "not imported: "
    if module_name == "jobctl" or module_name.startswith("jobctl."):
        return refused + "jobctl's own modules are used only as loaded"
    from importlib.machinery import PathFinder

    parts = module_name.split(".")
    locations: Any = None  # None: the top level, sys.path
    origin: str | None = None
    for i in range(len(parts)):
        name = ".".join(parts[: i + 1])
        loaded = sys.modules.get(name)
        if loaded is not None:
            origin, locations = getattr(loaded, "__file__", None), getattr(loaded, "__path__", None)
        else:
            spec = PathFinder.find_spec(name, locations)
            if spec is None:
                return f"cannot be imported: no module named {name!r}"
            origin, locations = spec.origin, spec.submodule_search_locations
            places = [origin] if spec.has_location and origin else list(locations or ())
            if not places or any(_installed(p) for p in places):
                return (refused + f"{name} is part of Python or an installed package, not the application's "
                        "code (a package listed in queue.yml's imports: is allowed)")
        if locations is None and i < len(parts) - 1:
            return f"cannot be imported: {name} is not a package"
    if origin is None or not origin.endswith(".py"):
        return refused + f"{module_name} has no Python source to check"
    top = qualname.split(".")[0]
    if not _defines_class(origin, top):
        return refused + f"{module_name} ({origin}) defines no class {top}"
    return None


def _installed(path: str) -> bool:
    """Whether a file or directory belongs to Python itself or to an installed distribution."""
    real = os.path.realpath(path)
    parts = real.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return True
    return any(real == root or real.startswith(root + os.sep) for root in _python_roots())


_roots: tuple[str, ...] | None = None


def _python_roots() -> tuple[str, ...]:
    """The standard library's directories (and zip), of this environment and its base installation."""
    global _roots
    if _roots is None:
        import sysconfig

        found: set[str] = set()
        for base in ({}, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
            paths = sysconfig.get_paths(vars=base)
            found.update(os.path.realpath(paths[key]) for key in ("stdlib", "platstdlib", "purelib", "platlib"))
        found.update(os.path.realpath(p) for p in sys.path if p.endswith(".zip"))
        _roots = tuple(sorted(found))
    return _roots


def _defines_class(filename: str, name: str) -> bool:
    """Whether the module source in `filename` has a `class name` statement at its top level (read as
    tokens, never run). Not `ast.parse`: on CPython 3.11 it fails with SystemError when two threads
    parse at once, and every executor thread of a new worker may be resolving a class."""
    import itertools
    import tokenize

    try:
        with open(filename, "rb") as f:
            tokens = list(tokenize.tokenize(f.readline))
    except (OSError, SyntaxError, ValueError, tokenize.TokenError):  # unreadable: not checked, so refused
        return False
    return any(tok.type == tokenize.NAME and tok.string == "class" and tok.start[1] == 0
               and nxt.type == tokenize.NAME and nxt.string == name
               for tok, nxt in itertools.pairwise(tokens))

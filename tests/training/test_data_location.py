from pathlib import Path

import pytest

from training.data import location
from training.data.location import DATA_DIR_ENV, data_root_for, resolve_data_dir


def test_explicit_argument_wins_over_environment(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "b"))
    assert resolve_data_dir(tmp_path / "a") == tmp_path / "a"
    assert resolve_data_dir(str(tmp_path / "a")) == tmp_path / "a"


def test_environment_wins_over_default(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(location, "DEFAULT_DATA_DIR", tmp_path / "not-used")
    assert resolve_data_dir() == tmp_path


def test_default_is_shared_data_next_to_the_repo(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert location.DEFAULT_DATA_DIR == Path(__file__).resolve().parents[3] / "shared" / "data"
    monkeypatch.setattr(location, "DEFAULT_DATA_DIR", tmp_path)
    assert resolve_data_dir() == tmp_path


def test_missing_folder_names_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match=r"nope.*MODELFN_DATA_DIR"):
        resolve_data_dir()


def test_data_root_for_accepts_the_root_or_the_data_set_folder(tmp_path, monkeypatch):
    (tmp_path / "cifar-10-batches-py").mkdir()
    assert data_root_for(tmp_path, "cifar-10-batches-py") == tmp_path
    assert data_root_for(str(tmp_path / "cifar-10-batches-py"), "cifar-10-batches-py") == tmp_path
    # No argument: the same lookup as resolve_data_dir, with the same two accepted forms.
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "cifar-10-batches-py"))
    assert data_root_for(None, "cifar-10-batches-py") == tmp_path


def test_data_root_for_names_the_folder_it_expected(tmp_path, monkeypatch):
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(FileNotFoundError, match=r"elsewhere holds no cifar-10-batches-py/"):
        data_root_for(tmp_path / "elsewhere", "cifar-10-batches-py")
    with pytest.raises(FileNotFoundError, match=r"missing.*--data"):
        data_root_for(tmp_path / "missing", "cifar-10-batches-py")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match=r"elsewhere holds no cifar-10-batches-py/"):
        data_root_for(None, "cifar-10-batches-py")

import tomllib

import pytest

from architectures import ARCHITECTURES, ModelConfigError, model_config
from modelfn.registry import load_registry
from training.config import ConfigError, ImageClassifierConfig, load_preset
from training.recipe import recipe_for

GOOD = """
[smoke]
epochs = 2
batch_size = 8
optimizer = "adamw"
lr = 1e-3
weight_decay = 0.05
schedule = "cosine"
warmup_epochs = 0.5
label_smoothing = 0.1
crop_padding = 4
hflip = true
[smoke.model]
width = 8
"""


def _write(tmp_path, text):
    path = tmp_path / "cfg.toml"
    path.write_text(text)
    return path


def test_the_shipped_config_validates_every_preset():
    path = load_registry().get("cifar10-cnn").training_config_path()
    for preset in ("smoke", "full"):
        cfg = load_preset(path, preset, ImageClassifierConfig)
        model_config(ARCHITECTURES["cifar10_cnn"], cfg.model, where=preset)
    assert (
        load_preset(path, "full", ImageClassifierConfig).epochs
        > load_preset(path, "smoke", ImageClassifierConfig).epochs
    )


def test_the_architecture_names_the_bad_key_for_training_and_serving_alike():
    # The one check behind a training config's [model] table and a manifest's architecture.config.
    with pytest.raises(ModelConfigError, match=r"m.json: unknown key\(s\) depth for Cifar10CNN"):
        model_config(ARCHITECTURES["cifar10_cnn"], {"depth": 3}, where="m.json")


@pytest.mark.parametrize("name", ["cifar10-cnn", "ptb-lstm", "imdb-sentiment"])
def test_every_registry_model_s_presets_validate(name):
    recipe = recipe_for(name)
    path = recipe.entry.training_config_path()
    presets = set(tomllib.loads(path.read_text())) - {"search"}  # search: tune's space
    assert {"smoke", "full", "tiny"} <= presets
    for preset in presets:
        cfg = load_preset(path, preset, recipe.task.config_schema)
        recipe.model_config(cfg, where=preset)


def test_a_good_file_loads(tmp_path):
    cfg = load_preset(_write(tmp_path, GOOD), "smoke", ImageClassifierConfig)
    assert cfg.optimizer == "adamw" and cfg.model == {"width": 8}
    assert cfg.parity_tolerance == 1e-4  # default


def test_unknown_key_is_named(tmp_path):
    path = _write(tmp_path, GOOD.replace("lr = 1e-3", "lr = 1e-3\nlearning_rate = 1e-3"))
    with pytest.raises(
        ConfigError, match=r"\[smoke\]\.learning_rate: Extra inputs are not permitted"
    ):
        load_preset(path, "smoke", ImageClassifierConfig)


def test_bad_value_is_named(tmp_path):
    path = _write(tmp_path, GOOD.replace('"adamw"', '"adam"'))
    with pytest.raises(ConfigError, match=r"\[smoke\]\.optimizer"):
        load_preset(path, "smoke", ImageClassifierConfig)


def test_a_broken_preset_fails_even_when_another_is_asked_for(tmp_path):
    path = _write(tmp_path, GOOD + "\n[full]\nepochs = 0\n")
    with pytest.raises(ConfigError, match=r"\[full\]\.epochs"):
        load_preset(path, "smoke", ImageClassifierConfig)


def test_unknown_preset_lists_the_presets(tmp_path):
    with pytest.raises(ConfigError, match=r"no preset \[fast\]; presets in the file: smoke"):
        load_preset(_write(tmp_path, GOOD), "fast", ImageClassifierConfig)


def test_model_arguments_are_checked_by_name_and_type():
    recipe = recipe_for("cifar10-cnn")

    def preset(model: dict) -> ImageClassifierConfig:
        return ImageClassifierConfig.model_validate(tomllib.loads(GOOD)["smoke"] | {"model": model})

    with pytest.raises(ConfigError, match=r"unknown key\(s\) widht"):
        recipe.model_config(preset({"widht": 8}), where="cfg.toml [smoke.model]")
    with pytest.raises(ConfigError, match=r"Cifar10CNNConfig\.width"):
        recipe.model_config(preset({"width": "wide"}), where="cfg.toml [smoke.model]")
    cfg = recipe.model_config(preset({"width": 8, "residual_stages": [1]}), where="x")
    assert cfg.width == 8 and cfg.residual_stages == (1,)

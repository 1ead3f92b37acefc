import pytest

from training.config import ConfigError
from training.errors import DataFormatError, TrainingError
from training.export_onnx import ParityError


@pytest.mark.parametrize("error", [ConfigError, DataFormatError, ParityError])
def test_user_facing_errors_share_the_base_the_cli_catches(error):
    # `modelfn train` catches exactly TrainingError (and FileNotFoundError for missing data).
    assert issubclass(error, TrainingError)
    assert issubclass(error, ValueError)

"""The one base class for problems a person running `modelfn train` can fix.

Every user-facing failure of the training pipeline is a `TrainingError`: a bad training config
(`training.config.ConfigError`), a damaged or foreign data file (`DataFormatError`), an ONNX graph
that disagrees with torch (`training.export_onnx.ParityError`), or a models.toml entry or config
value the pipeline cannot use. The CLI catches exactly this (plus FileNotFoundError for a missing
data folder) and prints the message, which names what was wrong, where, and what to do.
"""

from __future__ import annotations


class TrainingError(ValueError):
    """A problem with the inputs of training (models.toml entry, config, data) or with its result."""


class DataFormatError(TrainingError):
    """A data file is damaged or not in its data set's official format; the message names the file."""

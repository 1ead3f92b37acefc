"""Bring your own model (floor 3, beside training): `modelfn import` turns an ONNX file, a plain
torch nn.Module factory with its weights, or a Hugging Face folder into the same verified artifact
training writes (manifest, model.onnx, safetensors where weights exist), checked by a parity gate
that refuses. The user's code runs here, at import time, on the user's machine; nothing
executable or pickled goes into the artifact.

`import_model` takes all three; docs/import.md describes them.
"""

from importing.api import import_model
from importing.errors import ImportRefused, ParityRefused
from importing.image_scheme import ImageOptions
from importing.text_options import TextOptions

__all__ = ["ImageOptions", "ImportRefused", "ParityRefused", "TextOptions", "import_model"]

"""Feature extraction: texts -> the version's Hugging Face tokenizer -> one embedding per text.

`modelfn import` puts the pooling (the attention-masked mean of the last hidden states, or the
first token's) and the optional L2 normalisation inside the exported graph, so the graph takes
the tokenizer's tensors and returns the embeddings, FP32 [batch, dimensions], and serving adds
nothing: what the import's parity gate compared against torch is what every route returns.

- friendly predict: `{"inputs": ["a text", ...]}` -> one `{"embedding": [...]}` per text;
- Open Inference Protocol: a BYTES `text` tensor in, FP32 `embedding` [batch, dimensions] out;
- OpenAI's embeddings API (functions/routes/embeddings.py) calls `embed` for the same vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from functions.tasks.runner import NoParameters, Runner, validate_parameters
from functions.tasks.text_inputs import TEXT_INPUT, text_input_spec, texts_of
from functions.tasks.tokenized_text import encode_texts, load_tokenizer_file
from modelfn.artifact import ArtifactError, Manifest, TensorSpec
from modelfn.tokenizer_file import TokenizerFile

EMBEDDING_OUTPUT = "embedding"  # the OIP output, whatever the graph calls its output


class Embedding(BaseModel):
    """One text's embedding."""

    model_config = ConfigDict(extra="forbid")  # the OpenAPI schema: no other keys

    embedding: list[float] = Field(description="The text's vector, one float per dimension.")


@dataclass(frozen=True)
class Embeddings:
    vectors: NDArray[np.float32]  # [texts, dimensions]
    tokens: int  # tokens read in all, special tokens included (OpenAI's usage)


@dataclass(frozen=True)
class FeatureExtractor:
    manifest: Manifest
    tokenizer: TokenizerFile

    @property
    def dimensions(self) -> int:
        return self.manifest.outputs[0].shape[1]

    def embed(self, run: Runner, texts: list[Any], name: str = "inputs") -> Embeddings:
        """Every text's embedding: one onnxruntime call for the whole batch."""
        tokenized = encode_texts(self.tokenizer, texts, name)
        vectors = run(tokenized.feeds)[self.manifest.outputs[0].name]
        return Embeddings(np.asarray(vectors, dtype=np.float32), tokenized.tokens)

    def predict(
        self, run: Runner, inputs: list[Any], parameters: dict[str, Any]
    ) -> list[Embedding]:
        validate_parameters(NoParameters, parameters)
        return [Embedding(embedding=row.tolist()) for row in self.embed(run, inputs).vectors]

    def signature(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        return [text_input_spec()], [
            TensorSpec(name=EMBEDDING_OUTPUT, datatype="FP32", shape=[-1, self.dimensions])
        ]

    def infer(
        self, run: Runner, tensors: dict[str, NDArray[Any]], parameters: dict[str, Any]
    ) -> dict[str, NDArray[Any]]:
        validate_parameters(NoParameters, parameters)
        texts = texts_of(tensors[TEXT_INPUT])
        return {EMBEDDING_OUTPUT: self.embed(run, texts, TEXT_INPUT).vectors}


def load(manifest: Manifest, folder: Path) -> FeatureExtractor:
    output = manifest.outputs[0] if manifest.outputs else None
    if output is None or output.datatype != "FP32" or len(output.shape) != 2 or output.shape[1] < 1:
        raise ArtifactError(
            f"{manifest.name}: feature-extraction needs the first output to be the embeddings, "
            f"FP32 [-1, dimensions]; the manifest says {output.model_dump() if output else 'none'}"
        )
    return FeatureExtractor(manifest, load_tokenizer_file(manifest, folder))

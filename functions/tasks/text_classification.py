"""Text classification: texts -> the version's tokenizer -> token ids -> labelled scores.

Two kinds of tokenizer, by `manifest.preprocessing.kind`:
- `text` (the models trained here): the graph takes `tokens` int64 [batch, length], the ids of
  each text's unigrams followed by its known n-grams (`Tokenizer.features`), right-padded with
  the padding token (id 0);
- `tokenizer` (imported from Hugging Face): the graph takes what the tokenizer.json gives
  (input_ids, attention_mask, token_type_ids under the names the manifest maps them to),
  padded to the batch's longest text (functions/tasks/tokenized_text.py).

Either way the graph returns logits [batch, labels]. The friendly route answers like the image
classifier (label, score, top_k); over the Open Inference Protocol the input is the texts
themselves, a BYTES tensor, so an OIP client sends strings and never sees token ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from numpy.typing import NDArray

from functions.tasks.classification import (
    Classification,
    check_logits,
    label_tensors,
    parse_parameters,
    postprocess,
)
from functions.tasks.runner import NoParameters, Runner, validate_parameters
from functions.tasks.text_inputs import (
    TEXT_INPUT,
    load_tokenizer,
    padded,
    read_texts,
    text_input_spec,
    texts_of,
)
from functions.tasks.tokenized_text import encode_texts, load_tokenizer_file
from modelfn.artifact import ArtifactError, Manifest, TensorSpec, TokenizerPreprocessing

# Texts and how messages name their list -> the graph's inputs; BadInput naming a bad text.
Encoder = Callable[[list[Any], str], dict[str, NDArray[Any]]]


@dataclass(frozen=True)
class TextClassifier:
    manifest: Manifest
    encode: Encoder

    def logits(self, run: Runner, texts: list[Any], name: str = "inputs") -> NDArray[Any]:
        """[len(texts), labels]: one onnxruntime call for the whole batch."""
        return run(self.encode(texts, name))[self.manifest.outputs[0].name]

    def predict(
        self, run: Runner, inputs: list[Any], parameters: dict[str, Any]
    ) -> list[Classification]:
        options = parse_parameters(parameters, len(self.manifest.labels))
        manifest = self.manifest
        return postprocess(
            self.logits(run, inputs), manifest.labels, options.top_k, manifest.scores
        )

    def signature(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        labels = len(self.manifest.labels)
        return [text_input_spec()], [
            TensorSpec(name="label", datatype="BYTES", shape=[-1]),
            TensorSpec(name="score", datatype="FP32", shape=[-1]),
            TensorSpec(name="probabilities", datatype="FP32", shape=[-1, labels]),
        ]

    def infer(
        self, run: Runner, tensors: dict[str, NDArray[Any]], parameters: dict[str, Any]
    ) -> dict[str, NDArray[Any]]:
        validate_parameters(NoParameters, parameters)
        logits = self.logits(run, texts_of(tensors[TEXT_INPUT]), TEXT_INPUT)
        return label_tensors(logits, self.manifest.labels, self.manifest.scores)


def load(manifest: Manifest, folder: Path) -> TextClassifier:
    check_logits(manifest, "text-classification")
    if isinstance(manifest.preprocessing, TokenizerPreprocessing):  # imported from Hugging Face
        tokenizer_file = load_tokenizer_file(manifest, folder)
        return TextClassifier(
            manifest, lambda texts, name: encode_texts(tokenizer_file, texts, name).feeds
        )
    tokenizer = load_tokenizer(manifest, folder)
    if tokenizer.spec.padding_token is None:
        raise ArtifactError(f"{manifest.name}: text-classification needs a padding_token (id 0)")
    if len(manifest.inputs) != 1 or manifest.inputs[0].datatype != "INT64":
        raise ArtifactError(
            f"{manifest.name}: text-classification needs one INT64 input (token ids)"
        )
    graph_input = manifest.inputs[0].name

    def encode(texts: list[Any], name: str) -> dict[str, NDArray[Any]]:
        tokens = read_texts(texts, tokenizer, name)
        return {graph_input: padded([tokenizer.features(t) for t in tokens], pad=0)}

    return TextClassifier(manifest, encode)

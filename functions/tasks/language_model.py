"""Language modelling: next words, the perplexity of a text, and continuations, from one LSTM graph.

The graph (architectures/ptb_lstm.py) takes `tokens` int64 [batch, time] and the recurrent
state `h0`, `c0` float32 [layers, batch, hidden], and returns `logits` [batch, time, vocab] and
the new state `hn`, `cn`. Every text is read from the zero state with the end-of-sentence token
as its context, as a sentence of the training corpus is, so:

- `next`: the `top_k` most likely words after the text;
- `score`: the text's log-probability (nats, natural log) of its words and of the closing
  end-of-sentence token, and the perplexity exp(-log_prob / token_count), exactly what training
  reports as `test_sentence_perplexity` over a test file;
- `generate`: up to `max_tokens` words sampled after the text at `temperature` (0: always the
  most likely word), stopping early at the end of the sentence; the same `seed` gives the same
  words, and without one a seed is drawn and returned.

A batch runs as one onnxruntime call where the graph allows: right-padding is exact for `next`
and `score` (the LSTM reads left to right, so padding never reaches earlier positions), and long
batches run in time chunks that carry the state, to bound memory (MAX_LOGITS_PER_CALL).
Generation reads each prompt length's texts in one call (padding would reach the state), then
steps the whole batch together, one call per word.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from functions.errors import BadInput
from functions.limits import MAX_LOGITS_PER_CALL, MAX_NEW_TOKENS, MAX_TOP_K
from functions.tasks.classification import softmax
from functions.tasks.runner import Runner, validate_parameters
from functions.tasks.text_inputs import (
    TEXT_INPUT,
    load_tokenizer,
    padded,
    read_texts,
    text_input_spec,
    texts_of,
)
from modelfn.artifact import ArtifactError, Manifest, TensorSpec
from modelfn.text import Tokenizer

TOKENS, H0, C0, LOGITS, HN, CN = "tokens", "h0", "c0", "logits", "hn", "cn"
MAX_SEED = 2**63 - 1

Mode = Literal["next", "score", "generate"]
# Parameters that only one mode reads; sending them with another mode is a mistake worth naming.
MODE_PARAMETERS: dict[str, Mode] = {
    "top_k": "next",
    "max_tokens": "generate",
    "temperature": "generate",
    "seed": "generate",
}


class LanguageModelParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Mode = Field(default="next", description="next words, score (perplexity) or generate.")
    # The ranges are parse_parameters' checks, stated in the OpenAPI schema; the checks stay
    # there so that a 400 says the range in words.
    top_k: int = Field(
        default=5,
        strict=True,
        description=f"next: words per text, 1..{MAX_TOP_K}.",
        json_schema_extra={"minimum": 1, "maximum": MAX_TOP_K},
    )
    max_tokens: int = Field(
        default=20,
        strict=True,
        description=f"generate: words to add, 1..{MAX_NEW_TOKENS}.",
        json_schema_extra={"minimum": 1, "maximum": MAX_NEW_TOKENS},
    )
    temperature: float = Field(
        default=1.0,
        description="generate: softmax temperature, 0 (most likely word) to 10.",
        json_schema_extra={"minimum": 0, "maximum": 10},
    )
    seed: int | None = Field(
        default=None,
        strict=True,
        description="generate: same seed, same words; default random.",
        json_schema_extra={"minimum": 0, "maximum": MAX_SEED},
    )


class WordProbability(BaseModel):
    model_config = ConfigDict(extra="forbid")  # the OpenAPI schema: no other keys

    word: str
    probability: float


class NextWords(BaseModel):
    """mode=next: the text's tokens as the model read them, and the likeliest next words."""

    model_config = ConfigDict(extra="forbid")

    tokens: list[str]
    next: list[WordProbability]


class TextScore(BaseModel):
    """mode=score: how likely the model finds the text."""

    model_config = ConfigDict(extra="forbid")

    tokens: list[str]
    token_count: int = Field(description="Tokens predicted: the words plus the closing <eos>.")
    log_prob: float = Field(description="Natural-log probability of those tokens, in nats.")
    perplexity: float = Field(description="exp(-log_prob / token_count).")


class Continuation(BaseModel):
    """mode=generate: the words sampled after the text."""

    model_config = ConfigDict(extra="forbid")

    tokens: list[str]
    generated: list[str]
    text: str = Field(description="The generated words joined by spaces.")
    ended: bool = Field(description="True if the model ended the sentence before max_tokens.")
    seed: int


def parse_parameters(parameters: dict[str, Any], vocab_size: int) -> LanguageModelParameters:
    options: LanguageModelParameters = validate_parameters(LanguageModelParameters, parameters)
    for name, mode in MODE_PARAMETERS.items():
        if name in parameters and options.mode != mode:
            raise BadInput(
                f"parameters.{name}: only used with mode {mode!r}; this request's mode is {options.mode!r}"
            )
    top = min(MAX_TOP_K, vocab_size)
    if not 1 <= options.top_k <= top:
        raise BadInput(f"parameters.top_k: {options.top_k} is out of range; use 1..{top}")
    if not 1 <= options.max_tokens <= MAX_NEW_TOKENS:
        raise BadInput(
            f"parameters.max_tokens: {options.max_tokens} is out of range; use 1..{MAX_NEW_TOKENS}"
        )
    if not 0 <= options.temperature <= 10:
        raise BadInput(f"parameters.temperature: {options.temperature} is out of range; use 0..10")
    if options.seed is not None and not 0 <= options.seed <= MAX_SEED:
        raise BadInput(f"parameters.seed: {options.seed} is out of range; use 0..{MAX_SEED}")
    return options


@dataclass(frozen=True)
class LanguageModel:
    manifest: Manifest
    tokenizer: Tokenizer
    eos: int
    layers: int
    hidden: int

    # --- the graph, in chunks ------------------------------------------------------------------

    def zero_state(self, batch: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        shape = (self.layers, batch, self.hidden)
        return np.zeros(shape, np.float32), np.zeros(shape, np.float32)

    def chunks(
        self, run: Runner, ids: NDArray[np.int64]
    ) -> Iterator[tuple[int, dict[str, NDArray[Any]]]]:
        """(first position, graph outputs) per time chunk of `ids` [batch, time], from zero state.

        Each chunk's `logits` are [batch, chunk, vocab], at most MAX_LOGITS_PER_CALL positions;
        its `hn`, `cn` are the state after it (the last chunk's: after the whole text).
        """
        step = max(1, MAX_LOGITS_PER_CALL // len(ids))
        h, c = self.zero_state(len(ids))
        for start in range(0, ids.shape[1], step):
            out = run({TOKENS: ids[:, start : start + step], H0: h, C0: c})
            h, c = out[HN], out[CN]
            yield start, out

    def contexts(self, tokens: list[list[str]]) -> tuple[NDArray[np.int64], list[int]]:
        """Each text as `<eos> w1 .. wn`, right-padded; and each row's length."""
        rows = [[self.eos, *(self.tokenizer.ids[t] for t in text)] for text in tokens]
        return padded(rows, pad=self.eos), [len(r) for r in rows]

    # --- the three modes -----------------------------------------------------------------------

    def next_words(
        self, run: Runner, tokens: list[list[str]], top_k: int
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Ids [batch, top_k] and probabilities of the likeliest words after each text."""
        ids, lengths = self.contexts(tokens)
        last = np.zeros((len(ids), len(self.tokenizer.vocabulary)), dtype=np.float32)
        for start, out in self.chunks(run, ids):
            logits = out[LOGITS]
            for row, length in enumerate(lengths):
                if start <= length - 1 < start + logits.shape[1]:
                    last[row] = logits[row, length - 1 - start]
        probabilities = softmax(last)
        best = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
        return best, np.take_along_axis(probabilities, best, axis=1)

    def scores(
        self, run: Runner, tokens: list[list[str]]
    ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """Log-probability (nats) of each text's words and closing <eos>, and that token count."""
        ids, lengths = self.contexts(tokens)
        # The target at position t is the input at t + 1; a row's last target is <eos>.
        targets = np.concatenate([ids[:, 1:], np.full((len(ids), 1), self.eos)], axis=1)
        for row, length in enumerate(lengths):
            targets[row, length - 1] = self.eos
        valid = np.arange(ids.shape[1])[None, :] < np.asarray(lengths)[:, None]
        log_prob = np.zeros(len(ids), dtype=np.float64)
        for start, out in self.chunks(run, ids):
            logits = out[LOGITS]
            stop = start + logits.shape[1]
            # log p(target) = logit(target) - logsumexp(logits), without a float64 copy of the
            # [batch, chunk, vocab] block (the float64 sum keeps the precision that matters).
            top = logits.max(axis=-1, keepdims=True)
            lse = top[..., 0] + np.log(np.exp(logits - top).sum(axis=-1, dtype=np.float64))
            picked = np.take_along_axis(logits, targets[:, start:stop, None], axis=2)[..., 0]
            log_prob += np.where(valid[:, start:stop], picked - lse, 0.0).sum(axis=1)
        return log_prob, np.asarray(lengths, dtype=np.int64)

    def generate(
        self, run: Runner, tokens: list[list[str]], options: LanguageModelParameters, seed: int
    ) -> list[tuple[list[str], bool]]:
        """Each text's sampled words (without the closing <eos>) and whether the sentence ended."""
        ids, lengths = self.contexts(tokens)
        batch = len(ids)
        last = np.zeros((batch, len(self.tokenizer.vocabulary)), dtype=np.float32)
        h, c = self.zero_state(batch)
        # Texts of one length are read together (no padding, so their final state and logits are
        # exact), in time chunks like the other modes.
        for length in sorted(set(lengths)):
            rows = [r for r, n in enumerate(lengths) if n == length]
            *_, (_, out) = self.chunks(run, ids[rows, :length])
            h[:, rows], c[:, rows], last[rows] = out[HN], out[CN], out[LOGITS][:, -1]
        rng = np.random.default_rng(seed)
        words: list[list[str]] = [[] for _ in range(batch)]
        ended = [False] * batch
        for step in range(options.max_tokens):
            chosen = self.sample(last, options.temperature, rng)
            for row, token in enumerate(chosen):
                if ended[row]:
                    continue
                if token == self.eos:
                    ended[row] = True
                else:
                    words[row].append(self.tokenizer.vocabulary[token])
            if all(ended) or step == options.max_tokens - 1:
                break
            out = run({TOKENS: chosen[:, None], H0: h, C0: c})
            h, c, last = out[HN], out[CN], out[LOGITS][:, -1]
        return list(zip(words, ended, strict=True))

    @staticmethod
    def sample(
        logits: NDArray[Any], temperature: float, rng: np.random.Generator
    ) -> NDArray[np.int64]:
        """One id per row: the most likely at temperature 0, else drawn from softmax(logits / T)."""
        if temperature == 0:
            best: NDArray[np.int64] = np.asarray(logits.argmax(axis=1), dtype=np.int64)
            return best
        cumulative = np.cumsum(softmax(logits / temperature), axis=1)
        # Inverse CDF with one uniform draw per row: the same seed gives the same words.
        draws = rng.random(len(logits)) * cumulative[:, -1]
        picked = [np.searchsorted(row, u, side="right") for row, u in zip(cumulative, draws)]
        chosen: NDArray[np.int64] = np.minimum(
            np.asarray(picked, dtype=np.int64), logits.shape[1] - 1
        )
        return chosen

    # --- the Task interface --------------------------------------------------------------------

    def predict(self, run: Runner, inputs: list[Any], parameters: dict[str, Any]) -> list[Any]:
        options = parse_parameters(parameters, len(self.tokenizer.vocabulary))
        tokens = read_texts(inputs, self.tokenizer)
        if options.mode == "next":
            best, probabilities = self.next_words(run, tokens, options.top_k)
            return [
                NextWords(
                    tokens=text,
                    next=[
                        WordProbability(word=self.tokenizer.vocabulary[i], probability=float(p))
                        for i, p in zip(ids, probs, strict=True)
                    ],
                )
                for text, ids, probs in zip(tokens, best, probabilities, strict=True)
            ]
        if options.mode == "score":
            log_prob, counts = self.scores(run, tokens)
            return [
                TextScore(
                    tokens=text,
                    token_count=int(n),
                    log_prob=float(lp),
                    perplexity=float(np.exp(-lp / n)),
                )
                for text, lp, n in zip(tokens, log_prob, counts, strict=True)
            ]
        seed = options.seed if options.seed is not None else secrets.randbelow(MAX_SEED)
        return [
            Continuation(tokens=text, generated=words, text=" ".join(words), ended=ended, seed=seed)
            for text, (words, ended) in zip(
                tokens, self.generate(run, tokens, options, seed), strict=True
            )
        ]

    def signature(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        return [text_input_spec()], [
            # mode=next
            TensorSpec(name="next_words", datatype="BYTES", shape=[-1, -1]),
            TensorSpec(name="next_probabilities", datatype="FP32", shape=[-1, -1]),
            # mode=score
            TensorSpec(name="log_prob", datatype="FP32", shape=[-1]),
            TensorSpec(name="perplexity", datatype="FP32", shape=[-1]),
            TensorSpec(name="token_count", datatype="INT64", shape=[-1]),
            # mode=generate
            TensorSpec(name="generated", datatype="BYTES", shape=[-1]),
        ]

    def infer(
        self, run: Runner, tensors: dict[str, NDArray[Any]], parameters: dict[str, Any]
    ) -> dict[str, NDArray[Any]]:
        """The outputs of the request's mode (`parameters.mode`, default next)."""
        options = parse_parameters(parameters, len(self.tokenizer.vocabulary))
        tokens = read_texts(texts_of(tensors[TEXT_INPUT]), self.tokenizer, TEXT_INPUT)
        vocabulary = self.tokenizer.vocabulary
        if options.mode == "next":
            best, probabilities = self.next_words(run, tokens, options.top_k)
            words = np.vectorize(lambda i: vocabulary[i].encode(), otypes=[np.object_])(best)
            return {"next_words": words, "next_probabilities": probabilities.astype(np.float32)}
        if options.mode == "score":
            log_prob, counts = self.scores(run, tokens)
            return {
                "log_prob": log_prob.astype(np.float32),
                "perplexity": np.exp(-log_prob / counts).astype(np.float32),
                "token_count": counts,
            }
        seed = options.seed if options.seed is not None else secrets.randbelow(MAX_SEED)
        texts = [" ".join(words).encode() for words, _ in self.generate(run, tokens, options, seed)]
        return {"generated": np.array(texts, dtype=np.object_)}


def load(manifest: Manifest, folder: Path) -> LanguageModel:
    tokenizer = load_tokenizer(manifest, folder)
    eos = tokenizer.spec.eos_token
    names = ([t.name for t in manifest.inputs], [t.name for t in manifest.outputs])
    if eos is None or names != ([TOKENS, H0, C0], [LOGITS, HN, CN]):
        raise ArtifactError(
            f"{manifest.name}: language-modeling needs an eos_token and the graph "
            f"{TOKENS},{H0},{C0} -> {LOGITS},{HN},{CN}; manifest has {names}"
        )
    layers, _, hidden = manifest.inputs[1].shape
    if manifest.outputs[0].shape[-1] != len(tokenizer.vocabulary):
        raise ArtifactError(
            f"{manifest.name}: logits have {manifest.outputs[0].shape[-1]} entries, the vocabulary "
            f"{len(tokenizer.vocabulary)} tokens"
        )
    return LanguageModel(manifest, tokenizer, tokenizer.ids[eos], layers, hidden)

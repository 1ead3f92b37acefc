"""The language-modelling task: vocabulary, token streams, TBPTT training, perplexity, export.

Consumes any data set shaped like `training.data.ptb.PennTreebank` (`train`/`valid`/`test` lists
of sentences, each a list of words). Every sentence goes through `modelfn.text.Tokenizer`, the
code the function runs on requests, and ends with the end-of-sentence token, so training and
serving agree on every id.

Two perplexities are reported:
- `test_perplexity`, the standard figure (Zaremba et al. 2014; Mikolov's corpus): the test text
  as one stream, the recurrent state carried from sentence to sentence;
- `test_sentence_perplexity`: each sentence alone, from a fresh state with `<eos>` as its only
  context, predicting its words and its closing `<eos>`. This is what the function's `score`
  mode computes for a text, so the function can be checked against it exactly.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from architectures.ptb_lstm import PtbLstm
from modelfn.artifact import VOCAB_FILE, TextPreprocessing, vocabulary_json
from modelfn.text import Tokenizer
from training.config import LanguageModelConfig
from training.errors import TrainingError
from training.examples import sentence_examples
from training.export_onnx import GraphTensor
from training.loop import (
    BestCheckpoint,
    batchify,
    bptt_windows,
    evaluate_stream,
    make_optimizer,
    precision_in_use,
    train_bptt_epoch,
)
from training.progress import Progress
from training.reference import text_reference
from training.run import Run
from training.trained_model import Evaluation, TrainedModel

# The graph: tokens [batch, time] + state -> logits [batch, time, vocab] + new state.
TOKENS, H0, C0, LOGITS, HN, CN = "tokens", "h0", "c0", "logits", "hn", "cn"


def build_vocabulary(sentences: list[list[str]], pre: TextPreprocessing) -> list[str]:
    """End-of-sentence token (id 0), then every training word by falling count, ties alphabetical.

    A language-modelling corpus is text already in its tokens (Penn Treebank: lower-case, `N`,
    `<unk>`), so its words are counted as written; the preprocessing rules map raw request text
    onto them (and, as a test checks, map the corpus onto itself).
    """
    if pre.eos_token is None:
        raise TrainingError("a language model's preprocessing needs an eos_token")
    counts = Counter(word for sentence in sentences for word in sentence)
    ranked = sorted(counts, key=lambda word: (-counts[word], word))
    if pre.unknown_token not in counts:
        ranked.append(pre.unknown_token)
    return [pre.eos_token, *ranked]


def encode_sentences(sentences: list[list[str]], tokenizer: Tokenizer) -> list[list[int]]:
    """Each sentence's ids through the serving tokenizer (no `<eos>` added here)."""
    return [tokenizer.encode(" ".join(sentence)) for sentence in sentences]


def to_stream(sentences: list[list[int]], eos: int) -> torch.Tensor:
    """Sentences -> one int64 stream [N], each sentence followed by `eos` (the corpus convention)."""
    return torch.tensor([i for sentence in sentences for i in (*sentence, eos)], dtype=torch.int64)


@torch.no_grad()
def sentence_nll(
    model: nn.Module, sentences: list[list[int]], eos: int, batch_size: int
) -> np.ndarray:
    """Negative log-likelihood (nats) of each sentence scored alone, float64 [len(sentences)].

    Each sentence starts from the zero state with `<eos>` as context and predicts its words and
    a closing `<eos>` (len + 1 tokens), exactly as the function's `score` mode; batches are
    padded on the right, which leaves earlier positions untouched (the LSTM reads left to
    right), and the padding is masked out.
    """
    model.eval()
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    nll = np.zeros(len(sentences), dtype=np.float64)
    for b in range(0, len(order), batch_size):
        rows = order[b : b + batch_size]
        batch = [sentences[i] for i in rows]
        width = max(len(s) for s in batch) + 1
        x = torch.full((len(batch), width), eos, dtype=torch.int64)
        y = torch.full((len(batch), width), -100, dtype=torch.int64)  # -100: ignored by the loss
        for row, ids in enumerate(batch):
            x[row, 1 : len(ids) + 1] = torch.tensor(ids, dtype=torch.int64)
            y[row, : len(ids) + 1] = torch.tensor([*ids, eos], dtype=torch.int64)
        logits, *_ = model(x, *model.initial_state(len(batch)))  # type: ignore[operator]
        losses = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none", ignore_index=-100
        ).view(len(batch), width)
        nll[rows] = losses.double().sum(1).numpy()
    return nll


def perplexity_by_length(
    nll: np.ndarray, lengths: np.ndarray, edges: tuple[int, ...] = (10, 20, 30, 40)
) -> list[tuple[str, int, int, float]]:
    """(range of words, sentences, tokens, perplexity) per sentence-length bucket."""
    rows = []
    bounds = [0, *edges, int(lengths.max(initial=0))]
    for low, high in itertools.pairwise(bounds):
        chosen = (lengths > low) & (lengths <= high)
        if chosen.any():
            tokens = int((lengths[chosen] + 1).sum())  # the words and the closing <eos>
            label = f"{low + 1}-{high}" if high != bounds[-1] else f"{low + 1}+"
            rows.append((label, int(chosen.sum()), tokens, math.exp(nll[chosen].sum() / tokens)))
    return rows


def train_language_model(
    build: Callable[..., nn.Module],
    data: Any,
    pre: TextPreprocessing,
    cfg: LanguageModelConfig,
    generator: torch.Generator,
    run: Run,
) -> TrainedModel:
    log, device = run.log, run.device
    vocabulary = build_vocabulary(data.train, pre)
    model = build(vocab_size=len(vocabulary))
    # The loop, the state handed between windows and the exported signature (h0/c0 of
    # num_layers x batch x hidden_size) are PtbLstm's; another recurrent model joins here.
    if not isinstance(model, PtbLstm):
        raise TrainingError(
            f"the language-model trainer trains architectures.ptb_lstm.PtbLstm, not "
            f'{type(model).__name__}; set architecture = "ptb_lstm" in models.toml'
        )
    model = model.to(device)
    tokenizer = Tokenizer.build(pre, vocabulary)
    eos = tokenizer.ids[pre.eos_token]  # type: ignore[index]
    splits = {
        name: encode_sentences(data.split(name), tokenizer) for name in ("train", "valid", "test")
    }
    train = to_stream(splits["train"], eos)
    if cfg.train_tokens is not None:
        train = train[: cfg.train_tokens]
    train_rows = batchify(train, cfg.batch_size).to(device)
    valid_rows = batchify(to_stream(splits["valid"], eos), cfg.eval_batch_size).to(device)
    test_rows = batchify(to_stream(splits["test"], eos), cfg.eval_batch_size)
    steps_per_epoch = len(list(bptt_windows(train_rows.shape[1], cfg.bptt)))
    ranks = run.ranks
    # DDP under torchrun: each rank its share of the streams, gradients averaged.
    learner = ranks.wrap(model, batch_size=cfg.batch_size, device=device)
    optimizer = make_optimizer(model, cfg)
    log(
        f"training on {train_rows.numel():,} tokens ({len(vocabulary):,}-word vocabulary): "
        f"{cfg.epochs} epochs x {steps_per_epoch} windows of {cfg.batch_size} x {cfg.bptt} tokens, "
        f"{cfg.optimizer}, lr {cfg.lr}, {cfg.schedule}, clip {cfg.grad_clip}, {precision_in_use(cfg, device.type)}"
    )

    patience = cfg.early_stopping_patience
    best = BestCheckpoint(patience=patience, lower_is_better=True) if patience else None
    resumed = run.resume(model, optimizer, None)
    if resumed.epoch and best is not None:
        raise TrainingError(
            "resuming a run with early_stopping_patience is not supported yet (the best epoch's "
            "weights are not in the checkpoint); start the run again"
        )
    step, history = resumed.step, resumed.history
    # Training time counts across interruptions: the clock starts where the last run stopped.
    start = time.perf_counter() - resumed.seconds
    valid_ppl = history[-1]["valid_perplexity"] if history else float("nan")
    bar = Progress(cfg.epochs * steps_per_epoch, enabled=run.progress, initial=step)
    for epoch in range(resumed.epoch + 1, cfg.epochs + 1):
        train_loss, step = train_bptt_epoch(
            learner,
            ranks.shard(train_rows),
            optimizer,
            cfg,
            bptt=cfg.bptt,
            step=step,
            steps_per_epoch=steps_per_epoch,
            on_step=bar.step,
            ranks=ranks,
        )
        valid_ppl = math.exp(evaluate_stream(model, valid_rows, cfg.bptt))
        elapsed = time.perf_counter() - start
        history.append(
            {
                "epoch": epoch,
                "seconds": elapsed,
                "lr": optimizer.param_groups[0]["lr"],
                "train_loss": train_loss,
                "train_perplexity": math.exp(train_loss),
                "valid_perplexity": valid_ppl,
            }
        )
        run.checkpoint(
            epoch=epoch,
            step=step,
            model=model,
            optimizer=optimizer,
            generator=None,
            history=history,
        )
        log(
            f"epoch {epoch:3d}/{cfg.epochs}  train ppl {math.exp(train_loss):8.2f}  "
            f"valid ppl {valid_ppl:8.2f}  lr {optimizer.param_groups[0]['lr']:.3g}  ({elapsed:.0f} s)"
        )
        run.epoch_done(history[-1])
        if best is not None and best.update(epoch, valid_ppl, model):
            log(f"early stop: no better validation perplexity for {patience} epochs")
            break
    bar.close()
    if best is not None:
        best.restore(model)  # the published weights are the best epoch's
        valid_ppl = best.best
        log(f"kept epoch {best.best_epoch} (valid ppl {valid_ppl:.2f})")
    seconds = time.perf_counter() - start
    train_loss = history[-1]["train_loss"]
    model = model.cpu()  # the test figures, export and parity run on the CPU

    test_ppl = math.exp(evaluate_stream(model, test_rows, cfg.bptt))
    nll = sentence_nll(model, splits["test"], eos, cfg.eval_batch_size)
    lengths = np.array([len(s) for s in splits["test"]])
    sentence_ppl = math.exp(nll.sum() / (lengths + 1).sum())
    log(
        f"test perplexity {test_ppl:.2f} (stream), {sentence_ppl:.2f} (each sentence alone, "
        f"as the function scores), valid {valid_ppl:.2f}; {seconds:.0f} s of training"
    )
    metrics = {
        "test_perplexity": test_ppl,
        "test_sentence_perplexity": sentence_ppl,
        "valid_perplexity": valid_ppl,
        "train_perplexity": math.exp(train_loss),
        "train_tokens_per_second": train_rows.numel() * cfg.epochs / seconds,
    }

    layers, hidden = model.config.num_layers, model.config.hidden_size
    # Parity on real text with a real (non-zero) state: the state after one test window.
    rows = test_rows[: cfg.parity_sequences]
    with torch.no_grad():
        model.eval()
        _, h, c = model(rows[:, : cfg.bptt], *model.initial_state(len(rows)))
    parity = {
        TOKENS: rows[:, cfg.bptt : 2 * cfg.bptt].numpy().copy(),
        H0: h.numpy().copy(),
        C0: c.numpy().copy(),
    }
    zeros = torch.zeros(layers, 2, hidden)
    return TrainedModel(
        model=model.eval(),
        labels=[],
        preprocessing=pre,
        inputs=[
            GraphTensor(TOKENS, "INT64", ("batch", "time")),
            GraphTensor(H0, "FP32", (layers, "batch", hidden)),
            GraphTensor(C0, "FP32", (layers, "batch", hidden)),
        ],
        outputs=[
            GraphTensor(LOGITS, "FP32", ("batch", "time", len(vocabulary))),
            GraphTensor(HN, "FP32", (layers, "batch", hidden)),
            GraphTensor(CN, "FP32", (layers, "batch", hidden)),
        ],
        metrics=metrics,
        seconds=seconds,
        export_example=(test_rows[:2, :3].clone(), zeros, zeros.clone()),
        parity_feeds=parity,
        files={VOCAB_FILE: vocabulary_json(vocabulary)},
        evaluation=Evaluation(history=history, by_length=perplexity_by_length(nll, lengths)),
        examples=sentence_examples(data.test, pre.unknown_token, "test"),
        reference=text_reference([" ".join(s) for s in data.test], tokenizer, "test"),
    )

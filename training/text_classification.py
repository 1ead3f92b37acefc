"""The text-classification task: vocabulary of n-grams, training with model selection, report.

Consumes any data set shaped like `training.data.imdb.Imdb` (`train`/`valid`/`test` splits of
texts and int64 labels, plus `label_names`). Every text goes through `modelfn.text.Tokenizer`,
the code the function runs on requests, so training and serving compute the same features.

Two phases, so the test split is never used to choose anything:
1. select: train for up to `epochs` epochs and keep the epoch count with the best held-out
   accuracy (the earliest among ties), held out being the data set's validation split or, with
   `selection_folds = k`, each of k folds of training + validation data in turn (on a few
   thousand texts one validation split of a few hundred is too noisy to choose by);
2. refit: rebuild vocabulary, naive-Bayes ratios and model on training + validation data and
   train that many epochs; this model is evaluated once on the test split and published.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from architectures.ngram_classifier import naive_bayes_ratios
from modelfn.artifact import VOCAB_FILE, TextPreprocessing, vocabulary_json
from modelfn.text import Tokenizer, ngrams
from training.config import TextClassifierConfig
from training.errors import TrainingError
from training.examples import review_examples
from training.export_onnx import OUTPUT_NAME, GraphTensor
from training.loop import StepHook, autocast, lr_at, make_optimizer, optimizer_step
from training.metrics import classification_report
from training.progress import Progress
from training.reference import text_reference
from training.run import Run
from training.trained_model import Evaluation, TrainedModel, most_confident_mistakes

TOKENS = "tokens"  # the graph's input: feature ids [batch, length], 0 = padding


def build_vocabulary(texts: list[str], pre: TextPreprocessing, min_count: int) -> list[str]:
    """Padding (id 0), unknown, then every unigram and n-gram in at least `min_count` texts.

    Ordered by falling text count, ties alphabetical, so the file is deterministic.
    """
    if pre.padding_token is None:
        raise TrainingError("a text classifier's preprocessing needs a padding_token")
    words = Tokenizer.build(pre, []).words
    counts: Counter[str] = Counter()
    for text in texts:
        tokens = words(text)
        counts.update(set(tokens) | set(ngrams(tokens, pre.ngrams)))
    specials = [pre.padding_token, pre.unknown_token]
    kept = [f for f, n in counts.items() if n >= min_count and f not in specials]
    return [*specials, *sorted(kept, key=lambda f: (-counts[f], f))]


def featurise(texts: list[str], tokenizer: Tokenizer) -> list[list[int]]:
    """Feature ids per text, as the function computes them (a wordless text: padding only)."""
    return [tokenizer.features(tokenizer.tokens(text)) or [0] for text in texts]


def pad(rows: list[list[int]]) -> torch.Tensor:
    """Ragged id lists -> int64 [len(rows), max(longest, 2)], right-padded with 0."""
    out = torch.zeros((len(rows), max(2, max(len(r) for r in rows))), dtype=torch.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.int64)
    return out


@torch.no_grad()
def predict_logits(model: nn.Module, rows: list[list[int]], batch_size: int) -> torch.Tensor:
    model.eval()
    return torch.cat(
        [model(pad(rows[i : i + batch_size])) for i in range(0, len(rows), batch_size)]
    )


def fit(
    build: Callable[..., nn.Module],
    texts: list[str],
    labels: torch.Tensor,
    pre: TextPreprocessing,
    cfg: TextClassifierConfig,
    generator: torch.Generator,
    num_classes: int,
    held_out: tuple[list[str], np.ndarray] | None = None,
    on_step: StepHook | None = None,
) -> tuple[nn.Module, Tokenizer, list[str], list[float], list[float]]:
    """Vocabulary, naive-Bayes ratios and `cfg.epochs` epochs of training on `texts`.

    Returns the model, its tokenizer and vocabulary, each epoch's mean training loss, and the
    accuracy on `held_out` (texts, labels) after each epoch, if given.
    """
    vocabulary = build_vocabulary(texts, pre, cfg.min_count)
    tokenizer = Tokenizer.build(pre, vocabulary)
    rows = featurise(texts, tokenizer)
    model = build(vocab_size=len(vocabulary), num_classes=num_classes)
    if getattr(model.config, "nb_weighting", False):
        ratios = naive_bayes_ratios(rows, labels, len(vocabulary))
        model.feature_weights.copy_(ratios)  # type: ignore[operator]
    optimizer = make_optimizer(model, cfg)
    steps_per_epoch = -(-len(rows) // cfg.batch_size)
    step, losses, curve = 0, [], []
    held_rows = featurise(held_out[0], tokenizer) if held_out else []
    for _ in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(rows), generator=generator).tolist()
        loss_sum = 0.0
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            x, y = pad([rows[i] for i in idx]), labels[idx]
            with autocast(cfg):
                loss = F.cross_entropy(model(x).float(), y, label_smoothing=cfg.label_smoothing)
            lr = lr_at(step, cfg, steps_per_epoch=steps_per_epoch)
            optimizer_step(model, loss, optimizer, lr=lr, grad_clip=cfg.grad_clip)
            loss_sum += loss.item() * len(idx)
            step += 1
            if on_step is not None:
                on_step(loss.item(), lr)
        losses.append(loss_sum / len(rows))
        if held_out is not None:
            predicted = predict_logits(model, held_rows, cfg.eval_batch_size).argmax(1).numpy()
            curve.append(float((predicted == held_out[1]).mean()))
    return model, tokenizer, vocabulary, losses, curve


def train_text_classifier(
    build: Callable[..., nn.Module],
    data: Any,
    pre: TextPreprocessing,
    cfg: TextClassifierConfig,
    generator: torch.Generator,
    run: Run,
) -> TrainedModel:
    log = run.log
    num_classes = len(data.label_names)
    if run.ranks.world > 1:
        raise TrainingError(
            "the text classifier trains in about a minute in one process; run it without torchrun"
        )
    if run.checkpointer is not None and run.checkpointer.resume:
        raise TrainingError(
            "the text classifier does not checkpoint (a full run takes about a minute); train it again"
        )
    if cfg.early_stopping_patience is not None:
        raise TrainingError(
            "the text classifier chooses its epoch count on held-out data already (selection_folds); remove early_stopping_patience"
        )
    start = time.perf_counter()
    texts = data.train.texts + data.valid.texts
    labels = np.concatenate([data.train.labels, data.valid.labels])
    folds = held_out_splits(len(data.train), len(texts), cfg.selection_folds)
    log(
        f"select the epoch count on {len(folds)} held-out split(s) of {len(texts)} training texts: "
        f"up to {cfg.epochs} epochs of {cfg.batch_size}, {cfg.optimizer}, lr {cfg.lr}, {cfg.schedule}"
    )
    # Steps of every fold and of the longest possible refit: the bar's time left is an upper bound.
    steps = sum(-(-len(f) // cfg.batch_size) for f, _ in folds) + -(-len(texts) // cfg.batch_size)
    bar = Progress(cfg.epochs * steps, enabled=run.progress)
    mean = held_out_curve(
        build, texts, labels, folds, pre, cfg, num_classes, lambda _: generator, on_step=bar.step
    )
    best_epochs = int(np.argmax(mean)) + 1  # argmax: the earliest of equal accuracies
    log("held-out accuracy by epoch: " + " ".join(f"{a:.2%}" for a in mean))
    log(f"best held-out accuracy {mean.max():.2%} after {best_epochs} epochs")

    refit_cfg = cfg.model_copy(update={"epochs": best_epochs})
    model, tokenizer, vocabulary, losses, _ = fit(
        build,
        texts,
        torch.from_numpy(labels),
        pre,
        refit_cfg,
        generator,
        num_classes,
        on_step=bar.step,
    )
    bar.close()
    seconds = time.perf_counter() - start
    test_rows = featurise(data.test.texts, tokenizer)
    logits = predict_logits(model, test_rows, cfg.eval_batch_size)
    test_y = data.test.labels
    report = classification_report(test_y, logits.argmax(1).numpy(), num_classes)
    metrics = {
        **report.figures(data.label_names),
        "test_loss": float(F.cross_entropy(logits, torch.from_numpy(test_y))),
        "train_loss": losses[-1],
        "heldout_accuracy": float(mean.max()),
        "selected_epochs": float(best_epochs),
    }
    log(
        f"refit on {len(texts)} texts ({len(vocabulary):,} features) for {best_epochs} epochs; "
        f"test accuracy {report.accuracy:.2%}  macro F1 {report.macro_f1:.3f} on {len(test_y)} texts "
        f"({seconds:.1f} s)"
    )
    if cfg.tfidf_baseline:
        baseline = tfidf_baseline(texts, labels, folds, data.test.texts, test_y, log)
        if baseline is not None:
            metrics["baseline_tfidf_lr_accuracy"] = baseline

    # The history: the held-out accuracy that chose the epoch count, and the refit's loss.
    history = [
        {
            "epoch": e + 1,
            "heldout_accuracy": float(a),
            **({"train_loss": losses[e]} if e < len(losses) else {}),
        }
        for e, a in enumerate(mean)
    ]
    evaluation = Evaluation(
        history=history,
        classes=report,
        mistakes=most_confident_mistakes(
            torch.softmax(logits, 1).numpy(),
            test_y,
            data.label_names,
            text=[snippet(t) for t in data.test.texts],
        ),
    )
    parity = pad(test_rows[: cfg.parity_texts])
    return TrainedModel(
        model=model.eval(),
        labels=list(data.label_names),
        preprocessing=pre,
        inputs=[GraphTensor(TOKENS, "INT64", ("batch", "length"))],
        outputs=[GraphTensor(OUTPUT_NAME, "FP32", ("batch", num_classes))],
        metrics=metrics,
        seconds=seconds,
        export_example=(pad(test_rows[:2])[:, :3].clone(),),
        parity_feeds={TOKENS: parity.numpy().copy()},
        files={VOCAB_FILE: vocabulary_json(vocabulary)},
        evaluation=evaluation,
        examples=review_examples(data.test.texts, test_y, data.label_names, "test"),
        reference=text_reference(
            data.test.texts, tokenizer, "test", logits.numpy(), data.label_names
        ),
    )


def held_out_curve(
    build: Callable[..., nn.Module],
    texts: list[str],
    labels: np.ndarray,
    folds: list[tuple[list[int], list[int]]],
    pre: TextPreprocessing,
    cfg: TextClassifierConfig,
    num_classes: int,
    generator_for: Callable[[int], torch.Generator],
    *,
    after_fold: Callable[[int, np.ndarray], None] | None = None,
    on_step: StepHook | None = None,
) -> np.ndarray:
    """Mean held-out accuracy after each epoch [cfg.epochs], over `folds` (`held_out_splits`).

    `generator_for(k)` gives fold k's data-order generator; `after_fold(k, mean so far)` runs
    after each fold (a tuner reports and prunes there).
    """
    curves = []
    for k, (fit_idx, held_idx) in enumerate(folds):
        fit_texts, fit_labels = [texts[i] for i in fit_idx], torch.from_numpy(labels[fit_idx])
        held_out = ([texts[i] for i in held_idx], labels[held_idx])
        *_, curve = fit(
            build, fit_texts, fit_labels, pre, cfg, generator_for(k), num_classes, held_out, on_step
        )
        curves.append(curve)
        if after_fold is not None:
            after_fold(k, np.mean(curves, axis=0))
    return np.asarray(np.mean(curves, axis=0))


def snippet(text: str, width: int = 160) -> str:
    """A review's opening words on one line, for the report's mistakes."""
    flat = " ".join(text.replace("<br />", " ").split())
    return flat if len(flat) <= width else flat[: width - 3].rsplit(" ", 1)[0] + "..."


def held_out_splits(train: int, total: int, folds: int) -> list[tuple[list[int], list[int]]]:
    """(fit, held-out) index lists over the `total` training + validation texts.

    folds = 0: the data set's own split (the first `train` texts fit, the rest are held out);
    folds = k: text i is held out in fold i % k, by position, so the folds are deterministic.
    """
    if folds == 0:
        return [(list(range(train)), list(range(train, total)))]
    if folds == 1:
        raise TrainingError("selection_folds = 1 holds nothing out; use 0 or 2 and more")
    return [
        ([i for i in range(total) if i % folds != k], [i for i in range(total) if i % folds == k])
        for k in range(folds)
    ]


def tfidf_baseline(
    texts: list[str],
    labels: np.ndarray,
    folds: list[tuple[list[int], list[int]]],
    test_texts: list[str],
    test_labels: np.ndarray,
    log: Callable[[str], None],
) -> float | None:
    """Test accuracy of TF-IDF (word 1- and 2-grams, sublinear tf) + logistic regression.

    Same protocol as the model: C is chosen on the same held-out splits, then the baseline is
    refit on all training texts and scored once on the test split. scikit-learn's own
    tokenisation: this is the baseline people compute, not a copy of ours. None (and a log line)
    without scikit-learn.
    """
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        log("baseline skipped: scikit-learn is not installed (pip install 'modelfn[dev]')")
        return None

    def score(fit_idx: list[int], held: list[str], held_labels: np.ndarray, c: float) -> float:
        vectoriser = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        features = vectoriser.fit_transform([texts[i] for i in fit_idx])
        lr = LogisticRegression(C=c, max_iter=3000).fit(features, labels[fit_idx])
        return float(lr.score(vectoriser.transform(held), held_labels))

    grid = [1.0, 10.0, 100.0]
    heldout = [
        np.mean([score(f, [texts[i] for i in h], labels[h], c) for f, h in folds]) for c in grid
    ]
    c = grid[int(np.argmax(heldout))]
    test = score(list(range(len(texts))), test_texts, test_labels, c)
    log(
        f"baseline TF-IDF (1-2 grams, sublinear tf) + logistic regression: held-out accuracy "
        f"{max(heldout):.2%} at C={c:g}; test accuracy {test:.2%}"
    )
    return test

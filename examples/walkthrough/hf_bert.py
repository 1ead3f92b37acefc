"""Two Hugging Face folders as `save_pretrained` writes them, made offline: a BERT sentiment
classifier and a BERT encoder for embeddings, with a WordPiece tokenizer trained on the real IMDB
training reviews (../shared/data/imdb). No checkpoint can be downloaded on our build machines, so
the models are built from a `BertConfig`; the classifier is fine-tuned for about a minute on the
training reviews, the encoder keeps its seeded initialisation. A checkpoint from the Hub is a
folder of the same files and imports the same way.

Writes into OUT:
- `imdb-bert/`: `config.json` (with id2label), `model.safetensors`, `tokenizer.json`,
  `tokenizer_config.json`, ... : a `BertForSequenceClassification`;
- `imdb-encoder/`: the same for a bare `BertModel` (feature extraction);
- `review-0.txt`, `review-1.txt`: two held-out test reviews, the import's examples;
- `reviews.csv`: the held-out test reviews (`review,sentiment`), for `modelfn evaluate`.

    .venv/bin/python -m examples.walkthrough.hf_bert --seconds 60 --out build/walkthrough
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers.trainers import WordPieceTrainer
from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizer

IMDB = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "imdb"
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = 8000
MAX_LENGTH = 128  # tokens a review is truncated to: the model's positions
BATCH = 32
LR = 1e-3  # AdamW; high for BERT fine-tuning, fitting a small model trained from scratch


def read_reviews(split: str) -> tuple[list[str], list[str]]:
    """(reviews, sentiments) of the Kaggle IMDB CSV (columns review, sentiment)."""
    with (IMDB / f"{split}.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["review"] for r in rows], [r["sentiment"] for r in rows]


def wordpiece(texts: list[str]) -> BertTokenizer:
    """A lower-casing BERT WordPiece tokenizer trained on `texts`, as transformers' BertTokenizer
    (a fast tokenizer: save_pretrained writes tokenizer.json)."""
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(texts, WordPieceTrainer(vocab_size=VOCAB, special_tokens=SPECIAL))
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    tokenizer.decoder = decoders.WordPiece()
    return BertTokenizer(tokenizer_object=tokenizer, model_max_length=MAX_LENGTH)


def fine_tune(
    model: BertForSequenceClassification, tokenizer: BertTokenizer, seconds: float
) -> float:
    """Trains on the IMDB training reviews until `seconds` have passed; returns epochs run."""
    texts, sentiments = read_reviews("train")
    labels = torch.tensor([model.config.label2id[s] for s in sentiments])
    batch = tokenizer(
        texts, truncation=True, max_length=MAX_LENGTH, padding=True, return_tensors="pt"
    )
    optimiser = torch.optim.AdamW(model.parameters(), lr=LR)
    start, seen = time.monotonic(), 0
    model.train()
    while time.monotonic() - start < seconds:
        for rows in torch.randperm(len(texts)).split(BATCH):
            if time.monotonic() - start >= seconds:
                break
            inputs = {k: v[rows] for k, v in batch.items()}
            loss = model(**inputs, labels=labels[rows]).loss
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            seen += len(rows)
    model.eval()
    return seen / len(texts)


def accuracy(model: BertForSequenceClassification, tokenizer: BertTokenizer) -> float:
    texts, sentiments = read_reviews("test")
    right = 0
    with torch.no_grad():
        for i in range(0, len(texts), 64):
            inputs = tokenizer(
                texts[i : i + 64],
                truncation=True,
                max_length=MAX_LENGTH,
                padding=True,
                return_tensors="pt",
            )
            predicted = model(**inputs).logits.argmax(1).tolist()
            right += sum(
                model.config.id2label[p] == s
                for p, s in zip(predicted, sentiments[i : i + 64], strict=True)
            )
    return right / len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="fine-tuning time (default 60)")
    parser.add_argument("--out", type=Path, default=Path("build/walkthrough"))
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    tokenizer = wordpiece(read_reviews("train")[0])
    config = BertConfig(
        vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=128, max_position_embeddings=MAX_LENGTH,
        id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1},
    )  # fmt: skip
    classifier = BertForSequenceClassification(config)
    epochs = fine_tune(classifier, tokenizer, args.seconds)
    classifier.save_pretrained(out / "imdb-bert")
    tokenizer.save_pretrained(out / "imdb-bert")
    BertModel(config).save_pretrained(out / "imdb-encoder")
    tokenizer.save_pretrained(out / "imdb-encoder")
    texts, sentiments = read_reviews("test")
    for i in range(2):
        (out / f"review-{i}.txt").write_text(texts[i], encoding="utf-8")
    with (out / "reviews.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "sentiment"])
        writer.writerows(zip(texts, sentiments, strict=True))
    print(
        f"fine-tuned {epochs:.1f} epochs in {args.seconds:.0f} s: test accuracy "
        f"{accuracy(classifier, tokenizer):.3f} on {len(texts)} reviews; wrote {out}"
    )


if __name__ == "__main__":
    main()

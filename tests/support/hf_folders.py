"""Hugging Face folders for the import tests, built here from configs: no checkpoint is
downloaded, the architectures and the tokenizer code are transformers' and tokenizers' own.

- `wordpiece_tokenizer`: a BERT-style WordPiece tokenizer (lower-casing BertNormalizer,
  BertPreTokenizer, [CLS] ... [SEP]) trained with the tokenizers library on the real IMDB training
  reviews, 8,000 tokens, wrapped as transformers' BertTokenizer (a fast tokenizer: it saves
  tokenizer.json, and gives token_type_ids);
- `save_bert`: a small BERT (2 layers, hidden 64, 2 heads) from a BertConfig, as a sequence
  classifier (id2label negative/positive) or a bare encoder (feature extraction), saved with
  save_pretrained beside the tokenizer;
- `save_vit`: a ViT image classifier (32x32, patches of 8) with a CLIP-style image processor
  (shortest edge 35, centre crop 32x32, bicubic, CLIP's mean and std), whose crop margin of 3
  pixels is where Hugging Face's crop and torchvision's differ.

Weights are transformers' seeded initialisation, not trained: what the tests check is that the
served graph computes what the torch model does, and that the tokenizer gives the same ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from modelfn.registry import REPO_ROOT

IMDB_DIR = REPO_ROOT.parent / "shared" / "data" / "imdb"
VOCAB_SIZE = 8000
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
MAX_LENGTH = 128  # the small BERT's positions: reviews longer than this are truncated
LABELS = ["negative", "positive"]
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
CIFAR_LABELS = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip


def imdb_texts(split: str) -> list[str]:
    """The real IMDB reviews of `split` (train or test), read by training's own loader."""
    from training.data.imdb import load_imdb

    data = load_imdb(IMDB_DIR)
    return list(data.train.texts if split == "train" else data.test.texts)


def wordpiece_tokenizer(texts: list[str]) -> Any:
    """A WordPiece tokenizer trained on `texts`, as transformers' BertTokenizer."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import WordPieceTrainer
    from transformers import BertTokenizer

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(
        texts, WordPieceTrainer(vocab_size=VOCAB_SIZE, special_tokens=SPECIAL)
    )
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    tokenizer.decoder = decoders.WordPiece()
    return BertTokenizer(tokenizer_object=tokenizer, model_max_length=MAX_LENGTH)


def bert_config(**overrides: Any) -> Any:
    from transformers import BertConfig

    settings: dict[str, Any] = {
        "vocab_size": VOCAB_SIZE,
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 128,
        "max_position_embeddings": MAX_LENGTH,
        "id2label": dict(enumerate(LABELS)),
        "label2id": {label: i for i, label in enumerate(LABELS)},
    }
    return BertConfig(**(settings | overrides))


def save_bert(
    folder: Path, tokenizer: Any, *, classifier: bool, seed: int = 0, **config: Any
) -> Path:
    """A BERT saved as save_pretrained writes it, with `tokenizer` beside it; the folder."""
    from transformers import BertForSequenceClassification, BertModel

    torch.manual_seed(seed)
    cls = BertForSequenceClassification if classifier else BertModel
    model = cls(bert_config(**config)).eval()  # type: ignore[no-untyped-call]  # unannotated
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_vit(folder: Path, seed: int = 0) -> Path:
    """A ViT classifier for 32x32 images with a CLIP-style processor config; the folder."""
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(seed)
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        id2label=dict(enumerate(CIFAR_LABELS)),
        label2id={label: i for i, label in enumerate(CIFAR_LABELS)},
    )
    ViTForImageClassification(config).eval().save_pretrained(folder)  # type: ignore[no-untyped-call]
    processor().save_pretrained(folder)
    return folder


def processor(**overrides: Any) -> Any:
    """The CLIP-style PIL image processor save_vit saves (shortest edge 35, crop 32)."""
    from transformers import CLIPImageProcessorPil

    settings: dict[str, Any] = {
        "size": {"shortest_edge": 35},
        "crop_size": {"height": 32, "width": 32},
        "resample": 3,  # bicubic
        "image_mean": CLIP_MEAN,
        "image_std": CLIP_STD,
    }
    return CLIPImageProcessorPil(**(settings | overrides))


def import_quietly(source: Path, out_dir: Path, **options: Any) -> Path:
    """`import_model` of `source` into `out_dir`, its log kept from the test output."""
    from importing import import_model

    lines: list[str] = []
    return import_model(source, out_dir=out_dir, log=lines.append, **options)


def review_files(folder: Path, count: int) -> list[Path]:
    """The first `count` IMDB test reviews as .txt example files (one review each)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, text in enumerate(imdb_texts("test")[:count]):
        path = folder / f"review-{i}.txt"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths

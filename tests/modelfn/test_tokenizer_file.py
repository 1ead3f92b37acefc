"""The function's tokenizer (modelfn/tokenizer_file.py: tokenizer.json run by the tokenizers
library, truncation and padding from the manifest) against transformers' AutoTokenizer loaded
from the same save_pretrained folder, on every review of the real IMDB test split.

The tokenizer is a WordPiece one trained on the IMDB training reviews (tests/support/hf_folders.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelfn.artifact import ArtifactError, TokenizerInputs, TokenizerPreprocessing
from modelfn.tokenizer_file import TokenizerFile
from tests.support.hf_folders import MAX_LENGTH, imdb_texts

INPUTS = TokenizerInputs(
    input_ids="input_ids", attention_mask="attention_mask", token_type_ids="token_type_ids"
)
BATCH = 16  # the reviews also go in padded batches of this many, in file order


@pytest.fixture(scope="module")
def folder(imdb_wordpiece: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wordpiece")
    imdb_wordpiece.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def reviews() -> list[str]:
    return imdb_texts("test")


def spec(**changes: Any) -> TokenizerPreprocessing:
    settings: dict[str, Any] = {
        "max_length": MAX_LENGTH,
        "truncation": True,
        "pad_id": 0,
        "inputs": INPUTS,
    }
    return TokenizerPreprocessing(**(settings | changes))


def ours(folder: Path, **changes: Any) -> TokenizerFile:
    return TokenizerFile(spec(**changes), (folder / "tokenizer.json").read_bytes())


def auto(folder: Path, **settings: Any) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True, **settings)


@pytest.mark.parametrize("truncation", [True, False])
def test_ids_equal_autotokenizers_on_every_imdb_test_review(
    folder: Path, reviews: list[str], truncation: bool
) -> None:
    assert len(reviews) == 560  # the whole test split of ../shared/data/imdb
    tokenizer = ours(folder, truncation=truncation)
    theirs = auto(folder)(
        reviews, truncation=truncation, max_length=MAX_LENGTH if truncation else None
    )
    encoded = tokenizer.encode(reviews)
    assert encoded.ids == theirs["input_ids"]
    assert encoded.type_ids == theirs["token_type_ids"]
    lengths = encoded.lengths
    if truncation:
        assert max(lengths) == MAX_LENGTH and sum(n == MAX_LENGTH for n in lengths) > 100
    else:  # whole reviews: the function refuses those over max_length rather than cut them
        assert max(lengths) > 4 * MAX_LENGTH


@pytest.mark.parametrize("side", ["right", "left"])
def test_padded_batches_equal_autotokenizers(folder: Path, reviews: list[str], side: str) -> None:
    tokenizer = ours(folder, padding_side=side)
    reference = auto(folder, padding_side=side)
    for start in range(0, len(reviews), BATCH):
        batch = reviews[start : start + BATCH]
        got = tokenizer.feeds(tokenizer.encode(batch))
        want = reference(
            batch, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="np"
        )
        for name in ("input_ids", "attention_mask", "token_type_ids"):
            assert got[name].dtype == np.int64
            np.testing.assert_array_equal(got[name], want[name], err_msg=f"{name} at {start}")


def test_truncation_from_the_left_keeps_the_end_of_a_text(folder: Path, reviews: list[str]) -> None:
    tokenizer = ours(folder, truncation_side="left")
    want = auto(folder, truncation_side="left")(
        reviews[:50], truncation=True, max_length=MAX_LENGTH
    )
    assert tokenizer.encode(reviews[:50]).ids == want["input_ids"]


def test_padding_to_max_length_and_graphs_without_token_types(folder: Path) -> None:
    inputs = TokenizerInputs(input_ids="ids", attention_mask="mask")
    tokenizer = ours(folder, padding="max_length", inputs=inputs)
    feeds = tokenizer.feeds(tokenizer.encode(["a truly wonderful film", "awful"]))
    assert sorted(feeds) == ["ids", "mask"]
    assert feeds["ids"].shape == (2, MAX_LENGTH)
    assert feeds["mask"].sum(axis=1).tolist() == [6, 3]  # [CLS] a truly wonderful film [SEP]


def test_a_file_that_is_not_a_tokenizer_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"tok\.json is not a tokenizers tokenizer\.json"):
        TokenizerFile(spec(), b'{"version": "1.0"}', source="tok.json")


def test_a_pad_id_the_tokenizer_does_not_have(folder: Path) -> None:
    with pytest.raises(ArtifactError, match="pad_id 9000 is not an id of"):
        ours(folder, pad_id=9000)


def test_the_tokenizer_runs_without_the_hub_client_the_layer_leaves_out(folder: Path) -> None:
    """The layer prunes huggingface-hub and what only it needs (infra/packaging.py HUB_CLIENT):
    a fresh interpreter where none of them can be imported still builds and runs the tokenizer."""
    from infra.packaging import HUB_CLIENT

    blocked = [name for folders in HUB_CLIENT.values() for name in folders]
    script = f"""
import sys
for name in {blocked!r}:
    sys.modules[name] = None  # `import name` now raises ImportError
from modelfn.artifact import TokenizerInputs, TokenizerPreprocessing
from modelfn.tokenizer_file import TokenizerFile
spec = TokenizerPreprocessing(max_length=16, truncation=True, pad_id=0,
                              inputs=TokenizerInputs(input_ids="input_ids"))
data = open({str(folder / "tokenizer.json")!r}, "rb").read()
print(TokenizerFile(spec, data).encode(["a truly wonderful film"]).ids)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    want = auto(folder)(["a truly wonderful film"])["input_ids"]
    assert done.stdout.strip() == str(want)

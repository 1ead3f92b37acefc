"""Penn Treebank in Mikolov's language-modelling text format.

The folder holds `ptb.train.txt`, `ptb.valid.txt` and `ptb.test.txt`: one sentence a line,
lower-case words separated by spaces, numbers already replaced by `N`, rare words by `<unk>`,
10,000 distinct words in all (9,999 plus the `<eos>` a language model adds at each line end).
The official splits are the splits: nothing is carved or shuffled, so they are deterministic.

`PREPROCESSING` writes down, as data for the manifest, how the corpus was made from raw text
(lower-case, contractions split off as `n't`/`'s`, numbers as `N`, punctuation dropped), so the
function turns "The company's 3.5% stake." into the corpus's `the company 's N N stake`. On the
corpus itself every token is already in the vocabulary, so the rules change nothing: training and
serving read the same ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelfn.artifact import DataFingerprint, Substitution, TextPreprocessing
from training.data.fingerprint import fingerprint_files
from training.data.location import DATA_DIR_ENV
from training.data.text_files import read_utf8
from training.errors import DataFormatError

DATASET = "ptb"
FOLDER = "ptb"
SPLITS = ("train", "valid", "test")
EOS = "<eos>"
UNK = "<unk>"
NUMBER = "N"

# Raw text -> the corpus's conventions. In the corpus "5 %" is written "N N" (the WSJ's "%" was
# kept as a word and then numbered away with the digits), "$" and "&" are words, contractions
# are split ("do n't", "company 's") and abbreviations keep their period ("mr.", "u.s.").
PREPROCESSING = TextPreprocessing(
    lowercase=True,
    substitutions=[
        Substitution(pattern=r"(?i)(\w)(n't)\b", replacement=r"\1 \2"),
        Substitution(pattern=r"(?i)(\w)('s|'re|'ve|'m|'ll|'d)\b", replacement=r"\1 \2"),
        # Only around digits: "at&t", "s&p" and "us$" are words of the corpus.
        Substitution(pattern=r"\$(?=[0-9])", replacement="$ "),
        Substitution(pattern=r"(?<=[0-9])%", replacement=" %"),
    ],
    # A word the vocabulary lacks loses surrounding punctuation ("said," -> "said"; "mr." is in
    # the vocabulary and keeps its period); punctuation on its own disappears, as in the corpus.
    strip_chars="\"'`.,;:!?()[]{}-",
    number_pattern=r"[0-9]+(?:[.,:/\\][0-9]+)*|%",
    number_token=NUMBER,
    unknown_token=UNK,
    eos_token=EOS,
    # Longest corpus sentence: 82 words; 256 leaves room for a short paragraph.
    max_tokens=256,
)


@dataclass(frozen=True)
class PennTreebank:
    train: list[list[str]]  # sentences, each a list of words (no <eos>)
    valid: list[list[str]]
    test: list[list[str]]
    folder: Path
    files: list[str]  # the files read, in name order (what `fingerprint` hashes)

    def split(self, name: str) -> list[list[str]]:
        sentences: list[list[str]] = getattr(self, name)
        return sentences


def read_sentences(path: Path) -> list[list[str]]:
    """One file -> its sentences; DataFormatError naming the file and line for bad text."""
    text = read_utf8(path)
    sentences = []
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split()
        if not words:
            raise DataFormatError(
                f"{path}:{number}: empty line; every line of a Penn Treebank file is a sentence"
            )
        if EOS in words:
            raise DataFormatError(
                f"{path}:{number}: contains {EOS!r}, which marks line ends and must not appear "
                "in the text; is this file already processed?"
            )
        sentences.append(words)
    if not sentences:
        raise DataFormatError(f"{path}: no sentences; is the file empty?")
    return sentences


def load_ptb(folder: Path) -> PennTreebank:
    """Read the three official split files from `folder`."""
    folder = Path(folder)
    names = {split: f"ptb.{split}.txt" for split in SPLITS}
    missing = [n for n in names.values() if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} is not a Penn Treebank folder (missing {', '.join(missing)}); point --data "
            f"or {DATA_DIR_ENV} at the folder that holds {FOLDER}/ with Mikolov's ptb.*.txt files"
        )
    splits = {split: read_sentences(folder / name) for split, name in names.items()}
    return PennTreebank(
        train=splits["train"],
        valid=splits["valid"],
        test=splits["test"],
        folder=folder,
        files=sorted(names.values()),
    )


def fingerprint(data: PennTreebank) -> DataFingerprint:
    """sha256 over the three files, with sentences per split."""
    examples = {split: len(data.split(split)) for split in SPLITS}
    return fingerprint_files(DATASET, data.folder, data.files, examples)

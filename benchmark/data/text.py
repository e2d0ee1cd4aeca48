"""Character-level language modelling as classification: from `context` characters, predict the next one.

Inputs are one-hot (N, V, context): V = vocabulary channels over `context` steps, so every sequence
model of dofbench reads them (the transformer as tokens, the 1D CNN as channels, the MLP flattened);
labels are the next character's id, so num_classes = V. The vocabulary is the V − 1 most frequent
characters of the training text plus one shared id for every other character.

Corpora:
  pydoc      offline: the topic texts of Python's own documentation (`pydoc_data.topics`, shipped with
             CPython, ~465,000 characters of English technical prose); topics are split between train,
             validation and test (seeded), so no window crosses from one split into another.
  wikitext2  WikiText-2 (raw; Merity et al. 2017) read from dataset.root: wiki.train.raw, wiki.valid.raw,
             wiki.test.raw (in dataset.root or in its wikitext-2-raw/ folder), as released.

Windows are drawn at seeded random positions of each split's text (dataset.train_windows, ...).
Beyond accuracy, a language model is judged in bits per character: test_loss / ln 2. `unigram_bits`
gives the baseline that knows only the training text's character frequencies.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch

from benchmark.core.errors import UserError
from benchmark.data.registry import register
from benchmark.data.splits import Splits

WIKITEXT_FILES = ("wiki.train.raw", "wiki.valid.raw", "wiki.test.raw")


def vocabulary(text: str, size: int) -> list[str]:
    """The size − 1 most frequent characters of text (ties by character), then the shared 'other' id."""
    ranked = sorted(Counter(text).items(), key=lambda kv: (-kv[1], kv[0]))
    return [c for c, _ in ranked[: size - 1]]


def encode(text: str, vocab: list[str]) -> np.ndarray:
    """Character ids (len(text),) int64; a character outside vocab gets id len(vocab) (other)."""
    index = {c: i for i, c in enumerate(vocab)}
    other = len(vocab)
    return np.fromiter((index.get(c, other) for c in text), dtype=np.int64, count=len(text))


def windows(ids: np.ndarray, n: int, context: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n (context ids, next id) pairs at seeded random positions: (n, context), (n,)."""
    if len(ids) <= context:
        raise UserError(f"a text split has {len(ids)} characters, fewer than context + 1 = {context + 1}")
    start = np.random.default_rng(seed).integers(0, len(ids) - context, size=n)
    return ids[start[:, None] + np.arange(context)], ids[start + context]


def one_hot(x: np.ndarray, V: int) -> torch.Tensor:
    """(n, context) ids -> (n, V, context) float32."""
    return torch.nn.functional.one_hot(torch.as_tensor(x), V).permute(0, 2, 1).float().contiguous()


def unigram_bits(data, split: str = "test") -> float:
    """Bits per character on a split ("val" or "test") of the model that predicts the training labels'
    frequencies (add-one smoothed): the floor a language model must beat."""
    counts = torch.bincount(data.y_train, minlength=data.num_classes).double() + 1
    p = counts / counts.sum()
    return float(-(torch.log2(p[getattr(data, f"y_{split}")])).mean())


def char_splits(name: str, texts: tuple[str, str, str], cfg: dict):
    """Train/val/test texts -> Splits of one-hot windows with the training text's vocabulary (cfg: vocab,
    context, train_windows, val_windows, test_windows, split_seed)."""
    V, context, seed = int(cfg.get("vocab", 48)), int(cfg.get("context", 32)), int(cfg["split_seed"])
    if V < 2 or context < 1:
        raise UserError(f"dataset.vocab={V}, dataset.context={context}: need vocab >= 2 and context >= 1")
    vocab = vocabulary(texts[0], V)
    sizes = [int(cfg.get(k, d)) for k, d in (("train_windows", 20000), ("val_windows", 2000), ("test_windows", 4000))]
    if cfg.get("train_size"):
        sizes[0] = min(sizes[0], int(cfg["train_size"]))
    parts = []
    for i, (text, n) in enumerate(zip(texts, sizes)):
        x, y = windows(encode(text, vocab), n, context, seed * 3 + i)
        parts += [one_hot(x, V), torch.as_tensor(y)]
    return Splits(name, *parts, num_classes=V)


@register("pydoc", metric="val_loss")  # offline: Python ships it
def load_pydoc(cfg: dict):
    """Python's documentation topics (offline), split by topic: a seeded 80/10/10% of the topics."""
    from pydoc_data.topics import topics  # megabytes of text: loaded only for this dataset

    names = sorted(topics)
    order = np.random.default_rng(int(cfg["split_seed"])).permutation(len(names))
    n_val = n_test = max(1, round(0.1 * len(names)))
    pick = lambda idx: "\n".join(topics[names[i]] for i in sorted(idx))
    texts = (pick(order[n_val + n_test:]), pick(order[:n_val]), pick(order[n_val:n_val + n_test]))
    return char_splits("pydoc", texts, cfg)


@register("wikitext2", offline=False, metric="val_loss")  # files under dataset.root
def load_wikitext2(cfg: dict):
    """WikiText-2 (raw) from dataset.root, as released; never downloaded."""
    if not cfg.get("root"):
        raise UserError("dataset 'wikitext2' reads wiki.train.raw, wiki.valid.raw and wiki.test.raw from "
                        "dataset.root=<folder> (the WikiText-2 raw release); set dataset.root")
    root = Path(cfg["root"]).expanduser()
    folder = root / "wikitext-2-raw" if (root / "wikitext-2-raw").is_dir() else root
    texts = []
    for name in WIKITEXT_FILES:
        path = folder / name
        if not path.is_file():
            raise UserError(f"dataset.root={cfg['root']!r}: {name} not found in {folder} (expected "
                            f"{', '.join(WIKITEXT_FILES)}, as in the WikiText-2 raw release)")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise UserError(f"{path}: not UTF-8 text (byte {e.start}); expected the WikiText-2 raw release") from None
        if len(text.strip()) <= int(cfg.get("context", 32)):
            raise UserError(f"{path}: {len(text.strip())} characters of text, fewer than one window of "
                            f"context + 1 = {int(cfg.get('context', 32)) + 1}; expected the WikiText-2 raw release")
        texts.append(text)
    return char_splits("wikitext2", tuple(texts), cfg)


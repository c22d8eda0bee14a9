"""A zoo of tiny pre-trained candidate models, built locally so that the default run works offline.

Every candidate is a real `transformers` model (GPT-2, Llama or T5 configuration) built from scratch
with `from_config`, pre-trained by a plain seeded torch loop on a weighted mixture of corpora, and saved
with `save_pretrained` next to its tokenizer. Fine-tuning then loads it with `from_pretrained`, exactly
as it would load a hub model.

Pre-training objectives:
- decoder-only (gpt2, llama): causal language modelling on blocks of `seq_len` tokens;
- encoder-decoder (t5): prefix language modelling: each batch's blocks are cut at one random point,
  the prefix goes to the encoder and the decoder predicts the continuation (the same shape as the
  source -> target fine-tuning tasks).

Blocks are drawn from one token stream per corpus (texts joined by the eos token): each sequence first
picks a corpus with probability proportional to its mixture weight, then a uniformly random offset.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lensllm.atomic import write_bytes
from lensllm.data.builders import OFFLINE_BENCHMARKS
from lensllm.training.flops import non_embedding_params

if TYPE_CHECKING:  # heavy imports stay lazy so that the command line starts fast
    import torch
    from transformers import PretrainedConfig, PreTrainedTokenizerFast

ARCHITECTURES = ("gpt2", "llama", "t5")
PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
DEFAULT_MAX_CHARS = 3_000_000  # characters of text sampled per corpus for pre-training
MAX_POSITIONS = 512  # learned position table of GPT-2; also the length limit stated in every config


def sample_texts(
    texts_by_corpus: Mapping[str, Sequence[str]], max_chars: int, seed: int = 0
) -> dict[str, list[str]]:
    """A seeded random sample of each corpus with at most `max_chars` characters of text.

    Texts are visited in a random order (`random.Random(seed)`) and kept while they fit the budget;
    the kept texts stay in their original relative order.
    """
    rng = random.Random(seed)
    sampled = {}
    for name, texts in texts_by_corpus.items():
        order = list(range(len(texts)))
        rng.shuffle(order)
        kept, used = [], 0
        for index in order:
            if used + len(texts[index]) <= max_chars:
                kept.append(index)
                used += len(texts[index])
        sampled[name] = [texts[i] for i in sorted(kept)]
    return sampled


def write_texts(texts_by_corpus: Mapping[str, Sequence[str]], path: str | os.PathLike) -> None:
    """Write the pre-training texts atomically as gzipped JSON ``{corpus: [text, ...]}``."""
    payload = json.dumps({name: list(texts) for name, texts in texts_by_corpus.items()}, ensure_ascii=False)
    write_bytes(path, gzip.compress(payload.encode("utf-8"), mtime=0))


def read_texts(path: str | os.PathLike) -> dict[str, list[str]]:
    """Read a file of `write_texts`."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def train_tokenizer(
    texts: Sequence[str], vocab_size: int, out_dir: str | os.PathLike, seed: int = 0
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on `texts` and save it as a `PreTrainedTokenizerFast`.

    The special tokens are `<pad>` (id 0), `<s>` (bos), `</s>` (eos) and `<unk>`; no special token is
    added automatically when encoding. The texts are shuffled with `seed` before training, so the
    result does not depend on the order of the corpora. The directory is written atomically and can
    be loaded with `AutoTokenizer.from_pretrained(out_dir)`.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if not texts:
        raise ValueError("train_tokenizer: no texts to train on")
    order = list(texts)
    random.Random(seed).shuffle(order)
    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[PAD, BOS, EOS, UNK],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(order, trainer=trainer, length=len(order))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        model_max_length=MAX_POSITIONS,
    )
    with _atomic_dir(out_dir) as tmp:
        fast.save_pretrained(tmp)
    return fast


@dataclass(frozen=True)
class ModelSpec:
    """One candidate of the zoo: architecture, size and pre-training recipe.

    `mixture` maps corpus names to sampling weights (normalised when sampling). `pretrain_steps`
    optimizer steps of `batch_size` blocks of `seq_len` tokens are taken with AdamW at peak rate `lr`
    (linear warm-up over the first 10% of steps, then cosine decay to 10% of the peak).
    """

    name: str
    architecture: str
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    pretrain_steps: int
    mixture: tuple[tuple[str, float], ...]
    seed: int = 0
    lr: float = 3e-3
    batch_size: int = 16
    seq_len: int = 64
    weight_decay: float = 0.01
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"model spec {self.name!r}: architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"model spec {self.name!r}: d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if not self.mixture or any(w < 0 for _, w in self.mixture) or sum(w for _, w in self.mixture) <= 0:
            raise ValueError(f"model spec {self.name!r}: the mixture needs non-negative weights with a positive sum, got {self.mixture}")
        if self.pretrain_steps < 0 or self.seq_len < 4 or self.batch_size < 1:
            raise ValueError(f"model spec {self.name!r}: pretrain_steps >= 0, seq_len >= 4 and batch_size >= 1 are required")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """Build a spec from a JSON-like mapping; `mixture` may be a mapping or a list of pairs."""
        values = dict(data)
        mixture = values.get("mixture", {})
        items = mixture.items() if isinstance(mixture, Mapping) else mixture
        values["mixture"] = tuple((str(k), float(w)) for k, w in items)
        unknown = set(values) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ValueError(f"model spec {values.get('name')!r}: unknown fields {sorted(unknown)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON values (the mixture as a mapping)."""
        values = asdict(self)
        values["mixture"] = dict(self.mixture)
        return values

    @property
    def corpora(self) -> tuple[str, ...]:
        """Names of the corpora with a positive weight."""
        return tuple(name for name, weight in self.mixture if weight > 0)


def build_config(spec: ModelSpec, tokenizer: PreTrainedTokenizerFast) -> PretrainedConfig:
    """The `transformers` configuration of `spec`, with the tokenizer's vocabulary and special ids.

    Dropout is 0 everywhere (tiny models, deterministic training); input and output embeddings are
    tied for every architecture.
    """
    from transformers import GPT2Config, LlamaConfig, T5Config

    ids = dict(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    if spec.architecture == "gpt2":
        return GPT2Config(
            n_embd=spec.d_model, n_layer=spec.n_layers, n_head=spec.n_heads, n_inner=spec.d_ff,
            n_positions=MAX_POSITIONS, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **ids,
        )
    if spec.architecture == "llama":
        return LlamaConfig(
            hidden_size=spec.d_model, num_hidden_layers=spec.n_layers, num_attention_heads=spec.n_heads,
            num_key_value_heads=spec.n_heads, intermediate_size=spec.d_ff,
            max_position_embeddings=MAX_POSITIONS, **ids,
        )
    return T5Config(
        d_model=spec.d_model, d_kv=spec.d_model // spec.n_heads, num_heads=spec.n_heads,
        num_layers=spec.n_layers, num_decoder_layers=spec.n_layers, d_ff=spec.d_ff,
        feed_forward_proj="relu", dropout_rate=0.0, decoder_start_token_id=tokenizer.pad_token_id,
        n_positions=MAX_POSITIONS, **ids,
    )


def pretrain_model(
    spec: ModelSpec,
    tokenizer_dir: str | os.PathLike,
    texts_by_corpus: Mapping[str, Sequence[str]],
    out_dir: str | os.PathLike,
    threads: int = 1,
    log_every: int = 50,
) -> dict[str, Any]:
    """Build `spec` from scratch, pre-train it on its corpus mixture and save it into `out_dir`.

    `out_dir` receives the model and tokenizer (`save_pretrained`) and `zoo.json`, all written into a
    temporary sibling directory first and renamed at the end. Returns the `zoo.json` record: the spec,
    parameter counts (all and non-embedding), steps, training tokens (encoder + decoder tokens for T5),
    final training loss (mean of the last 10% of steps) and wall-clock seconds.
    """
    import torch
    import transformers
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    start = time.perf_counter()
    torch.set_num_threads(threads)
    torch.manual_seed(spec.seed)
    missing = [name for name in spec.corpora if not texts_by_corpus.get(name)]
    if missing:
        raise ValueError(f"model spec {spec.name!r}: no texts for corpora {missing} (have {sorted(texts_by_corpus)})")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = build_config(spec, tokenizer)
    seq2seq = spec.architecture == "t5"
    model = (AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM).from_config(config)
    # each corpus gets at least 4x the tokens it can be sampled for (blocks overlap at random offsets)
    min_tokens = max(4 * spec.pretrain_steps * spec.batch_size * spec.seq_len, 4 * spec.seq_len)
    streams = [_token_stream(tokenizer, texts_by_corpus[name], min_tokens, spec.seed) for name in spec.corpora]
    weights = torch.tensor([w for _, w in spec.mixture if w > 0], dtype=torch.float)
    generator = torch.Generator().manual_seed(spec.seed)

    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(spec.pretrain_steps))
    model.train()
    losses: list[float] = []
    tokens = 0
    bar = tqdm(total=spec.pretrain_steps, desc=f"pretrain {spec.name}", file=sys.stderr,
               mininterval=5.0, miniters=log_every)
    for _ in range(spec.pretrain_steps):
        blocks = _sample_blocks(streams, weights, spec.batch_size, spec.seq_len, generator)
        if seq2seq:
            cut = int(torch.randint(spec.seq_len // 4, 3 * spec.seq_len // 4 + 1, (1,), generator=generator))
            loss = model(input_ids=blocks[:, :cut], labels=blocks[:, cut:].contiguous()).loss
        else:
            loss = model(input_ids=blocks, labels=blocks).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += blocks.numel()
        losses.append(loss.item())
        bar.update()
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    bar.close()

    tail = losses[-max(1, len(losses) // 10):]
    record = {
        "spec": spec.to_dict(),
        "n_params": sum(p.numel() for p in model.parameters()),
        "n_params_non_embedding": non_embedding_params(model),
        "steps": spec.pretrain_steps,
        "tokens": tokens,
        "train_loss_final": sum(tail) / len(tail) if losses else None,
        "seconds": round(time.perf_counter() - start, 2),
        "threads": threads,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    with _atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "zoo.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def _token_stream(
    tokenizer: PreTrainedTokenizerFast, texts: Sequence[str], min_tokens: int, seed: int
) -> torch.Tensor:
    """Texts in a seeded random order, encoded and joined by eos into one 1-D tensor.

    Encoding stops once the stream has `min_tokens` tokens (all texts are used if they have fewer;
    a stream shorter than `min_tokens` is repeated), so that pre-training never tokenizes more text
    than it can use.
    """
    import torch

    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    ids: list[int] = []
    chunk = 256
    for begin in range(0, len(order), chunk):
        batch = [texts[i] for i in order[begin:begin + chunk]]
        for encoding in tokenizer.backend_tokenizer.encode_batch(batch, add_special_tokens=False):
            ids.extend(encoding.ids)
            ids.append(tokenizer.eos_token_id)
        if len(ids) >= min_tokens:
            break
    while ids and len(ids) < min_tokens:
        ids = ids + ids
    return torch.tensor(ids, dtype=torch.long)


def _sample_blocks(
    streams: Sequence[torch.Tensor], weights: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator
) -> torch.Tensor:
    """A (batch_size, seq_len) batch: per row a corpus drawn by weight, then a uniform start offset."""
    import torch

    choice = torch.multinomial(weights, batch_size, replacement=True, generator=generator).tolist()
    rows = []
    for corpus in choice:
        stream = streams[corpus]
        offset = int(torch.randint(0, len(stream) - seq_len + 1, (1,), generator=generator))
        rows.append(stream[offset:offset + seq_len])
    return torch.stack(rows)


def _warmup_cosine(total_steps: int):
    """Learning-rate multiplier: linear warm-up over 10% of the steps, cosine decay to 0.1."""
    warmup = max(1, total_steps // 10)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


@contextmanager
def _atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        if path.exists():  # replace a previous build: move it aside first, then drop it
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
            os.replace(path, old / "dir")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _add_text_source(parser: argparse.ArgumentParser) -> None:
    """The two ways to give pre-training texts: a texts file, or the raw data directory."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--texts", help="pre-training texts written by `python -m lensllm.training.zoo texts` (fast)")
    source.add_argument("--corpus-dir", help="raw data directory read by lensllm.data.builders.corpus_texts")
    parser.add_argument("--exclude", nargs="*", default=[], metavar="BENCH.jsonl",
                        help="with --corpus-dir: leave out the test units of these benchmark files")
    parser.add_argument("--max-chars", type=int, default=DEFAULT_MAX_CHARS,
                        help=f"with --corpus-dir: characters sampled per corpus (default {DEFAULT_MAX_CHARS:,})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the text sample and of the tokenizer")


def _load_texts(args: argparse.Namespace, names: Sequence[str]) -> dict[str, list[str]]:
    """The texts of corpora `names`, from `--texts` or sampled from `--corpus-dir`."""
    if args.texts is not None:
        texts = read_texts(args.texts)
        missing = [name for name in names if name not in texts]
        if missing:
            raise SystemExit(f"error: {args.texts} has no corpus {missing} (it has {sorted(texts)})")
        return {name: texts[name] for name in names}
    from lensllm.data.benchmark import read_benchmark
    from lensllm.data.builders import corpus_texts

    exclude = [read_benchmark(path) for path in args.exclude]
    full = {name: corpus_texts(args.corpus_dir, [name], exclude=exclude) for name in names}
    return sample_texts(full, args.max_chars, seed=args.seed)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: `texts` samples the pre-training texts, `tokenizer` trains the shared tokenizer,
    `pretrain` builds one zoo model."""
    parser = argparse.ArgumentParser(prog="python -m lensllm.training.zoo", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    txt = sub.add_parser("texts", help="sample the pre-training texts of the corpora into one file")
    _add_text_source(txt)
    txt.add_argument("--corpora", nargs="+", default=list(OFFLINE_BENCHMARKS), help=f"corpus names (default: {' '.join(OFFLINE_BENCHMARKS)})")
    txt.add_argument("--out", required=True, help="output .json.gz (written atomically)")
    tok = sub.add_parser("tokenizer", help="train the byte-level BPE tokenizer on the corpora")
    _add_text_source(tok)
    tok.add_argument("--corpora", nargs="+", default=list(OFFLINE_BENCHMARKS), help=f"corpus names (default: {' '.join(OFFLINE_BENCHMARKS)})")
    tok.add_argument("--vocab-size", type=int, default=1024)
    tok.add_argument("--out", required=True, help="output directory (written atomically)")
    pre = sub.add_parser("pretrain", help="pre-train one model of the zoo")
    pre.add_argument("--spec-json", required=True, help="the ModelSpec as a JSON object")
    pre.add_argument("--tokenizer", required=True, help="tokenizer directory")
    _add_text_source(pre)
    pre.add_argument("--threads", type=int, default=1)
    pre.add_argument("--out", required=True, help="output model directory (written atomically)")
    args = parser.parse_args(argv)

    if args.command == "texts":
        texts = _load_texts(args, args.corpora)
        write_texts(texts, args.out)
        print(f"texts: {', '.join(f'{k} {len(v)}' for k, v in texts.items())} -> {args.out}", file=sys.stderr)
        return 0
    if args.command == "tokenizer":
        texts = [text for corpus in _load_texts(args, args.corpora).values() for text in corpus]
        tokenizer = train_tokenizer(texts, args.vocab_size, args.out, seed=args.seed)
        print(f"tokenizer: {len(tokenizer)} tokens from {len(texts)} texts -> {args.out}", file=sys.stderr)
        return 0
    spec = ModelSpec.from_dict(json.loads(args.spec_json))
    record = pretrain_model(spec, args.tokenizer, _load_texts(args, spec.corpora), args.out, threads=args.threads)
    print(f"{spec.name}: {record['n_params']:,} params, {record['tokens']:,} tokens, "
          f"{record['seconds']:.1f} s -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

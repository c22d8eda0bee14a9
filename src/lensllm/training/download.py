"""Fetch a hub model into the local Hugging Face cache, pinned by revision, before any job needs it.

Compute nodes often have no network: the workflow's `download_models` rule (a local rule, run on
the node Snakemake runs on) calls this for every hub candidate, so that the fine-tuning, NTK and
spectra jobs find the files in the cache (`HF_HOME`, shared with the compute nodes). The record
written names the repository, the revision asked for and the commit it resolved to, so a rerun
can be checked to have used the same bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from lensllm.atomic import write_text


@dataclass(frozen=True)
class Download:
    """A fetched model: hub `repo`, the `revision` asked for (None: the default branch), the
    `commit` it resolved to and the local snapshot directory."""

    repo: str
    revision: str | None
    commit: str
    path: str


def download_model(repo: str, revision: str | None = None, gguf_file: str | None = None) -> Download:
    """Fetch `repo` at `revision` into the cache (only `gguf_file` and the tokenizer and config
    files when a GGUF file is named) with `huggingface_hub.snapshot_download`."""
    from huggingface_hub import HfApi, snapshot_download

    patterns = [gguf_file, "*.json", "*.model", "*.txt"] if gguf_file else None
    path = snapshot_download(repo, revision=revision, allow_patterns=patterns)
    commit = HfApi().model_info(repo, revision=revision).sha
    return Download(repo, revision, str(commit), str(path))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: fetch one model and write its record (JSON)."""
    parser = argparse.ArgumentParser(prog="python -m lensllm.training.download", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="hub name, e.g. facebook/opt-350m")
    parser.add_argument("--revision", help="commit, branch or tag (the models sheet's revision column)")
    parser.add_argument("--gguf-file", help="fetch only this GGUF file besides config and tokenizer")
    parser.add_argument("--out", required=True, help="the record to write")
    args = parser.parse_args(argv)
    try:
        record = download_model(args.model, args.revision, args.gguf_file)
    except Exception as err:  # network, authentication, unknown repo or revision: one clear line
        print(f"error: model {args.model!r} (revision {args.revision or 'default'}): cannot download: {err}",
              file=sys.stderr)
        return 2
    write_text(args.out, json.dumps(asdict(record), indent=1) + "\n")
    print(f"{record.repo}@{record.commit} -> {record.path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

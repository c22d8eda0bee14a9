"""Tests of the local model zoo: tokenizer, tiny GPT-2 / Llama / T5 pre-training and saving."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lensllm.training.zoo import ModelSpec, pretrain_model, sample_texts, train_tokenizer

ZOO_SHEET = Path(__file__).resolve().parents[2] / "config" / "zoo.tsv"


def read_zoo_specs(path: Path) -> list[ModelSpec]:
    """The specs of a zoo sheet as the workflow hands them to `zoo pretrain --spec-json`: each TSV row
    (rules/common.smk, schema-validated there) with `mixture` written corpus:weight,corpus:weight."""
    import pandas as pd

    rows = pd.read_csv(path, sep="\t", keep_default_na=False).to_dict("records")
    return [ModelSpec.from_dict({**row, "mixture": dict(item.split(":") for item in row["mixture"].split(","))})
            for row in rows]


CORPUS = {
    "wiki": [f"The river {i} flows north through the old town of Bram, past {i % 7} mills." for i in range(60)],
    "instruct": [f"Define the word cat{i}.\nA small animal number {i}." for i in range(60)],
}


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo") / "tokenizer"
    train_tokenizer([t for texts in CORPUS.values() for t in texts], 300, out, seed=0)
    return out


def tiny_spec(architecture: str, **changes) -> ModelSpec:
    values = dict(name=f"tiny-{architecture}", architecture=architecture, d_model=32, n_layers=1, n_heads=2,
                  d_ff=64, pretrain_steps=3, mixture=(("wiki", 1.0), ("instruct", 1.0)), batch_size=4, seq_len=16)
    values.update(changes)
    return ModelSpec(**values)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, tokenizer_dir):
    """One tiny pre-trained model per architecture, saved in a local directory."""
    root = tmp_path_factory.mktemp("models")
    records = {}
    for architecture in ("gpt2", "llama", "t5"):
        records[architecture] = pretrain_model(tiny_spec(architecture), tokenizer_dir, CORPUS, root / architecture)
    return root, records


def test_tokenizer_round_trip_and_special_tokens(tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    text = "The river 12 flows — naïve café!\nDefine the word cat3."
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    assert (tokenizer.pad_token, tokenizer.bos_token, tokenizer.eos_token, tokenizer.unk_token) == ("<pad>", "<s>", "</s>", "<unk>")
    assert tokenizer.pad_token_id == 0 and len(tokenizer) <= 300


def test_pretrained_models_save_and_record(tiny_models):
    from transformers import AutoConfig

    root, records = tiny_models
    for architecture, record in records.items():
        directory = root / architecture
        assert {"config.json", "model.safetensors", "tokenizer.json", "zoo.json"} <= {p.name for p in directory.iterdir()}
        assert json.loads((directory / "zoo.json").read_text()) == record
        assert record["steps"] == 3 and record["tokens"] == 3 * 4 * 16 and record["n_params"] > record["n_params_non_embedding"] > 0
        assert AutoConfig.from_pretrained(directory).is_encoder_decoder == (architecture == "t5")
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temporary directory left


def test_pretraining_is_seeded(tmp_path, tokenizer_dir):
    first = pretrain_model(tiny_spec("llama"), tokenizer_dir, CORPUS, tmp_path / "a")
    second = pretrain_model(tiny_spec("llama"), tokenizer_dir, CORPUS, tmp_path / "b")
    other = pretrain_model(tiny_spec("llama", seed=1), tokenizer_dir, CORPUS, tmp_path / "c")
    assert first["train_loss_final"] == second["train_loss_final"] != other["train_loss_final"]


def test_spec_round_trip_and_validation():
    spec = read_zoo_specs(ZOO_SHEET)[0]
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    with pytest.raises(ValueError, match="architecture"):
        tiny_spec("mamba")
    with pytest.raises(ValueError, match="unknown fields"):
        ModelSpec.from_dict({**spec.to_dict(), "depth": 3})
    with pytest.raises(ValueError, match=rf"model spec '{spec.name}': the mixture needs non-negative weights"):
        ModelSpec.from_dict({**spec.to_dict(), "mixture": {"wiki": -1}})
    with pytest.raises(ValueError, match=rf"model spec '{spec.name}': d_model {spec.d_model} is not divisible by n_heads 5"):
        ModelSpec.from_dict({**spec.to_dict(), "n_heads": 5})


def test_default_zoo_is_not_trivial():
    zoo = read_zoo_specs(ZOO_SHEET)
    assert len(zoo) >= 6 and len({s.name for s in zoo}) == len(zoo)
    assert {"gpt2", "llama", "t5"} <= {s.architecture for s in zoo}
    largest = max(zoo, key=lambda s: s.n_layers * s.d_model**2)
    assert largest.pretrain_steps == min(s.pretrain_steps for s in zoo)  # the largest is pre-trained least
    assert len({s.mixture for s in zoo}) >= 3


def test_missing_corpus_is_named(tmp_path, tokenizer_dir):
    with pytest.raises(ValueError, match="debsum"):
        pretrain_model(tiny_spec("gpt2", mixture=(("debsum", 1.0),)), tokenizer_dir, CORPUS, tmp_path / "m")


def test_sample_texts_respects_budget_and_seed():
    texts = {"wiki": [f"text number {i}" for i in range(100)]}
    sample = sample_texts(texts, 200, seed=3)
    assert sum(map(len, sample["wiki"])) <= 200 and sample == sample_texts(texts, 200, seed=3)
    assert sample["wiki"] == [t for t in texts["wiki"] if t in sample["wiki"]]  # original order kept

import json

import pytest

from lensllm.curves.collect import GridError, collect_grid, read_runs


def _job(tmp_path, model, size, loss, benchmark="wiki"):
    path = tmp_path / benchmark / model / f"{size}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "model": model, "benchmark": benchmark, "size": size, "test_loss": loss, "n_params": 1000 if model == "a" else 3000,
        "n_params_matmul": 900, "flops_measured": 6.0 * 900 * 10 * size, "flops_analytic": 6.0 * 900 * 10 * size,
        "tokens_seen": 10 * size, "wall_seconds": 1.0, "steps": size // 8, "hessian_trace": 100.0 / (1 + size),
        "hessian_trace_stderr": 1.0,
    }
    path.write_text(json.dumps(record))
    return path


def test_job_results_become_the_loss_table_and_measured_flops(tmp_path):
    paths = [_job(tmp_path, m, s, loss) for m, offset in [("a", 0.0), ("b", 0.5)] for s, loss in [(0, 5 + offset), (16, 4 + offset), (32, 3 + offset)]]
    table, flops, facts, runs = collect_grid(paths, "wiki", {"a": "gpt2", "b": "t5"})
    assert table.models == ("a", "b") and table.sizes == (0, 16, 32)
    assert table.column(32).tolist() == [3.0, 3.5]
    assert table.params.tolist() == [1000, 3000] and table.families == ("gpt2", "t5")
    assert flops[("a", 0)] == 0.0 and flops[("b", 32)] == 6.0 * 900 * 320
    assert facts["flops_per_token_measured"].tolist() == [6.0 * 900] * 2
    assert runs[["model", "size", "steps"]].values.tolist() == [["a", 0, 0], ["a", 16, 2], ["a", 32, 4],
                                                                ["b", 0, 0], ["b", 16, 2], ["b", 32, 4]]
    assert runs["hessian_trace"].tolist()[:3] == [100.0, 100.0 / 17, 100.0 / 33]


def test_a_gap_in_the_grid_is_named(tmp_path):
    paths = [_job(tmp_path, "a", 0, 5.0), _job(tmp_path, "a", 16, 4.0), _job(tmp_path, "b", 0, 5.0)]
    with pytest.raises(GridError, match=r"no result for \(model, size\) \[\('b', 16\)\]"):
        collect_grid(paths, "wiki", {})


def test_a_broken_job_file_is_named(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{")
    with pytest.raises(GridError, match="x.json: not a readable job result"):
        collect_grid([path], "wiki", {})


def test_a_job_result_without_the_keys_the_analysis_needs_is_named(tmp_path):
    path = _job(tmp_path, "a", 16, 4.0)
    record = json.loads(path.read_text())
    del record["test_loss"], record["tokens_seen"]
    path.write_text(json.dumps(record))
    with pytest.raises(GridError, match=r"a/16\.json: job result lacks \['test_loss', 'tokens_seen'\]"):
        collect_grid([path], "wiki", {})


def test_a_result_of_another_benchmark_is_named(tmp_path):
    paths = [_job(tmp_path, "a", 0, 5.0), _job(tmp_path, "a", 16, 4.0, benchmark="debsum")]
    with pytest.raises(GridError, match=r"debsum/a/16\.json: a result of benchmark 'debsum', not 'wiki'"):
        collect_grid(paths, "wiki", {})


def test_a_second_result_for_the_same_model_and_size_is_named(tmp_path):
    first = _job(tmp_path, "a", 16, 4.0)
    copy = tmp_path / "copy.json"
    copy.write_text(first.read_text())
    with pytest.raises(GridError, match=r"copy\.json: a second result for model 'a' at size 16"):
        collect_grid([_job(tmp_path, "a", 0, 5.0), first, copy], "wiki", {})


def test_a_grid_without_zero_shot_results_is_named(tmp_path):
    paths = [_job(tmp_path, m, s, 4.0) for m in ("a", "b") for s in (16, 32)]
    with pytest.raises(GridError, match=r"wiki: the grid has no zero-shot \(size 0\) results"):
        collect_grid(paths, "wiki", {})


def test_a_runs_table_without_its_columns_is_named(tmp_path):
    paths = [_job(tmp_path, "a", s, 5.0 - s / 16) for s in (0, 16, 32)]
    runs = collect_grid(paths, "wiki", {})[3]
    good = tmp_path / "runs.tsv"
    runs.to_csv(good, sep="\t", index=False)
    assert read_runs(good)["steps"].tolist() == [0, 2, 4]
    bad = tmp_path / "bad.tsv"
    runs.drop(columns=["steps", "hessian_trace"]).to_csv(bad, sep="\t", index=False)
    with pytest.raises(GridError, match=r"bad\.tsv: the runs table lacks the columns \['hessian_trace', 'steps'\]"):
        read_runs(bad)

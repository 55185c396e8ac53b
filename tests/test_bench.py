"""The benchmark's own bookkeeping: what its "empty cache" runs empty."""
import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_empty_cache_run_clears_the_cache_of_the_project_above_the_corpus(tmp_path):
    # the corpus is a directory inside a project (or the --project-root): the plugin keeps
    # the index cache at the project's root, above the files the benchmark collects
    project = tmp_path / "project"
    corpus = project / "pkg" / "models"
    corpus.mkdir(parents=True)
    (project / "setup.py").write_text("")
    (project / ".gradmode_cache").mkdir()
    (corpus / ".gradmode_cache").mkdir()
    other = tmp_path / "root"
    (other / ".gradmode_cache").mkdir(parents=True)
    load_bench().clear_caches([str(corpus)])()
    assert not (project / ".gradmode_cache").exists()
    assert not (corpus / ".gradmode_cache").exists()
    assert (other / ".gradmode_cache").exists()
    load_bench().clear_caches([str(corpus)], str(other))()
    assert not (other / ".gradmode_cache").exists()

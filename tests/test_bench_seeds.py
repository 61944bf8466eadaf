"""bench/bench_seeds.py, shrunk to a dry run: the chapters' accuracy spread across seeds is
only worth printing if a seed really decides the run (the same seed twice gives the same
run, another seed another one) and if a shrunk run never passes for the chapter's recipe."""
from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from helpers import REPO

pytestmark = pytest.mark.data


def _bench():
    spec = importlib.util.spec_from_file_location("bench_seeds", REPO / "bench/bench_seeds.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_does_a_seed_decide_the_run_and_a_dry_run_say_it_is_not_the_recipe(tmp_path, capsys):
    out = tmp_path / "seeds.json"
    assert _bench().main(["--models", "lenet-relu", "--seeds", "0,1,0", "--epochs", "1",
                          "--num-train", "512", "--device", "cpu", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["seed"] for r in rows] == [0, 1, 0]
    assert rows[0]["val_acc"] == rows[2]["val_acc"]      # the same seed, the same run
    assert rows[0]["val_acc"] != rows[1]["val_acc"]      # another seed, another run
    assert not any(r["recipe"] for r in rows)
    table = capsys.readouterr().out
    assert "LeNet (ReLU, max pooling) (NOT the chapter's recipe)" in table
    assert "| 0, 1, 0 |" in table


def test_is_an_unknown_model_refused_before_anything_trains(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _bench().main(["--models", "lenet,alexnet"])
    assert exit_info.value.code == 2
    assert "unknown model(s) alexnet" in capsys.readouterr().err

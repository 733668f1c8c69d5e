"""--revisions grammar and checkpoint listing (no model loading)."""

from pathlib import Path

import pytest

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.checkpoints import (
    PYTHIA_ALL_STEPS,
    PYTHIA_PAPER_STEPS,
    _format_steps,
    list_checkpoints,
    parse_revisions,
)


def one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_pythia_schedules():
    assert len(PYTHIA_ALL_STEPS) == 154
    assert PYTHIA_ALL_STEPS[:11] == [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    assert len(PYTHIA_PAPER_STEPS) == 143
    assert PYTHIA_PAPER_STEPS[0] == 1000 and PYTHIA_PAPER_STEPS[-1] == 143000
    assert set(PYTHIA_PAPER_STEPS) <= set(PYTHIA_ALL_STEPS)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("step1000", [1000]),
        ("1000", [1000]),
        ("STEP7", [7]),
        (" 5 , 1,step5 ", [1, 5]),
        ("1:5:2,5,1", [1, 3, 5]),
        ("0:10:3", [0, 3, 6, 9]),
        ("step0:step4:2", [0, 2, 4]),
        ("7:7:1", [7]),
    ],
)
def test_parse_items(spec, expected):
    assert parse_revisions(spec) == expected


def test_words_and_ranges():
    assert parse_revisions("1000:143000:1000") == PYTHIA_PAPER_STEPS
    assert parse_revisions("paper") == PYTHIA_PAPER_STEPS
    assert parse_revisions("all") == PYTHIA_ALL_STEPS
    assert parse_revisions("ALL,paper,0") == PYTHIA_ALL_STEPS
    assert parse_revisions("all", available=[30, 10, 20]) == [10, 20, 30]


def test_none_means_every_available_step():
    assert parse_revisions(None, available=[5, 0, 5]) == [0, 5]
    with pytest.raises(CircuitAtlasError, match="give --revisions"):
        parse_revisions(None)


def test_missing_steps_named_with_what_exists():
    with pytest.raises(CircuitAtlasError) as excinfo:
        parse_revisions("0,3,7", available=[0, 10, 20, 30])
    message = one_line_error(excinfo)
    assert "3,7" in message and "available: 0:30:10" in message


def test_step_listing_reads_back():
    assert _format_steps(PYTHIA_ALL_STEPS) == "0:2:1,4,8,16,32,64,128,256,512,1000:143000:1000"
    assert parse_revisions(_format_steps(PYTHIA_ALL_STEPS)) == PYTHIA_ALL_STEPS
    assert _format_steps([3, 9]) == "3,9"


@pytest.mark.parametrize(
    "spec",
    [
        "",
        " ",
        ",",
        "1,,2",
        "x",
        "step",
        "stepx",
        "-3",
        "1.5",
        "1:2",
        "1:2:3:4",
        "5:1:1",
        "1:5:0",
        "a:b:c",
    ],
)
def test_bad_specs(spec):
    with pytest.raises(CircuitAtlasError) as excinfo:
        parse_revisions(spec)
    message = one_line_error(excinfo)
    assert repr(spec) in message and "start:stop:step" in message


# --- hub ids (no network: listing never touches the hub) ---


def test_pythia_defaults_to_the_paper_schedule():
    refs = list_checkpoints("EleutherAI/pythia-14m")
    assert [r.step for r in refs] == PYTHIA_PAPER_STEPS
    assert refs[0].revision == "step1000" and refs[0].path is None
    assert refs[0].model == "EleutherAI/pythia-14m"
    assert len(list_checkpoints("EleutherAI/pythia-14m", "all")) == 154
    assert len(list_checkpoints("EleutherAI/pythia-70m-v0", "all")) == 143


def test_pythia_unknown_step():
    with pytest.raises(CircuitAtlasError) as excinfo:
        list_checkpoints("EleutherAI/pythia-14m", "step3")
    message = one_line_error(excinfo)
    assert "EleutherAI/pythia-14m" in message and "step(s) 3" in message


def test_other_hub_models_need_revisions():
    refs = list_checkpoints("someone/model", "10,20")
    assert [(r.step, r.revision) for r in refs] == [(10, "step10"), (20, "step20")]
    with pytest.raises(CircuitAtlasError, match="give --revisions"):
        list_checkpoints("someone/model")
    with pytest.raises(CircuitAtlasError, match="'all' is known"):
        list_checkpoints("someone/model", "all")


@pytest.mark.parametrize("model", ["./missing-run", "/no/such/run", "~/no-such-run", "a/b/c"])
def test_path_like_missing_is_no_such_directory(model):
    with pytest.raises(CircuitAtlasError) as excinfo:
        list_checkpoints(model)
    message = one_line_error(excinfo)
    assert "no such directory" in message and "step<N>/" in message


def test_bare_name_is_neither_directory_nor_hub_id():
    with pytest.raises(CircuitAtlasError, match=r"not a hub model id \(owner/name\)"):
        list_checkpoints("gpt2")


# --- local run directories (directory structure only) ---


def make_run(root: Path, steps: list[int]) -> Path:
    for step in steps:
        (root / f"step{step}").mkdir(parents=True)
        (root / f"step{step}" / "config.json").write_text("{}")
    return root


def test_local_run_lists_numeric_order(tmp_path):
    run = make_run(tmp_path / "run", [10, 9, 100, 0])
    (run / "notes.txt").write_text("ignored")
    (run / "step").mkdir()
    (run / "stepx").mkdir()
    (run / "step3").write_text("a file, not a checkpoint")
    refs = list_checkpoints(str(run))
    assert [r.step for r in refs] == [0, 9, 10, 100]
    assert refs[1].path == run / "step9" and refs[1].revision is None
    assert refs[1].model == str(run)
    assert [r.step for r in list_checkpoints(str(run), "step9,100")] == [9, 100]
    assert [r.step for r in list_checkpoints(str(run), "all")] == [0, 9, 10, 100]


def test_local_missing_step_names_dir_and_steps(tmp_path):
    run = make_run(tmp_path / "run", [0, 5])
    with pytest.raises(CircuitAtlasError) as excinfo:
        list_checkpoints(str(run), "paper")
    message = one_line_error(excinfo)
    assert str(run) in message and "1000:143000:1000" in message and "available: 0,5" in message


def test_local_not_a_directory(tmp_path):
    file = tmp_path / "model.bin"
    file.write_text("x")
    with pytest.raises(CircuitAtlasError, match="not a directory"):
        list_checkpoints(str(file))


def test_local_empty_directory(tmp_path):
    with pytest.raises(CircuitAtlasError) as excinfo:
        list_checkpoints(str(tmp_path))
    message = one_line_error(excinfo)
    assert "empty" in message and str(tmp_path) in message and "train-toy" in message


def test_local_without_step_dirs(tmp_path):
    (tmp_path / "checkpoint-5").mkdir()
    with pytest.raises(CircuitAtlasError, match=r"no step<N>/ checkpoint directories"):
        list_checkpoints(str(tmp_path))


def test_local_step_without_config(tmp_path):
    run = make_run(tmp_path / "run", [0])
    (run / "step7").mkdir()
    with pytest.raises(CircuitAtlasError) as excinfo:
        list_checkpoints(str(run))
    message = one_line_error(excinfo)
    assert "step7" in message and "config.json" in message and "--revisions" in message
    assert [r.step for r in list_checkpoints(str(run), "0")] == [0]

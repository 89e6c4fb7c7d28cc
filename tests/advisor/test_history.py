"""load_history on every format it claims, written here as the tools write them."""

from __future__ import annotations

import json
import math

import pytest

import dropkit as dk
from dropkit.advisor import History, HistoryError
from dropkit.advisor.history import as_history


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_with_common_names(tmp_path):
    path = write(
        tmp_path,
        "log.csv",
        "epoch,train_loss,val_loss,train_acc,val_acc\n1,1.0,1.1,0.5,0.45\n2,0.6,0.8,0.7,0.6\n",
    )
    history = dk.load_history(path)
    assert history.epochs == [1.0, 2.0]
    assert history.train_loss == [1.0, 0.6]
    assert history.val_loss == [1.1, 0.8]
    assert history.train_acc == [0.5, 0.7]
    assert history.val_acc == [0.45, 0.6]
    assert history.source == str(path)


def test_keras_csv_logger(tmp_path):
    # Keras' CSVLogger: epoch from 0, metric names without a train_ prefix.
    text = (
        "epoch,accuracy,loss,val_accuracy,val_loss\n"
        "0,0.61,1.20,0.58,1.25\n1,0.80,0.70,0.74,0.81\n2,0.88,0.45,0.79,0.66\n"
    )
    history = dk.load_history(write(tmp_path, "training.log", text))
    assert history.epochs == [0.0, 1.0, 2.0]
    assert history.train_acc == [0.61, 0.80, 0.88]
    assert history.val_acc == [0.58, 0.74, 0.79]
    assert history.train_loss == [1.20, 0.70, 0.45]


def test_semicolon_separator(tmp_path):
    text = "epoch;loss;val_loss\n1;0.9;1.0\n2;0.5;0.7\n"
    assert dk.load_history(write(tmp_path, "log.csv", text)).val_loss == [1.0, 0.7]


def test_lightning_metrics_csv_interleaved_rows(tmp_path):
    # CSVLogger writes train steps, then a validation row, then the epoch aggregate, with blanks.
    text = (
        "epoch,step,train_loss_step,train_loss_epoch,val_loss,val_acc\n"
        "0,1,1.50,,,\n"
        "0,3,1.10,,,\n"
        "0,3,,,1.20,0.55\n"
        "0,3,,1.25,,\n"
        "1,5,0.80,,,\n"
        "1,7,0.60,,,\n"
        "1,7,,,0.90,0.70\n"
        "1,7,,0.70,,\n"
    )
    history = dk.load_history(write(tmp_path, "metrics.csv", text))
    assert history.epochs == [0.0, 1.0]
    assert history.train_loss == [1.25, 0.70]  # the epoch aggregate, not the last step
    assert history.val_loss == [1.20, 0.90]
    assert history.val_acc == [0.55, 0.70]
    assert history.train_acc == []


def test_json_list_columns_and_keras_history(tmp_path):
    rows = [{"epoch": 1, "loss": 0.9, "val_loss": 1.0}, {"epoch": 2, "loss": 0.5, "val_loss": 0.8}]
    assert dk.load_history(write(tmp_path, "a.json", json.dumps(rows))).train_loss == [0.9, 0.5]
    columns = {"train_loss": [0.9, 0.5], "val_acc": [0.6, 0.7]}
    history = dk.load_history(write(tmp_path, "b.json", json.dumps(columns)))
    assert history.val_acc == [0.6, 0.7]
    assert history.epochs == [1.0, 2.0]
    keras = {"history": {"accuracy": [0.5, 0.8], "val_accuracy": [0.45, 0.7]}, "params": {}}
    assert dk.load_history(write(tmp_path, "c.json", json.dumps(keras))).train_acc == [0.5, 0.8]


def test_trainer_state_pairs_training_loss_with_each_evaluation(tmp_path):
    state = {
        "epoch": 2.0,
        "log_history": [
            {"epoch": 0.5, "loss": 2.0, "step": 5},
            {"epoch": 1.0, "loss": 1.0, "step": 10},
            {"epoch": 1.0, "eval_loss": 1.4, "eval_accuracy": 0.6, "step": 10},
            {"epoch": 2.0, "loss": 0.6, "step": 20},
            {"epoch": 2.0, "eval_loss": 1.1, "eval_accuracy": 0.7, "step": 20},
            {"epoch": 2.0, "train_loss": 1.2, "train_runtime": 3.0, "step": 20},
        ],
    }
    history = dk.load_history(write(tmp_path, "trainer_state.json", json.dumps(state)))
    assert history.epochs == [1.0, 2.0]
    assert history.train_loss == [1.5, 0.6]
    assert history.val_loss == [1.4, 1.1]
    assert history.val_acc == [0.6, 0.7]


def test_percent_accuracy_becomes_fraction(tmp_path):
    text = "epoch,acc,val_acc\n1,60,55\n2,90.5,70\n"
    history = dk.load_history(write(tmp_path, "p.csv", text))
    assert history.train_acc == pytest.approx([0.6, 0.905])
    assert history.val_acc == pytest.approx([0.55, 0.70])


def test_missing_cells_are_nan(tmp_path):
    history = dk.load_history(
        write(tmp_path, "gap.csv", "epoch,loss,val_loss\n1,0.9,\n2,0.5,0.7\n")
    )
    assert math.isnan(history.val_loss[0])
    assert history.val_loss[1] == 0.7


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("empty.csv", "", "is empty"),
        ("blank.csv", "  \n\n", "is empty"),
        ("header.csv", "epoch,loss,val_loss\n", "has a CSV header but no rows"),
        (
            "other.csv",
            "epoch,lr,momentum\n1,0.1,0.9\n",
            r"other.csv \(CSV\) has no metric column .*found: epoch, lr, momentum",
        ),
        ("words.txt", "just some words\n", "not a recognised history"),
        ("bad.json", '{"loss": [1, 2', "not valid JSON"),
        ("nolog.json", '{"log_history": []}', "empty log_history"),
        ("noeval.json", '{"log_history": [{"epoch": 1, "loss": 0.5}]}', "no evaluation"),
        ("strings.csv", "epoch,loss\n1,abc\n", "no numeric values"),
    ],
)
def test_unusable_files_name_what_is_missing(tmp_path, name, text, message):
    with pytest.raises(HistoryError, match=message):
        dk.load_history(write(tmp_path, name, text))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(HistoryError, match="does not exist"):
        dk.load_history(tmp_path / "nope.csv")
    with pytest.raises(HistoryError, match="is a folder"):
        dk.load_history(tmp_path)


def test_history_error_is_a_value_error():
    assert issubclass(HistoryError, ValueError)


def test_from_columns_rejects_ragged_columns():
    with pytest.raises(HistoryError, match="different lengths"):
        History.from_columns({"loss": [1.0, 0.5], "val_loss": [1.0]})


# -- the reproductions of issue 10 on the readers -----------------------------------------------


@pytest.mark.parametrize(
    ("header", "train", "val"),
    [
        ("Epoch,Train Loss,Val Loss", "train_loss", "val_loss"),
        ("epoch,loss/train,loss/val", "train_loss", "val_loss"),
        ("epoch,Training-Loss,Validation Loss", "train_loss", "val_loss"),
        ("epoch,train_f1,eval_f1", "train_f1", "val_f1"),
        ("epoch,wer,eval_wer", "train_wer", "val_wer"),
        ("epoch,acc_epoch,val_acc_epoch", "train_acc", "val_acc"),
    ],
)
def test_header_names_are_normalised(tmp_path, header, train, val):
    history = dk.load_history(write(tmp_path, "log.csv", f"{header}\n0,0.5,0.6\n1,0.4,0.55\n"))
    assert history.series(train) == [0.5, 0.4]
    assert history.series(val) == [0.6, 0.55]


def test_columns_map_a_column_by_hand(tmp_path):
    text = "epoch,loss,validation_epoch_average\n0,0.9,1.0\n1,0.6,0.8\n"
    path = write(tmp_path, "log.csv", text)
    history = dk.load_history(path, columns={"val_loss": "validation_epoch_average"})
    assert history.val_loss == [1.0, 0.8]
    with pytest.raises(HistoryError, match=r"has no column 'nope' \(for val_loss\); found: epoch"):
        dk.load_history(path, columns={"val_loss": "nope"})
    with pytest.raises(ValueError, match="columns keys must be series names"):
        dk.load_history(path, columns={"validation": "loss"})


def test_wandb_csv_export(tmp_path):
    text = (
        '"Step","run-1 - train/loss","run-1 - train/loss__MIN","run-1 - train/loss__MAX",'
        '"run-1 - val/loss"\n'
        "1,0.9,0.8,1.0,1.0\n2,0.6,0.5,0.7,0.8\n3,0.4,0.3,0.5,0.75\n"
    )
    history = dk.load_history(write(tmp_path, "wandb_export.csv", text))
    assert history.train_loss == [0.9, 0.6, 0.4]
    assert history.val_loss == [1.0, 0.8, 0.75]
    assert history.available() == ["train_loss", "val_loss"]


def test_timm_summary_csv(tmp_path):
    text = (
        "epoch,train_loss,eval_loss,eval_top1,eval_top5,lr\n"
        "0,6.1,5.2,12.5,30.1,0.001\n1,4.0,3.5,35.0,62.0,0.001\n2,3.1,2.9,48.2,74.0,0.001\n"
    )
    history = dk.load_history(write(tmp_path, "summary.csv", text))
    assert history.series("val_top1") == pytest.approx([0.125, 0.35, 0.482])
    assert history.val_loss == [5.2, 3.5, 2.9]
    assert "train_lr" not in history.names()
    assert dk.diagnose(history).metric == "loss"


def test_step_level_training_loss_is_averaged_per_epoch(tmp_path):
    # Lightning with on_epoch=False: only train_loss_step, several per epoch.
    text = (
        "epoch,step,train_loss_step,val_loss\n"
        "0,0,2.0,\n0,1,1.0,\n0,2,0.6,\n0,2,,1.1\n"
        "1,3,0.9,\n1,4,0.5,\n1,5,0.1,\n1,5,,0.9\n"
    )
    history = dk.load_history(write(tmp_path, "metrics.csv", text))
    assert history.train_loss == pytest.approx([1.2, 0.5])  # the means, not the last steps
    assert history.val_loss == [1.1, 0.9]


def test_keras_appended_runs_are_split(tmp_path):
    text = "epoch,loss,val_loss\n0,1.0,1.1\n1,0.8,0.9\n2,0.7,0.85\n0,2.0,2.1\n1,1.5,1.6\n"
    path = write(tmp_path, "training.log", text)
    with pytest.warns(UserWarning, match=r"holds 2 runs \(the epoch counter restarts\)"):
        last = dk.load_history(path)
    assert last.train_loss == [2.0, 1.5] and last.epochs == [0.0, 1.0]
    runs = dk.load_history(path, run="all")
    assert [len(run) for run in runs] == [3, 2]
    assert runs[0].source.endswith("(run 1)")
    with pytest.raises(ValueError, match="run must be 'last' or 'all', got 'first'"):
        dk.load_history(path, run="first")


def test_trainer_logging_less_often_than_evaluating_pairs_every_evaluation(tmp_path):
    # logging_steps=500, eval_steps=100: 33 evaluations, a training loss every fifth.
    log = []
    for step in range(100, 3301, 100):
        if step % 500 == 0:
            log.append({"epoch": step / 1100, "loss": 2.0 - step / 3300, "step": step})
        log.append({"epoch": step / 1100, "eval_loss": 2.1 - step / 4000, "step": step})
    state = {"log_history": log}
    history = dk.load_history(write(tmp_path, "trainer_state.json", json.dumps(state)))
    assert len(history) == 33
    assert all(math.isfinite(v) for v in history.val_loss)
    paired = [v for v in history.train_loss if math.isfinite(v)]
    assert len(paired) == 26  # every evaluation from the first training log (500) to the last
    assert history.train_loss[5] == pytest.approx(2.0 - 600 / 3300, abs=0.01)  # on the line


def test_validation_cadence_is_respected(tmp_path):
    # check_val_every_n_epoch=3: validation rows only in epochs 2, 5, 8; no forward filling.
    lines = ["epoch,step,train_loss_epoch,val_loss"]
    for epoch in range(9):
        lines.append(f"{epoch},{epoch},{1.0 / (epoch + 1):.3f},")
        if epoch % 3 == 2:
            lines.append(f"{epoch},{epoch},,{1.2 / (epoch + 1):.3f}")
    history = dk.load_history(write(tmp_path, "metrics.csv", "\n".join(lines) + "\n"))
    assert len(history) == 9
    assert [i for i, v in enumerate(history.val_loss) if math.isfinite(v)] == [2, 5, 8]


def test_test_metrics_stand_in_only_without_validation(tmp_path):
    only_test = dk.load_history(write(tmp_path, "a.csv", "epoch,loss,test_loss\n0,1,1.1\n"))
    assert only_test.val_loss == [1.1]
    both = dk.load_history(write(tmp_path, "b.csv", "epoch,loss,val_loss,test_loss\n0,1,1.2,1.1\n"))
    assert both.val_loss == [1.2]


def test_a_folder_finds_the_log_inside(tmp_path):
    version = tmp_path / "lightning_logs" / "version_0"
    version.mkdir(parents=True)
    (version / "hparams.yaml").write_text("lr: 0.1\n")
    (version / "metrics.csv").write_text("epoch,train_loss,val_loss\n0,1.0,1.1\n1,0.5,0.7\n")
    assert dk.load_history(version).val_loss == [1.1, 0.7]
    assert dk.load_history(tmp_path).source == str(version / "metrics.csv")
    output = tmp_path / "trainer"
    for step in (500, 1500, 1000):
        checkpoint = output / f"checkpoint-{step}"
        checkpoint.mkdir(parents=True)
        log = [{"epoch": 1, "eval_loss": step / 1000, "step": step}]
        (checkpoint / "trainer_state.json").write_text(json.dumps({"log_history": log}))
    assert dk.load_history(output).val_loss == [1.5]  # the latest checkpoint
    empty = tmp_path / "nothing"
    empty.mkdir()
    with pytest.raises(HistoryError, match="is a folder without a training log"):
        dk.load_history(empty)


# -- issue 12: reliability of the readers --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("huge.csv", "epoch,loss\n0," + "1" * 140_000 + "\n", r"huge.csv is malformed CSV \(line"),
        ("deep.json", "[" * 100_000 + "]" * 100_000, "deep.json is JSON nested too deeply"),
        ("blob.csv", bytes(range(256)) * 64, "blob.csv is binary data, not a CSV or JSON"),
        ("latin.csv", "epoch,loss\n0,caf\xe9\n".encode("latin-1"), "latin.csv is not UTF-8"),
        ("empty.json", b"", "empty.json is empty"),
    ],
)
def test_unreadable_input_gets_one_clear_error(tmp_path, name, content, message):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content)
    with pytest.raises(HistoryError, match=message) as error:
        dk.load_history(path)
    assert "\n" not in str(error.value)


def test_a_large_csv_is_streamed(tmp_path):
    import tracemalloc

    path = tmp_path / "big.csv"
    extra = ["lr", "momentum", "grad_norm", "time", "samples_per_second", "global_step"]
    with path.open("w") as handle:
        handle.write(",".join(["epoch", "step", "train_loss_step", *extra, "val_loss"]) + "\n")
        filler = ",".join(f"{0.000123456789 * (i + 1):.12f}" for i in range(len(extra)))
        for step in range(24_000):
            loss = 1 / (1 + step / 5000)
            handle.write(f"{step // 600},{step},{loss:.6f},{filler},\n")
            if step % 600 == 599:
                handle.write(f"{step // 600},{step},,{filler},{1.1 * loss:.6f}\n")
    size = path.stat().st_size
    assert size > 2_500_000
    tracemalloc.start()
    try:
        history = dk.load_history(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(history) == 40
    assert peak < size / 4  # kept per epoch, not per row: far below the file's size


def test_a_git_lfs_pointer_is_named_as_such(tmp_path):
    pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 4096\n"
    path = write(tmp_path, "events.out.tfevents.1.host", pointer)
    with pytest.raises(HistoryError, match="is a Git LFS pointer, not the log itself"):
        dk.load_history(path)


def test_a_dataframe_of_a_lightning_log_reads_nan_as_blank():
    nan = math.nan

    class Frame:  # what diagnose uses of a pandas DataFrame read from a Lightning metrics.csv
        columns = ("epoch", "train_loss", "val_loss")

        def to_dict(self, orient):
            assert orient == "list"
            return {
                "epoch": [0, 0, 1, 1, 2, 2],
                "train_loss": [1.0, nan, 0.6, nan, 0.4, nan],
                "val_loss": [nan, 1.1, nan, 0.8, nan, 0.7],
            }

    history = as_history(Frame())
    assert history.train_loss == [1.0, 0.6, 0.4] and history.val_loss == [1.1, 0.8, 0.7]
    assert dk.diagnose(Frame()).regime != "diverged"
    assert math.isnan(as_history({"val_loss": [1.0, None, 0.8]}).val_loss[1])  # not logged
    assert as_history({"val_loss": [1.0, nan, 0.8]}).val_loss[1] == math.inf  # logged as NaN


@pytest.mark.parametrize("path", [3, None, b"log.csv", ["log.csv"]])
def test_load_history_names_a_path_of_the_wrong_type(path):
    kind = type(path).__name__
    with pytest.raises(TypeError, match=rf"path must be a str or os.PathLike, got .* \({kind}\)"):
        dk.load_history(path)


def test_load_history_names_columns_of_the_wrong_type(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("epoch,loss,val_loss\n0,1.0,1.1\n")
    with pytest.raises(
        TypeError, match=r"columns must be a mapping .*, got \['val_loss'\] \(list\)"
    ):
        dk.load_history(log, columns=["val_loss"])  # type: ignore[arg-type]

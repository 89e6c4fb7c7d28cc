"""load_history on every format it claims, written here as the tools write them."""

from __future__ import annotations

import json
import math

import pytest

import dropkit as dk
from dropkit.advisor import History, HistoryError


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

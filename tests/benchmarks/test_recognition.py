"""The split, the label parsing and the scores of ``benchmarks/recognition.py`` on hand-made
inputs (no development set is read)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import recognition as bench
from bot.vision.geometry import Box

SOMEWHERE = Box(0, 0, 10, 10)


def face(
    answer: str, *, box: Box = SOMEWHERE, detector: str = "cascade", unsure: bool = False
) -> bench.Face:
    return bench.Face(box, detector, answer, unsure)


def outcome(truth: tuple[str, ...], *faces: bench.Face, ms: float = 10.0) -> bench.Outcome:
    return bench.Outcome("x.jpg", truth, tuple(faces), 100, 100, ms)


# -- split ------------------------------------------------------------------------------------


def test_the_first_half_by_sorted_name_trains_and_the_rest_tests() -> None:
    files = [Path(f"/d/{n}") for n in ("b.jpg", "a.png", "2.jpg", "10.jpg", "c.gif")]

    train, test = bench.split_files(files)

    assert [p.name for p in train] == ["10.jpg", "2.jpg"]
    assert [p.name for p in test] == ["a.png", "b.jpg", "c.gif"]


def test_a_single_picture_is_only_tested() -> None:
    assert bench.split_files([Path("/d/a.jpg")]) == ([], [Path("/d/a.jpg")])


def test_a_set_is_split_per_character_folder_reading_pictures_only(tmp_path: Path) -> None:
    (tmp_path / "SOURCE.txt").write_text("where from")
    for name in ("1.jpg", "2.png", "3.jpeg", "4.webp", "notes.txt"):
        (tmp_path / "rin" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "rin" / name).write_bytes(b"x")
    (tmp_path / "aoi").mkdir()
    (tmp_path / "aoi" / "only.jpg").write_bytes(b"x")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "1.jpg").write_bytes(b"x")

    split = bench.split_set(tmp_path)

    assert list(split) == ["aoi", "rin"]
    assert [p.name for p in split["rin"][0]] == ["1.jpg", "2.png"]
    assert [p.name for p in split["rin"][1]] == ["3.jpeg", "4.webp"]
    assert split["aoi"] == ([], [tmp_path / "aoi" / "only.jpg"])


def test_a_training_folder_of_links_is_made_afresh(tmp_path: Path) -> None:
    picture = tmp_path / "a.jpg"
    picture.write_bytes(b"x")
    dest = tmp_path / "links"
    bench.link_folder(dest, {"old": [picture]})

    bench.link_folder(dest, {"rin": [picture]})

    assert sorted(p.name for p in dest.iterdir()) == ["rin"]
    assert (dest / "rin" / "a.jpg").is_symlink()
    assert (dest / "rin" / "a.jpg").resolve() == picture.resolve()


def test_characters_are_left_out_by_thirds_of_the_sorted_names() -> None:
    groups = bench.leave_out_groups(["g", "b", "a", "f", "c", "e", "d"])

    assert groups == [["a", "d", "g"], ["b", "e"], ["c", "f"]]


# -- labels -----------------------------------------------------------------------------------


def test_boxes_are_read_as_character_and_yolo_fractions() -> None:
    boxes = bench.parse_boxes("nakano_miku:0.5 0.25 0.2 0.1;nakano_nino:0.1 0.2 0.3 0.4")

    assert boxes == (
        bench.LabelledBox("nakano_miku", 0.5, 0.25, 0.2, 0.1),
        bench.LabelledBox("nakano_nino", 0.1, 0.2, 0.3, 0.4),
    )
    assert bench.parse_boxes("") == ()


@pytest.mark.parametrize(
    "text", ["nakano_miku 0.5 0.5 0.2 0.2", "a:0.5 0.5 0.2", "a:0.5 0.5 0 0.2"]
)
def test_a_malformed_box_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        bench.parse_boxes(text)


def test_a_yolo_box_becomes_pixels_of_the_picture() -> None:
    box = bench.LabelledBox("a", 0.5, 0.5, 0.2, 0.4).to_box(100, 200)

    assert box == Box(40, 60, 20, 80)


def test_labels_csv_rows(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(
        "file,split,characters,boxes_yolo(class:cx cy w h;...)\n"
        "one.jpg,valid,nakano_miku,nakano_miku:0.5 0.5 0.2 0.2\n"
        "two.png,valid,nakano_miku|nakano_nino,nakano_miku:0.2 0.5 0.1 0.1;"
        "nakano_nino:0.7 0.5 0.1 0.1\n"
    )

    one, two = bench.read_labels(path)

    assert (one.file, one.split, one.characters, one.is_group) == (
        "one.jpg",
        "valid",
        ("nakano_miku",),
        False,
    )
    assert two.characters == ("nakano_miku", "nakano_nino")
    assert [b.character for b in two.boxes] == ["nakano_miku", "nakano_nino"]
    assert two.is_group


def test_labels_csv_with_other_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("name,characters,boxes\na.jpg,x,x:0.5 0.5 0.1 0.1\n")

    with pytest.raises(ValueError, match="expected the columns"):
        bench.read_labels(path)


# -- matching and scores ----------------------------------------------------------------------


def test_boxes_match_greedily_one_to_one_by_iou() -> None:
    labelled = [Box(0, 0, 100, 100), Box(60, 0, 100, 100)]
    detected = [
        Box(30, 0, 100, 100),  # IoU 0.54 with the first, 0.54 with the second
        Box(0, 0, 90, 100),  # IoU 0.90 with the first
        Box(400, 400, 50, 50),  # nothing
    ]

    pairs = bench.match_boxes(detected, labelled)

    assert sorted(pairs) == [(0, 1), (1, 0)]


def test_an_overlap_below_the_threshold_is_no_match() -> None:
    # IoU of these two: 50×100 / (2·100·100 − 50·100) = 1/3 at 50 px; 0.25 at 60 px.
    assert bench.match_boxes([Box(50, 0, 100, 100)], [Box(0, 0, 100, 100)]) == [(0, 0)]
    assert bench.match_boxes([Box(60, 0, 100, 100)], [Box(0, 0, 100, 100)]) == []


def test_faces_found_named_and_extra() -> None:
    labelled = [("miku", Box(0, 0, 100, 100)), ("nino", Box(200, 0, 100, 100))]
    faces = [
        face("miku", box=Box(5, 5, 100, 100)),  # found, named
        face("miku", box=Box(200, 0, 100, 100)),  # found, misnamed
        face("nino", box=Box(500, 500, 40, 40)),  # extra
    ]
    alone = [("ichika", Box(0, 0, 100, 100))]
    stand_in = [face("ichika", box=Box(0, 0, 100, 100), detector="none")]

    scores = bench.score_faces([(labelled, faces), (alone, stand_in)])

    assert scores == bench.FaceScores(labelled=3, found=2, named=1, extra=1)
    assert scores.found_share == pytest.approx(2 / 3)
    assert scores.named_share == pytest.approx(1 / 3)
    assert scores.extra_share == pytest.approx(1 / 3)


def test_main_face_and_among() -> None:
    outcomes = [
        outcome(("rin",), face("rin"), face("aoi")),  # main right
        outcome(("rin",), face("aoi"), face("rin")),  # among only
        outcome(("rin",)),  # no face: wrong
        outcome(("rin", "aoi", "rin"), face("aoi"), face("sho")),  # main right; 1 of 2 among
    ]

    main, among = bench.main_and_among(outcomes)

    assert (main.hits, main.total) == (2, 4)
    assert (among.hits, among.total) == (3, 5)


def test_unsure_rates() -> None:
    untaught = [
        outcome(("new",), face("rin", unsure=True)),
        outcome(("new",), face("rin", unsure=False)),
        outcome(("new",)),  # no face: not flagged
        outcome(("new",), face("aoi", unsure=True)),
    ]
    taught = [
        outcome(("rin",), face("rin", unsure=True)),  # right, flagged
        outcome(("rin",), face("rin")),  # right
        outcome(("rin",), face("rin")),  # right
        outcome(("aoi",), face("rin", unsure=True)),  # wrong: not counted
        outcome(("aoi",), face("rin", unsure=False), face("aoi", unsure=True)),  # wrong main
    ]

    flagged, false_flags = bench.unsure_rates(untaught, taught)

    assert (flagged.hits, flagged.total) == (2, 4)
    assert (false_flags.hits, false_flags.total) == (1, 3)


def test_an_empty_share_has_no_value() -> None:
    assert bench.Share(0, 0).value is None
    assert bench.percent(bench.Share(0, 0)) == "n/a"
    assert bench.percent(bench.Share(1, 8)) == "12.5%"


def test_timing_leaves_refused_pictures_out() -> None:
    outcomes = [outcome(("a",), ms=float(ms)) for ms in range(1, 21)]
    outcomes.append(bench.Outcome("bad.jpg", ("a",), (), ms=999.0, error="not a picture"))

    assert bench.timing(outcomes) == {"median": 10.5, "p95": 19.0, "max": 20.0}
    assert bench.timing([]) is None


def test_targets_are_judged_in_the_right_direction() -> None:
    assert bench.judged(0.95, 0.95, True) == ("≥ 95.0%", True)
    assert bench.judged(0.94, 0.95, True)[1] is False
    assert bench.judged(0.06, 0.05, False) == ("≤ 5.0%", False)
    assert bench.judged(None, 0.05, False)[1] is None


def test_the_taught_face_is_judged_by_the_characters_own_box() -> None:
    boxes = bench.parse_boxes("nakano_miku:0.25 0.5 0.2 0.4;nakano_nino:0.75 0.5 0.2 0.4")
    miku, nino = (b.to_box(200, 100) for b in boxes)
    assert bench.chosen_face_is_right(miku, "nakano miku", boxes, 200, 100) is True
    assert bench.chosen_face_is_right(nino, "nakano miku", boxes, 200, 100) is False
    assert bench.chosen_face_is_right(miku, "nakano ichika", boxes, 200, 100) is None


def test_seed_folds_deal_each_characters_sorted_files_in_turn() -> None:
    files = [Path(f"/s/{n}.png") for n in (7, 1, 3, 2, 6, 4, 5)]
    folds = bench.seed_folds(files, 3)
    assert [[p.stem for p in fold] for fold in folds] == [["1", "4", "7"], ["2", "5"], ["3", "6"]]
    assert sorted(p for fold in folds for p in fold) == sorted(files)

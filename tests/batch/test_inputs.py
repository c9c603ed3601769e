"""Batch rows: JSONL and CSV files, typed from the schema, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from replicate._batch_inputs import file_inputs, input_properties, load_rows, type_cell

SCHEMA = {
    "components": {
        "schemas": {
            "Input": {
                "properties": {
                    "text": {"type": "string"},
                    "n": {"type": "integer"},
                    "scale": {"type": "number"},
                    "flag": {"type": "boolean"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "image": {"type": "string", "format": "uri"},
                    "images": {"type": "array", "items": {"type": "string", "format": "uri"}},
                    "mode": {"allOf": [{"$ref": "#/components/schemas/mode"}]},
                }
            },
            "mode": {"type": "string", "enum": ["a", "b"]},
        }
    }
}
PROPS = input_properties(SCHEMA)


def test_properties_merge_refs_and_file_inputs_are_found() -> None:
    assert PROPS["mode"]["enum"] == ["a", "b"]
    assert file_inputs(PROPS) == {"image", "images"}


def test_csv_cells_are_typed_and_empty_cells_omitted(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text('text,n,scale,flag,tags\nhi,3,0.5,yes,"[""a"",""b""]"\n,,,,\n')
    rows, base = load_rows(path, PROPS)
    assert rows == [{"text": "hi", "n": 3, "scale": 0.5, "flag": True, "tags": ["a", "b"]}, {}]
    assert base == tmp_path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("text,nope\na,b\n", "unknown column"),
        ("n\nthree\n", "rows.csv:2: input n: expected an integer"),
        ("text\na,b\n", "more cells than columns"),
    ],
)
def test_csv_errors_name_the_line_and_input(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "rows.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_rows(path, PROPS)


def test_jsonl_rows_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "a"}\n\n{"n": 2}\n')
    assert load_rows(path, PROPS)[0] == [{"text": "a"}, {"n": 2}]
    path.write_text('{"text": "a"}\n[1]\n')
    with pytest.raises(ValueError, match=r"rows\.jsonl:2: expected a JSON object"):
        load_rows(path, PROPS)
    path.write_text("{oops\n")
    with pytest.raises(ValueError, match=r"rows\.jsonl:1: invalid JSON"):
        load_rows(path, PROPS)


def test_other_inputs_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_rows(tmp_path / "missing.jsonl", PROPS)
    (tmp_path / "rows.txt").write_text("x")
    with pytest.raises(ValueError, match=r"expected a \.jsonl or \.csv"):
        load_rows(tmp_path / "rows.txt", PROPS)
    with pytest.raises(TypeError, match="not one dict"):
        load_rows({"text": "a"}, PROPS)
    with pytest.raises(TypeError, match=r"inputs\[1\]: expected a dict"):
        load_rows([{"text": "a"}, "b"], PROPS)
    assert load_rows(iter([{"text": "a"}]), PROPS) == ([{"text": "a"}], None)


def test_type_cell_bad_values() -> None:
    assert type_cell("tags", "x", PROPS["tags"]) == ["x"]
    for key, raw in (("flag", "maybe"), ("scale", "big"), ("tags", "[1")):
        with pytest.raises(ValueError, match=f"input {key}"):
            type_cell(key, raw, PROPS[key])

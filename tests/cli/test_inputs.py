"""Typing of ``-i key=value`` inputs from a model's input schema."""

from __future__ import annotations

import pathlib

import pytest

from replicate.cli._errors import CLIError
from replicate.cli._inputs import describe_constraints, input_properties, parse_inputs

SCHEMA = {
    "components": {
        "schemas": {
            "Input": {
                "type": "object",
                "required": ["prompt"],
                "properties": {
                    "prompt": {"type": "string", "x-order": 0},
                    "steps": {"type": "integer", "minimum": 1, "maximum": 50},
                    "guidance": {"type": "number"},
                    "upscale": {"type": "boolean"},
                    "image": {"type": "string", "format": "uri"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "sizes": {"type": "array", "items": {"type": "integer"}},
                    "options": {"type": "object"},
                    "scheduler": {"allOf": [{"$ref": "#/components/schemas/scheduler"}]},
                },
            },
            "scheduler": {"type": "string", "enum": ["DDIM", "K_EULER"], "title": "scheduler"},
        }
    }
}


def test_values_are_typed_by_schema() -> None:
    inputs = parse_inputs(
        [
            "prompt=an astronaut riding=a horse",
            "steps=20",
            "guidance=7.5",
            "upscale=yes",
            "tags=a",
            "tags=b",
            "sizes=[512, 768]",
            'options={"a": 1}',
            "scheduler=DDIM",
        ],
        SCHEMA,
    )
    assert inputs == {
        "prompt": "an astronaut riding=a horse",
        "steps": 20,
        "guidance": 7.5,
        "upscale": True,
        "tags": ["a", "b"],
        "sizes": [512, 768],
        "options": {"a": 1},
        "scheduler": "DDIM",
    }


def test_file_inputs_become_paths(tmp_path: pathlib.Path) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG")
    assert parse_inputs([f"image=@{photo}"], SCHEMA) == {"image": photo}
    with pytest.raises(CLIError, match="input image: file not found"):
        parse_inputs([f"image=@{tmp_path / 'missing.png'}"], SCHEMA)


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("steps=many", "input steps: expected an integer, got 'many'"),
        ("guidance=high", "input guidance: expected a number"),
        ("upscale=maybe", "input upscale: expected true or false"),
        ("options=[1]", "input options: expected a JSON object"),
        ("options={bad", "input options: expected a JSON object"),
        ("colour=red", "unknown input 'colour'"),
        ("noequals", "expected key=value"),
    ],
)
def test_bad_inputs_name_the_field(pair: str, message: str) -> None:
    with pytest.raises(CLIError, match=message.replace("[", r"\[")):
        parse_inputs([pair], SCHEMA)


def test_without_schema_strings_stay_strings_and_json_is_parsed() -> None:
    assert parse_inputs(["n=20", 'o={"a": [1]}', "t=[x"], None) == {
        "n": "20",
        "o": {"a": [1]},
        "t": "[x",
    }


def test_refs_resolved_and_constraints_described() -> None:
    props = input_properties(SCHEMA)
    assert props["scheduler"]["enum"] == ["DDIM", "K_EULER"]
    assert describe_constraints(props["steps"]) == ">= 1; <= 50"
    assert describe_constraints(props["scheduler"]) == "one of DDIM, K_EULER"

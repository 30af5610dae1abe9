"""compile_schema: the two schema forms, every failing path, compile errors.

The fast path (fastjsonschema) must never change an answer: a value is
valid iff the reference (jsonschema) says so; the property tests check it.
"""

from __future__ import annotations

import copy

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.errors import ValidationError
from runtime.streams.schema import SHORTHAND_TYPES, Validator, compile_schema


def errors_of(validator: Validator, value) -> list[dict[str, str]]:
    with pytest.raises(ValidationError) as caught:
        validator.validate(value)
    return caught.value.errors


def paths_of(validator: Validator, value) -> list[str]:
    return [error["path"] for error in errors_of(validator, value)]


# --------------------------------------------------------------------------
# No schema


def test_none_accepts_everything():
    validator = compile_schema(None)
    for value in ({}, {"anything": [1, {"x": None}]}, {"n": True}):
        validator.validate(value)
    assert validator.json_schema == {}
    assert compile_schema(None) is validator  # one shared instance


# --------------------------------------------------------------------------
# Shorthand

TODO = {
    "title": "string", "completed": "boolean", "count": "integer", "score": "number", "meta": "object", "tags": "array"
}


class TestShorthand:
    def test_converts_to_json_schema(self):
        validator = compile_schema({"title": "string", "completed": "boolean"})
        assert validator.json_schema == {
            "type": "object",
            "properties": {"title": {"type": "string"}, "completed": {"type": "boolean"}},
        }

    def test_accepts_matching_types(self):
        compile_schema(TODO).validate(
            {"title": "t", "completed": False, "count": 3, "score": 1.5, "meta": {}, "tags": []}
        )

    def test_fields_are_optional_and_others_allowed(self):
        validator = compile_schema(TODO)
        validator.validate({})
        validator.validate({"id": "x", "unlisted": {"deep": [1]}})

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("title", 1),
            ("title", None),
            ("completed", 0),
            ("completed", "true"),
            ("count", 1.5),
            ("count", True),
            ("count", "3"),
            ("score", True),
            ("score", "1"),
            ("meta", []),
            ("tags", {}),
            ("tags", "a,b"),
        ],
    )
    def test_rejects_wrong_type(self, field, value):
        errors = errors_of(compile_schema(TODO), {field: value})
        assert [error["path"] for error in errors] == [f"/{field}"]
        assert errors[0]["message"].startswith(f"must be {TODO[field]}, got ")

    def test_integer_accepts_whole_floats_as_json_schema_does(self):
        compile_schema({"count": "integer"}).validate({"count": 2.0})

    def test_every_wrong_field_is_listed(self):
        errors = errors_of(compile_schema(TODO), {"title": 1, "completed": "no", "count": 0.5, "tags": {}})
        assert sorted(error["path"] for error in errors) == ["/completed", "/count", "/tags", "/title"]

    def test_field_named_type_is_shorthand(self):
        validator = compile_schema({"title": "string", "type": "string"})
        validator.validate({"title": "x", "type": "bug"})
        assert paths_of(validator, {"type": 3}) == ["/type"]

    def test_unknown_type_name_names_the_field(self):
        with pytest.raises(ValueError, match="'title'.*'str'"):
            compile_schema({"title": "str", "done": "boolean"})

    def test_text_that_is_not_a_type_is_refused(self):
        # {"title": "Todo"} is neither useful JSON Schema nor valid shorthand
        with pytest.raises(ValueError, match="'title'"):
            compile_schema({"title": "Todo"})

    def test_all_type_names(self):
        assert SHORTHAND_TYPES == ("string", "number", "integer", "boolean", "object", "array")


# --------------------------------------------------------------------------
# JSON Schema

TASK = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "priority": {"enum": ["low", "high"]},
        "owner": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
            "required": ["name"],
        },
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    "required": ["title", "priority"],
    "additionalProperties": False,
}


class TestJsonSchema:
    def test_detected_by_type_object(self):
        validator = compile_schema({"type": "object"})
        assert validator.json_schema == {"type": "object"}
        validator.validate({"type": [], "anything": 1})

    def test_detected_by_properties(self):
        validator = compile_schema({"properties": {"n": {"type": "integer"}}})
        assert paths_of(validator, {"n": "x"}) == ["/n"]

    def test_detected_by_dollar_keyword(self):
        anything = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "Anything"}
        compile_schema(anything).validate({"a": 1})

    def test_accepts_valid_value(self):
        compile_schema(TASK).validate(
            {"title": "x", "priority": "low", "owner": {"name": "ann", "age": 3}, "tags": ["a"]}
        )

    def test_required(self):
        errors = errors_of(compile_schema(TASK), {})
        assert errors == [{"path": "/title", "message": "is required"}, {"path": "/priority", "message": "is required"}]

    def test_additional_properties(self):
        errors = errors_of(compile_schema(TASK), {"title": "x", "priority": "low", "extra": 1, "a/b": 2})
        assert [error["path"] for error in errors] == ["/extra", "/a~1b"]
        assert "not allowed" in errors[0]["message"]

    def test_every_failing_path_is_listed(self):
        value = {
            "title": "",
            "priority": "urgent",
            "owner": {"age": -1},
            "tags": ["a", 2, "c", "d"],
            "extra": True,
        }
        errors = errors_of(compile_schema(TASK), value)
        assert sorted(error["path"] for error in errors) == sorted(
            ["/title", "/priority", "/owner/name", "/owner/age", "/tags/1", "/tags", "/extra"]
        )
        assert all(error["message"] for error in errors)

    def test_validation_error_message_shows_paths(self):
        with pytest.raises(ValidationError) as caught:
            compile_schema(TASK).validate({"title": 1, "priority": "low"})
        assert "/title: must be string, got integer" in str(caught.value)

    def test_long_values_are_shortened_in_messages(self):
        validator = compile_schema({"type": "object", "properties": {"t": {"maxLength": 2}}})
        [error] = errors_of(validator, {"t": "x" * 10_000})
        assert len(error["message"]) < 300

    def test_newer_keywords_are_enforced(self):
        validator = compile_schema(
            {
                "type": "object",
                "properties": {"pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]}},
                "dependentRequired": {"a": ["b"]},
            }
        )
        validator.validate({"pair": ["x", 1]})
        assert sorted(paths_of(validator, {"pair": [1, "x"], "a": 1})) == ["", "/pair/0", "/pair/1"]

    def test_unevaluated_properties_are_enforced(self):
        validator = compile_schema(
            {"type": "object", "allOf": [{"properties": {"a": {}}}], "unevaluatedProperties": False}
        )
        validator.validate({"a": 1})
        assert errors_of(validator, {"a": 1, "b": 2})

    def test_ref_siblings_apply_as_in_2020_12(self):
        validator = compile_schema(
            {
                "$defs": {"text": {"type": "string"}},
                "type": "object",
                "properties": {"name": {"$ref": "#/$defs/text", "maxLength": 3}},
            }
        )
        validator.validate({"name": "abc"})
        assert paths_of(validator, {"name": "abcd"}) == ["/name"]
        assert paths_of(validator, {"name": 1}) == ["/name"]

    def test_named_draft_is_used(self):
        draft4 = compile_schema(
            {
                "$schema": "http://json-schema.org/draft-04/schema#", "type": "object",
                "properties": {"n": {"type": "integer"}},
            }
        )
        assert paths_of(draft4, {"n": 1.0}) == ["/n"]  # draft 4: 1.0 is not an integer
        draft7 = compile_schema(
            {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "dependencies": {"a": ["b"]}}
        )
        assert paths_of(draft7, {"a": 1}) == [""]

    def test_format_is_an_annotation(self):
        compile_schema({"type": "object", "properties": {"mail": {"format": "email"}}}).validate({"mail": "nope"})

    def test_defaults_are_not_filled_in(self):
        value = {}
        compile_schema({"type": "object", "properties": {"n": {"type": "integer", "default": 5}}}).validate(value)
        assert value == {}

    def test_pattern_follows_the_reference(self):
        # fastjsonschema makes "$" strict; jsonschema (re.search) lets it match
        # before a final newline. The reference decides.
        validator = compile_schema({"type": "object", "properties": {"code": {"pattern": "^[a-z]+$"}}})
        validator.validate({"code": "abc\n"})
        assert paths_of(validator, {"code": "ABC"}) == ["/code"]

    def test_schema_is_copied(self):
        schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
        validator = compile_schema(schema)
        schema["properties"]["n"]["type"] = "string"
        validator.validate({"n": 1})
        assert validator.json_schema["properties"]["n"]["type"] == "integer"


class TestCompileErrors:
    @pytest.mark.parametrize(
        ("schema", "message"),
        [
            ([{"title": "string"}], "must be a dict"),
            ("string", "must be a dict"),
            ({1: "string"}, "keys must be strings"),
            ({"type": "object", "properties": 5}, "invalid JSON Schema at /properties"),
            ({"type": "object", "required": "title"}, "invalid JSON Schema"),
            ({"type": "object", "properties": {"n": {"type": "int"}}}, "invalid JSON Schema"),
            ({"type": "object", "properties": {"n": {"minimum": "0"}}}, "invalid JSON Schema"),
            ({"$schema": "https://example.com/my-draft"}, "unknown \\$schema"),
            ({"$schema": 7}, "\\$schema must be"),
            ({"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}}, "only local \\$ref"),
            ({"type": "array", "items": {"type": "string"}}, "always an object"),
            ({"type": ["string", "null"], "minLength": 1}, "always an object"),
            ({"type": "object", "properties": {"a": {}}, "required": ["b"], "additionalProperties": False}, "required"),
            ({"count": "int"}, "'count'"),
        ],
    )
    def test_raises_value_error(self, schema, message):
        with pytest.raises(ValueError, match=message):
            compile_schema(schema)


# --------------------------------------------------------------------------
# The fast path never changes the answer

json_scalars = (
    st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from([0.0, 1.0, 2.5, -1.5])
    | st.sampled_from(["", "a", "abc", "low", "high", "abc\n"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(["name", "age", "x"]), children, max_size=3)
    ),
    max_leaves=8,
)
fields = ["title", "priority", "owner", "tags", "completed", "count", "score", "meta", "extra"]
values = st.dictionaries(st.sampled_from(fields), json_values, max_size=6)

SCHEMAS = [
    TODO,
    {**TODO, "completed": "boolean"},
    TASK,
    {
        "type": "object",
        "properties": {
            "count": {"type": ["integer", "null"], "multipleOf": 2, "exclusiveMaximum": 4},
            "score": {"anyOf": [{"type": "number", "minimum": 0}, {"const": "abc"}]},
            "tags": {"type": "array", "uniqueItems": True, "contains": {"type": "string"}},
            "meta": {"type": "object", "propertyNames": {"pattern": "^[a-z]+$"}, "minProperties": 1},
            "title": {"oneOf": [{"type": "string", "maxLength": 2}, {"type": "string", "pattern": "^a"}]},
        },
        "if": {"required": ["extra"]},
        "then": {"required": ["count"]},
        "not": {"required": ["priority", "completed"]},
    },
]


@settings(max_examples=300)
@given(st.sampled_from(range(len(SCHEMAS))), values)
def test_fast_path_agrees_with_the_reference(schema_index, value):
    schema = SCHEMAS[schema_index]
    validator = compile_schema(schema)
    reference = jsonschema.Draft202012Validator(validator.json_schema)
    before = copy.deepcopy(value)
    try:
        validator.validate(value)
    except ValidationError as error:
        assert not reference.is_valid(value)
        assert error.errors
    else:
        assert reference.is_valid(value)
    assert value == before


@pytest.mark.parametrize("schema", SCHEMAS)
def test_common_schemas_take_the_fast_path(schema):
    # white-box: the performance contract, and what makes the test above meaningful
    assert compile_schema(schema)._fast_check is not None


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"p": {"prefixItems": [{"type": "string"}]}}},
        {"type": "object", "properties": {"p": {"$ref": "#/$defs/s", "maxLength": 1}}, "$defs": {"s": {}}},
        {"$schema": "http://json-schema.org/draft-03/schema#", "type": "object"},
    ],
)
def test_schemas_fastjsonschema_would_read_differently_skip_it(schema):
    assert compile_schema(schema)._fast_check is None

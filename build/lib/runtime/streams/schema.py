"""Stream item schemas: compiled once, checked on every change.

A stream's ``schema`` is JSON Schema or Motia's shorthand (see the spec,
"Streams"). ``compile_schema`` turns either into a ``Validator`` at startup,
so a bad schema fails there, not on the first write.

Which form a dict is (the shorthand has no marker, so this is a rule):

- It is **JSON Schema** when any value is not a string (``properties``,
  ``required``, ``additionalProperties``, ``allOf``... all take objects,
  arrays or booleans), when it has a ``$``-keyword (``$schema``, ``$ref``,
  ``$defs``...), or when ``"type"`` is ``"object"`` (``{"type": "object"}``
  is JSON Schema for "any object").
- Otherwise every value is a string, and it is the **shorthand**
  ``{"field": "string" | "number" | "integer" | "boolean" | "object" |
  "array"}``: a listed field must have that type when present, listed fields
  are not required, other fields are allowed. An unknown type name is a
  ``ValueError`` naming the field.

So ``{"title": "string", "type": "string"}`` is shorthand with a field
named ``type`` (read as JSON Schema it would reject every item, which is
never what was meant), while a field named ``type`` that must be an object
needs JSON Schema. A JSON Schema whose root ``type`` excludes ``"object"``
is refused too: a stored item is always an object.

Validating: ``fastjsonschema`` (code generated at compile time, ~1 µs)
answers the common case, a valid value; it stops at the first error, so only
when it fails does ``jsonschema`` collect every error, with its path. The
answer is ``jsonschema``'s (the reference implementation): where the two
could disagree by ``fastjsonschema`` accepting more, the schema never takes
the fast path (see ``_fast_path_is_exact``); where ``fastjsonschema`` is
stricter (e.g. ``$`` in a ``pattern`` never matches before a final newline
there), ``jsonschema`` has the last word and the value passes.

``format`` is an annotation, not checked (the Draft 2020-12 default;
``fastjsonschema`` would otherwise assert it). ``default`` never fills in
values (``fastjsonschema`` would, by changing the item). Only local
``$ref`` (``#...``) are allowed: a schema must not make the runtime fetch
URLs.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from runtime.errors import ValidationError

from .ops import json_type_name

if TYPE_CHECKING:
    import jsonschema

# jsonschema and fastjsonschema (~60 ms to import) load when the first schema
# is compiled, not with `import runtime`: a project without schemas never pays.

__all__ = ["Validator", "compile_schema", "SHORTHAND_TYPES"]

SHORTHAND_TYPES = ("string", "number", "integer", "boolean", "object", "array")

#: Drafts (jsonschema's validator class names) for which fastjsonschema generates code with the same meaning.
_SAME_DRAFT_IN_BOTH = frozenset({"Draft4Validator", "Draft6Validator", "Draft7Validator"})
#: Drafts fastjsonschema does not implement: it reads them as draft 7.
_READ_AS_DRAFT7 = frozenset({"Draft201909Validator", "Draft202012Validator"})

#: 2019-09 / 2020-12 keywords that draft 7 (so fastjsonschema) ignores:
#: with any of them the fast path could accept an invalid value.
_NEWER_KEYWORDS = frozenset({
    "prefixItems", "dependentRequired", "dependentSchemas", "unevaluatedProperties",
    "unevaluatedItems", "minContains", "maxContains", "$dynamicRef", "$dynamicAnchor",
    "$recursiveRef", "$recursiveAnchor", "$anchor", "$vocabulary",
})
#: Keywords whose value maps names (not keywords) to subschemas.
_NAMED_SUBSCHEMAS = frozenset({"properties", "patternProperties", "definitions", "$defs", "dependentSchemas"})
#: Keywords whose value is data, not a schema: never walked.
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples"})
#: Keywords that may sit next to ``$ref`` in draft 7 and 2020-12 alike
#: (draft 7 ignores all siblings of ``$ref``, 2020-12 applies them).
_ANNOTATIONS = frozenset({
    "title", "description", "$comment", "examples", "default", "deprecated", "readOnly", "writeOnly",
})

_MAX_MESSAGE = 200


class Validator:
    """A compiled item schema.

    ``validate(value)`` returns ``None`` or raises ``ValidationError`` whose
    ``errors`` list every failing place as ``{"path": JSON Pointer ("" for
    the item itself), "message": str}``. ``json_schema`` is the schema as
    JSON Schema (a shorthand converted), for documentation and clients.
    """

    __slots__ = ("json_schema", "_fast_check", "_reference")

    def __init__(
        self,
        json_schema: dict[str, Any],
        fast_check: Callable[[Any], Any] | None,
        reference: jsonschema.protocols.Validator | None,
    ) -> None:
        self.json_schema = json_schema
        self._fast_check = fast_check
        self._reference = reference

    def validate(self, value: dict[str, Any]) -> None:
        if self._fast_check is not None:
            try:
                self._fast_check(value)
                return
            except (ValueError, TypeError):
                pass  # invalid, or fastjsonschema is stricter: ask the reference
        errors = _collect_errors(self._reference, value)
        if errors:
            raise ValidationError(errors)

    def __repr__(self) -> str:
        return f"Validator({self.json_schema!r})"


class _AcceptAll(Validator):
    """The validator of a stream without a schema: costs one method call."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__({}, None, None)

    def validate(self, value: dict[str, Any]) -> None:
        return None


_ACCEPT_ALL = _AcceptAll()


def compile_schema(schema: dict[str, Any] | None) -> Validator:
    """Compile a stream's schema (JSON Schema, shorthand or ``None``).

    ``None`` accepts everything. A schema that is not a dict, a shorthand
    with an unknown type name, or an invalid JSON Schema raises
    ``ValueError`` saying what is wrong.
    """
    if schema is None:
        return _ACCEPT_ALL
    if not isinstance(schema, dict):
        raise ValueError(f"a schema must be a dict (JSON Schema or shorthand), got {type(schema).__name__}")
    if not all(isinstance(key, str) for key in schema):
        raise ValueError("a schema's keys must be strings")
    json_schema = _shorthand_to_json_schema(schema) if _is_shorthand(schema) else copy.deepcopy(schema)
    draft = _draft_of(json_schema)
    _check_json_schema(json_schema, draft)
    reference = draft(json_schema)
    fast_check = _compile_fast(json_schema) if _fast_path_is_exact(json_schema, draft) else None
    return Validator(json_schema, fast_check, reference)


# --------------------------------------------------------------------------
# Forms


def _is_shorthand(schema: dict[str, Any]) -> bool:
    """The detection rule of the module docstring."""
    if schema.get("type") == "object":
        return False
    if any(key.startswith("$") for key in schema):
        return False
    return all(isinstance(value, str) for value in schema.values())


def _shorthand_to_json_schema(shorthand: dict[str, str]) -> dict[str, Any]:
    for field, type_name in shorthand.items():
        if type_name not in SHORTHAND_TYPES:
            raise ValueError(
                f"schema field {field!r}: unknown type {type_name!r}; the shorthand takes "
                f"{', '.join(SHORTHAND_TYPES)} (for anything else, write JSON Schema with \"type\": \"object\")"
            )
    return {
        "type": "object",
        "properties": {field: {"type": type_name} for field, type_name in shorthand.items()},
    }


# --------------------------------------------------------------------------
# Compiling


def _draft_of(json_schema: dict[str, Any]) -> type[jsonschema.protocols.Validator]:
    """The draft ``$schema`` names, Draft 2020-12 without one."""
    import jsonschema
    from jsonschema.validators import validator_for

    if "$schema" not in json_schema:
        return jsonschema.Draft202012Validator
    if not isinstance(json_schema["$schema"], str):
        raise ValueError(f"$schema must be a URI string, got {json_schema['$schema']!r}")
    draft = validator_for(json_schema, default=None)  # type: ignore[arg-type]  # the stubs omit None; it works
    if draft is None:
        raise ValueError(f"unknown $schema {json_schema['$schema']!r}")
    return draft


def _check_json_schema(json_schema: dict[str, Any], draft: type[jsonschema.protocols.Validator]) -> None:
    import jsonschema

    try:
        draft.check_schema(json_schema)
    except jsonschema.SchemaError as exc:
        where = _to_pointer(exc.absolute_path)
        raise ValueError(f"invalid JSON Schema at {where or 'the root'}: {exc.message}") from None
    for ref in _refs(json_schema):
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref (starting with '#') are supported, got {ref!r}")
    allowed = json_schema.get("type", "object")
    if "object" not in (allowed if isinstance(allowed, list) else [allowed]):
        raise ValueError(f"a stream item is always an object, but the schema's type is {allowed!r}")


def _compile_fast(json_schema: dict[str, Any]) -> Callable[[Any], Any]:
    import fastjsonschema

    try:
        return fastjsonschema.compile(
            json_schema,
            handlers=_NO_REMOTE_REFS,
            use_default=False,  # would fill in defaults by changing the item
            use_formats=False,  # format is an annotation, as for jsonschema
        )
    except fastjsonschema.JsonSchemaDefinitionException as exc:
        raise ValueError(f"invalid JSON Schema: {exc}") from None


def _refuse_remote_ref(uri: str) -> Any:
    import fastjsonschema

    raise fastjsonschema.JsonSchemaDefinitionException(f"remote $ref {uri!r} is not allowed")


#: Belt and braces with the check in ``_check_json_schema``: fastjsonschema
#: fetches any URI scheme it has no handler for.
_NO_REMOTE_REFS = {scheme: _refuse_remote_ref for scheme in ("http", "https", "file", "ftp", "data")}


def _fast_path_is_exact(json_schema: dict[str, Any], draft: type[jsonschema.protocols.Validator]) -> bool:
    """Whether fastjsonschema never accepts what jsonschema rejects here.

    For drafts 4, 6 and 7 both implement the same draft. For 2019-09 and
    2020-12, which fastjsonschema reads as draft 7, only if the schema uses
    nothing whose meaning changed: the newer keywords (ignored by draft 7),
    ``$ref`` with sibling keywords (ignored by draft 7) and an ``$id``
    below the root (changes how ``$ref`` resolve).
    """
    if draft.__name__ in _SAME_DRAFT_IN_BOTH:
        return True
    if draft.__name__ not in _READ_AS_DRAFT7:
        return False
    return all(_reads_the_same_as_draft7(subschema, is_root) for subschema, is_root in _subschemas(json_schema))


def _reads_the_same_as_draft7(subschema: dict[str, Any], is_root: bool) -> bool:
    if not _NEWER_KEYWORDS.isdisjoint(subschema):
        return False
    if "$ref" in subschema and not (subschema.keys() - {"$ref"} <= _ANNOTATIONS):
        return False
    if "$id" in subschema and not is_root:
        return False
    items = subschema.get("items")
    return not isinstance(items, list)  # array form: tuple in draft 7, invalid in 2020-12


def _subschemas(json_schema: Any) -> Iterator[tuple[dict[str, Any], bool]]:
    """Every object in the schema that is a schema (not data, not a map of
    names), with whether it is the root. Over-approximates: walks unknown
    keywords too, so a ``$ref`` into them is covered."""
    stack: list[tuple[Any, bool]] = [(json_schema, True)]
    while stack:
        node, is_root = stack.pop()
        if isinstance(node, list):
            stack.extend((item, False) for item in node)
            continue
        if not isinstance(node, dict):
            continue
        yield node, is_root
        for keyword, value in node.items():
            if keyword in _DATA_KEYWORDS:
                continue
            if keyword in _NAMED_SUBSCHEMAS and isinstance(value, dict):
                stack.extend((item, False) for item in value.values())
            else:
                stack.append((value, False))


def _refs(json_schema: Any) -> Iterator[str]:
    for subschema, _ in _subschemas(json_schema):
        ref = subschema.get("$ref")
        if isinstance(ref, str):
            yield ref


# --------------------------------------------------------------------------
# Errors


def _collect_errors(reference: Any, value: Any) -> list[dict[str, str]]:
    """Every error ``jsonschema`` finds, one entry per failing place.

    ``required`` and ``additionalProperties: false`` report on the object;
    they are split here into one entry per missing or unexpected member, at
    that member's path, so a client can show each next to its field.
    """
    found: list[dict[str, str]] = []
    seen_required: set[tuple[Any, ...]] = set()
    for error in reference.iter_errors(value):
        path = _to_pointer(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            key = (path, tuple(error.absolute_schema_path))
            if key not in seen_required:
                seen_required.add(key)
                found.extend(
                    {"path": f"{path}/{_escape(name)}", "message": "is required"}
                    for name in error.validator_value
                    if name not in error.instance
                )
        elif error.validator == "additionalProperties" and error.validator_value is False:
            found.extend(
                {"path": f"{path}/{_escape(name)}", "message": "is not allowed (additionalProperties is false)"}
                for name in _additional_properties(error.instance, error.schema)
            )
        elif error.validator == "type":
            found.append({"path": path, "message": _type_message(error.validator_value, error.instance)})
        else:
            found.append({"path": path, "message": _shorten(error.message)})
    return _unique(found)


def _additional_properties(instance: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Members neither in ``properties`` nor matched by ``patternProperties``
    (``re.search``, as jsonschema does)."""
    listed = schema.get("properties", {})
    patterns = [re.compile(pattern) for pattern in schema.get("patternProperties", {})]
    return [
        name for name in instance
        if name not in listed and not any(pattern.search(name) for pattern in patterns)
    ]


def _type_message(expected: str | list[str], instance: Any) -> str:
    names = expected if isinstance(expected, list) else [expected]
    return f"must be {' or '.join(names)}, got {json_type_name(instance)}"


def _unique(errors: list[dict[str, str]]) -> list[dict[str, str]]:
    seen: set[tuple[str, str]] = set()
    unique = []
    for error in errors:
        key = (error["path"], error["message"])
        if key not in seen:
            seen.add(key)
            unique.append(error)
    return unique


def _shorten(message: str) -> str:
    """jsonschema messages start with the value's repr, which can be huge."""
    if len(message) <= _MAX_MESSAGE:
        return message
    half = _MAX_MESSAGE // 2
    return message[:half] + " … " + message[-half:]


def _to_pointer(path: Any) -> str:
    return "".join("/" + _escape(str(part)) for part in path)


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")

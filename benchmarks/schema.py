"""The ``eyesdk.bench/1`` JSON document: its schema as data, a small validator, and an atomic NaN-safe writer.

The schema lives here as a plain dict (a JSON Schema subset) so that the CLI, the tests and ``docs/bench-schema.md``
agree on one definition, and so that checking a document needs neither network nor the ``jsonschema`` package (it
is not a runtime dependency, and the benchmark must run on a bare edge device). The validator implements exactly the
keywords the schema uses: ``type``, ``properties``, ``required``, ``additionalProperties``, ``items``, ``enum``,
``const``, ``minimum``, ``maximum``, ``minItems`` and local ``$ref``.

Versioning: producers of ``eyesdk.bench/1`` may add optional keys where ``additionalProperties`` allows it; renaming,
removing or retyping a key, or adding a required one, makes it ``eyesdk.bench/2``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eyesdk.atomic import atomic_write_text

SCHEMA_ID = "eyesdk.bench/1"

_NUM = {"type": "number"}
_NUM_OR_NULL = {"type": ["number", "null"]}
_NONNEG_OR_NULL = {"type": ["number", "null"], "minimum": 0}
_PROB_OR_NULL = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
_STR_OR_NULL = {"type": ["string", "null"]}


def _obj(props: dict[str, Any], required: list[str] | None = None, extra: bool = False) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
        "additionalProperties": extra,
    }


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return {**schema, "type": [*types, "null"]}


_LATENCY = _obj({"p50": _NONNEG_OR_NULL, "p90": _NONNEG_OR_NULL, "p99": _NONNEG_OR_NULL, "mean": _NONNEG_OR_NULL})
_ACCURACY = _obj({"acc": _PROB_OR_NULL, "bacc": _PROB_OR_NULL, "f1": _PROB_OR_NULL, "auc": _PROB_OR_NULL})
_CALIBRATION = _obj({"ece": _PROB_OR_NULL, "mce": _PROB_OR_NULL, "brier": _PROB_OR_NULL, "nll": _NONNEG_OR_NULL})
_SEPARATION = _obj({"ks": _PROB_OR_NULL, "fisher": _NONNEG_OR_NULL})
_NUM_LIST = {"type": "array", "items": _NUM_OR_NULL}
_PLOTS = _obj(
    {
        "reliability": _obj({"edges": _NUM_LIST, "confidence": _NUM_LIST, "frequency": _NUM_LIST, "counts": _NUM_LIST}),
        "histogram": _obj({"edges": _NUM_LIST, "closed": _NUM_LIST, "open": _NUM_LIST}),
    }
)
_SLICE = _obj(
    {
        "slice": {"type": "string"},
        "n": {"type": "integer", "minimum": 1},
        "n_open": {"type": "integer", "minimum": 0},
        "acc": _PROB_OR_NULL,
        "bacc": _PROB_OR_NULL,
        "f1": _PROB_OR_NULL,
        "auc": _PROB_OR_NULL,
        "ece": _PROB_OR_NULL,
    }
)
_QUALITY = {  # keys shared by our artifacts and peers; null without --data
    "accuracy": _nullable(_ACCURACY),
    "calibration": _nullable(_CALIBRATION),
    "separation": _nullable(_SEPARATION),
    "breakdown": {"type": ["array", "null"], "items": _SLICE},
    "plots": _nullable(_PLOTS),
}

RESULT = _obj(
    {
        "backend": {"type": "string"},
        "precision": {"type": "string"},
        "format": {"type": "string"},
        "file": {"type": "string"},
        "threads": {"type": "integer", "minimum": 1},
        "temperature": {"type": "number", "minimum": 0},
        "error": _STR_OR_NULL,
        "backend_import_ms": _NONNEG_OR_NULL,
        "cold_start_ms": _NONNEG_OR_NULL,
        "latency_us": _nullable(_LATENCY),
        "throughput_per_s": _nullable(_obj({"1": _NONNEG_OR_NULL, "8": _NONNEG_OR_NULL, "64": _NONNEG_OR_NULL})),
        "ratios": _obj({"p50_vs_fastest": _NONNEG_OR_NULL, "p50_vs_peer": _NONNEG_OR_NULL,
                        "p50_vs_peer_run": _NONNEG_OR_NULL},  # optional: added within /1
                       required=["p50_vs_fastest", "p50_vs_peer"]),
        "parity": _obj(
            {"max_abs_diff": _NONNEG_OR_NULL, "tolerance": _NONNEG_OR_NULL, "ok": {"type": ["boolean", "null"]}}
        ),
        "drift": _nullable(
            _obj(
                {
                    "reference": {"type": "string"},
                    "acc_pp": _NUM_OR_NULL,
                    "f1_pp": _NUM_OR_NULL,
                    "flip_rate": _PROB_OR_NULL,
                    "mean_abs_dprob": _PROB_OR_NULL,
                    "max_abs_dlogit": _NONNEG_OR_NULL,
                }
            )
        ),
        **_QUALITY,
    }
)

PEER = _obj(
    {
        "name": {"type": "string"},
        "spec": {"type": "string"},
        "format": {"type": "string"},
        "path": {"type": "string"},
        "sha256": {"type": "string"},
        "runtime": {"type": "string"},
        "error": _STR_OR_NULL,
        "cold_start_ms": _NONNEG_OR_NULL,
        "latency_us": _nullable(_LATENCY),
        "latency_run_us": _nullable(_LATENCY),
        "ratios": _obj({"ours_fastest_p50_vs_peer": _NONNEG_OR_NULL}),
        **_QUALITY,
    }
)

FAILURE = _obj(
    {
        "artifact": {"type": "string"},
        "gate": {"type": "string", "enum": ["parity", "max_drift", "max_ece", "max_p50_us"]},
        "value": _NUM_OR_NULL,
        "limit": _NUM_OR_NULL,
        "message": {"type": "string"},
    }
)

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "eyesdk-bench result document",
    **_obj(
        {
            "schema": {"const": SCHEMA_ID},
            "created": {"type": "string"},
            "command": {"type": "string"},
            "device": _obj(
                {
                    "arch": {"type": "string"},
                    "system": {"type": "string"},
                    "os_release": {"type": "string"},
                    "cpu_model": {"type": "string"},
                    "cpu_flags": {"type": "array", "items": {"type": "string"}},
                    "cpu_count": {"type": "integer", "minimum": 1},
                    "python": {"type": "string"},
                    "backends": {"type": "object"},
                    "fingerprint": {"type": "string"},
                    "libraries": {"type": "object"},
                },
                extra=True,
            ),
            "model": _obj(
                {
                    "name": {"type": "string"},
                    "path": {"type": "string"},
                    "manifest_sha256": {"type": "string"},
                    "created": _STR_OR_NULL,
                    "eyesdk_version": _STR_OR_NULL,
                    "params": {"type": ["integer", "null"]},
                    "threshold": {"type": "number", "minimum": 0, "maximum": 1},
                },
                extra=True,
            ),
            "settings": _obj(
                {
                    "runs": {"type": "integer", "minimum": 1},
                    "warmup": {"type": "integer", "minimum": 0},
                    "rounds": {"type": "integer", "minimum": 1},
                    "threads": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1},
                    "batch_sizes": {"type": "array", "items": {"type": "integer", "minimum": 1}},
                    "quick": {"type": "boolean"},
                    "crop": _obj({"source": {"type": "string"}, "height": {"type": "integer"},
                                  "width": {"type": "integer"}}),
                }
            ),
            "data": _nullable(
                _obj(
                    {
                        "sources": {"type": "array", "items": {"type": "string"}},
                        "subjects_from": _STR_OR_NULL,
                        "max_samples": {"type": ["integer", "null"]},
                        "n": {"type": "integer", "minimum": 0},
                        "n_open": {"type": "integer", "minimum": 0},
                        "n_closed": {"type": "integer", "minimum": 0},
                        "bad_files": {"type": "integer", "minimum": 0},
                    }
                )
            ),
            "results": {"type": "array", "items": {"$ref": "#/$defs/result"}},
            "peers": {"type": "array", "items": {"$ref": "#/$defs/peer"}},
            "gates": _obj(
                {
                    "max_drift_pp": _NONNEG_OR_NULL,
                    "max_ece": _NONNEG_OR_NULL,
                    "max_p50_us": _NONNEG_OR_NULL,
                    "ok": {"type": "boolean"},
                    "failures": {"type": "array", "items": {"$ref": "#/$defs/failure"}},
                }
            ),
        }
    ),
    "$defs": {"result": RESULT, "peer": PEER, "failure": FAILURE},
}


class BenchSchemaError(ValueError):
    """A document that does not follow ``eyesdk.bench/1``; the message lists every violation with its JSON path."""


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list, tuple),
    "string": (str,),
    "boolean": (bool,),
    "null": (type(None),),
}


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":  # NaN/inf cannot be written as JSON: they must have become null
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, _TYPES[name])


def _resolve(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $ref are supported, got {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def validation_errors(document: Any, schema: Mapping[str, Any] | None = None) -> list[str]:
    """Every violation of ``schema`` (default: :data:`SCHEMA`) as ``"$.path: what is wrong"`` lines; empty if valid."""
    root = SCHEMA if schema is None else schema
    errors: list[str] = []

    def check(value: Any, node: Mapping[str, Any], path: str) -> None:
        if "$ref" in node:
            check(value, _resolve(node["$ref"], root), path)
            return
        if "const" in node and value != node["const"]:
            errors.append(f"{path}: must be {node['const']!r}, got {value!r}")
            return
        if "enum" in node and value not in node["enum"]:
            errors.append(f"{path}: must be one of {node['enum']}, got {value!r}")
            return
        if "type" in node:
            types = node["type"] if isinstance(node["type"], list) else [node["type"]]
            if not any(_is_type(value, t) for t in types):
                errors.append(f"{path}: expected {' or '.join(types)}, got {type(value).__name__} {value!r:.60}")
                return
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "minimum" in node and value < node["minimum"]:
                errors.append(f"{path}: {value} is below the minimum {node['minimum']}")
            if "maximum" in node and value > node["maximum"]:
                errors.append(f"{path}: {value} is above the maximum {node['maximum']}")
        if isinstance(value, dict):
            props = node.get("properties", {})
            errors.extend(f"{path}: missing required key {k!r}" for k in node.get("required", ()) if k not in value)
            extra = node.get("additionalProperties", True)
            for key, item in value.items():
                if key in props:
                    check(item, props[key], f"{path}.{key}")
                elif extra is False:
                    errors.append(f"{path}: unexpected key {key!r} (allowed: {', '.join(props)})")
                elif isinstance(extra, Mapping):
                    check(item, extra, f"{path}.{key}")
        if isinstance(value, (list, tuple)):
            if len(value) < node.get("minItems", 0):
                errors.append(f"{path}: needs at least {node['minItems']} item(s), has {len(value)}")
            if "items" in node:
                for i, item in enumerate(value):
                    check(item, node["items"], f"{path}[{i}]")

    check(document, root, "$")
    return errors


def validate(document: Any) -> None:
    """Raise :class:`BenchSchemaError` listing every problem when ``document`` is not a valid bench document."""
    errors = validation_errors(document)
    if errors:
        shown = "\n  ".join(errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise BenchSchemaError(f"not a valid {SCHEMA_ID} document ({len(errors)} problem(s)):\n  {shown}{more}")


def json_safe(value: Any) -> Any:
    """Plain JSON types only: numpy scalars/arrays become Python numbers/lists, NaN and infinities become None.

    JSON has no NaN; Python's ``json`` would write the non-standard token ``NaN`` that other parsers reject, and a
    metric that is undefined on a one-class slice (AUC, KS) is honestly "no value", i.e. null.
    """
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy arrays and scalars
        return json_safe(value.tolist())
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot write a {type(value).__name__} into the bench JSON: {value!r:.80}")


def dumps(document: Mapping[str, Any]) -> str:
    """The document as strict JSON text (``allow_nan=False``: a NaN that slipped through is a bug, not a token)."""
    return json.dumps(json_safe(document), indent=1, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike[str], document: Mapping[str, Any]) -> Path:
    """Write through a temporary file in the same folder and ``os.replace`` it, so readers never see half a file."""
    return atomic_write_text(path, dumps(document))

"""Generate the DTFx storage field list that the raw-layout tests check durable_ext against.

Reads the C# sources of the DTFx Azure Storage provider (`src/DurableTask.AzureStorage`) and of
DTFx Core (`src/DurableTask.Core`) and writes, as JSON, what they serialise:

- `data_contracts`: every `[DataContract]` class with its `[DataMember]` fields and properties
  (the serialised name, the C# type, whether `EmitDefaultValue = false`) and its base class. These
  are the queue-message JSON members (Newtonsoft honours DataMember) and, through
  `TableEntityConverter`, the History table's columns.
- `table_entities`: every `ITableEntity` class with its public get/set properties (the Instances
  row `OrchestrationInstanceStatus`, the Partitions table's `TablePartitionLease`, ...).
- `json_objects`: classes without `[DataContract]` that a data contract member holds (e.g.
  `FailureDetails`), plain Newtonsoft serialises their public properties in tables and queues;
  and the classes of JSON blobs (`--json-class`, by default the app lease's `AppLeaseInfo`, the
  blob leases' `BlobPartitionLease`/`Lease` and `TaskHubInfo`).
- `table_writers`: per file, the column names written through `TableEntity` indexers
  (`entity["Column"] = ...`, with `const string` names resolved), e.g. the sentinel row's.

Only names and types are extracted; no DTFx code is copied. A class (or a whole table) can be
added to the tests' checks later from the same list, e.g. `TablePartitionLease` for the
Partitions table.

    python -m tools.dtfx_fields --git-dir /path/to/durabletask/.git --rev HEAD \\
        --out tests/storage/dtfx_fields.json
    python -m tools.dtfx_fields --tree /path/to/durabletask --out ...
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SourceFile", "extract", "main"]

SOURCE_DIRS = ("src/DurableTask.Core", "src/DurableTask.AzureStorage")
JSON_BLOB_CLASSES = ("AppLeaseInfo", "BlobPartitionLease", "Lease", "TaskHubInfo")
"""Classes stored as plain JSON blobs (the app lease's info blob, the blob partition managers'
lease blobs and `taskhub.json`): listed with `json_objects` so their checks can be added."""
_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_STRINGS = re.compile(r'@?"(?:[^"\\\n]|\\.)*"')
_NAMESPACE = re.compile(r"\bnamespace\s+([\w.]+)")
_CLASS = re.compile(
    r"((?:\[[^\[\]]*(?:\[[^\[\]]*\][^\[\]]*)*\]\s*)*)"  # attributes
    r"(?:(?:public|internal|private|protected|sealed|abstract|static|partial)\s+)*"
    r"class\s+(\w+)(?:\s*<[^>{]*>)?\s*(?::\s*([^{]+?))?\s*(?:where\s[^{]*)?\{"
)
_ATTRIBUTE = re.compile(r"\[\s*(\w+)\s*(\(([^()]*)\))?\s*\]")
_MODIFIERS = {
    "public",
    "internal",
    "private",
    "protected",
    "virtual",
    "override",
    "new",
    "static",
    "readonly",
    "required",
    "sealed",
    "abstract",
}
_PROPERTY = re.compile(
    r"public\s+(?:virtual\s+|override\s+|new\s+)*([\w<>?,.\[\]\s]+?)\s+(\w+)\s*\{\s*get\s*;"
)
_INDEXER_WRITE = re.compile(r'\[\s*(?:"(\w+)"|(\w+))\s*\]\s*=[^=]')
_CONST = re.compile(r'const\s+string\s+(\w+)\s*=\s*"(\w+)"')


@dataclass(slots=True)
class SourceFile:
    """One C# file: its repository path and text."""

    path: str
    text: str


@dataclass(slots=True)
class _Class:
    namespace: str
    name: str
    bases: list[str]
    attributes: set[str]
    body: str
    path: str
    members: list[dict[str, Any]] = field(default_factory=list)


def _strip(text: str) -> str:
    """The code without comments; string literals kept (column names live in them)."""
    out: list[str] = []
    position = 0
    for match in re.finditer(r'//[^\n]*|/\*.*?\*/|@?"(?:[^"\\\n]|\\.)*"', text, re.DOTALL):
        out.append(text[position : match.start()])
        token = match.group(0)
        out.append(token if token.startswith(('"', '@"')) else " ")
        position = match.end()
    out.append(text[position:])
    return "".join(out)


def _matching_brace(text: str, start: int) -> int:
    """The index just after the `}` closing the `{` at `start` (strings blanked first)."""
    blanked = _STRINGS.sub(lambda m: '"' + " " * (len(m.group(0)) - 2) + '"', text)
    depth = 0
    for index in range(start, len(blanked)):
        if blanked[index] == "{":
            depth += 1
        elif blanked[index] == "}":
            depth -= 1
            if depth == 0:
                return index + 1
    return len(text)


def _top_level(body: str) -> str:
    """A class body with nested blocks (method bodies, accessors, nested types) blanked out,
    keeping `{` `}` of auto-properties so `{ get; set; }` still shows."""
    out: list[str] = []
    depth = 0
    for char in body:
        if char == "{":
            depth += 1
            out.append("{" if depth == 1 else " ")
        elif char == "}":
            out.append("}" if depth == 1 else " ")
            depth -= 1
        else:
            out.append(char if depth <= 1 else " ")
    return "".join(out)


def _classes(source: SourceFile) -> list[_Class]:
    text = _strip(source.text)
    namespace_match = _NAMESPACE.search(text)
    namespace = namespace_match.group(1) if namespace_match else ""
    found: list[_Class] = []
    for match in _CLASS.finditer(text):
        open_brace = match.end() - 1
        close = _matching_brace(text, open_brace)
        attributes = {a.group(1) for a in _ATTRIBUTE.finditer(match.group(1) or "")}
        bases = [b.strip().split("<")[0].split(".")[-1] for b in (match.group(3) or "").split(",")]
        found.append(
            _Class(
                namespace,
                match.group(2),
                [b for b in bases if b],
                attributes,
                text[open_brace + 1 : close - 1],
                source.path,
            )
        )
    return found


def _data_members(cls: _Class) -> list[dict[str, Any]]:
    """The `[DataMember]` fields and properties declared in the class itself."""
    body = _top_level(cls.body)
    members: list[dict[str, Any]] = []
    for match in re.finditer(r"\[\s*DataMember\b", body):
        end = body.index("]", match.end()) + 1
        attribute = body[match.start() : end]
        rest = body[end:]
        while True:  # skip further attributes on the same member
            stripped = rest.lstrip()
            if not stripped.startswith("["):
                break
            rest = stripped[stripped.index("]") + 1 :]
        declaration = re.split(r"\{|;|=>|=", rest, maxsplit=1)[0]
        words = declaration.replace("\n", " ").split()
        words = [w for w in words if w not in _MODIFIERS]
        if len(words) < 2:
            continue
        name_override = re.search(r'Name\s*=\s*"(\w+)"', attribute)
        members.append(
            {
                "name": name_override.group(1) if name_override else words[-1],
                "type": " ".join(words[:-1]),
                "emit_default": re.search(r"EmitDefaultValue\s*=\s*false", attribute) is None,
            }
        )
    return members


def _properties(cls: _Class) -> list[dict[str, Any]]:
    """Public get/set properties declared in the class (an `ITableEntity`'s columns)."""
    body = _top_level(cls.body)
    return [
        {"name": m.group(2), "type": " ".join(m.group(1).split())} for m in _PROPERTY.finditer(body)
    ]


def _indexer_columns(source: SourceFile) -> list[str]:
    """Column names written through `entity["X"] = ...` / `entity[XProperty] = ...`."""
    text = _strip(source.text)
    constants = dict(_CONST.findall(text))
    columns: set[str] = set()
    for literal, constant in _INDEXER_WRITE.findall(text):
        if literal:
            columns.add(literal)
        elif constant in constants:
            columns.add(constants[constant])
    return sorted(columns)


def extract(
    sources: list[SourceFile], json_classes: tuple[str, ...] = JSON_BLOB_CLASSES
) -> dict[str, Any]:
    """The field list of a set of C# files (see the module docstring for its shape);
    `json_classes` are added to `json_objects` by name."""
    contracts: dict[str, Any] = {}
    entities: dict[str, Any] = {}
    writers: dict[str, Any] = {}
    for source in sorted(sources, key=lambda s: s.path):
        for cls in _classes(source):
            full_name = f"{cls.namespace}.{cls.name}" if cls.namespace else cls.name
            if "DataContract" in cls.attributes:
                contracts[full_name] = {
                    "file": cls.path,
                    "base": cls.bases[0] if cls.bases and not _is_interface(cls.bases[0]) else None,
                    "members": _data_members(cls),
                }
            if "ITableEntity" in cls.bases:
                entities[full_name] = {"file": cls.path, "properties": _properties(cls)}
        if "TableEntity" in source.text and (columns := _indexer_columns(source)):
            writers[source.path] = columns
    return {
        "data_contracts": contracts,
        "json_objects": _json_objects(sources, contracts, json_classes),
        "table_entities": entities,
        "table_writers": writers,
    }


def _json_objects(
    sources: list[SourceFile], contracts: dict[str, Any], extra: tuple[str, ...]
) -> dict[str, Any]:
    """Non-DataContract classes that data contract members hold, and the `extra` ones by name,
    with their public properties (followed through their own properties' types and base
    classes, e.g. FailureDetails.InnerFailure)."""
    classes = {
        cls.name: (f"{cls.namespace}.{cls.name}", cls)
        for source in sources
        for cls in _classes(source)
        if "DataContract" not in cls.attributes
    }
    wanted = [re.sub(r"[?\s]|<.*", "", m["type"]) for c in contracts.values() for m in c["members"]]
    wanted += extra
    found: dict[str, Any] = {}
    while wanted:
        name = wanted.pop()
        if name not in classes or classes[name][0] in found:
            continue
        full_name, cls = classes[name]
        properties = _public_properties(cls)
        base = cls.bases[0] if cls.bases and not _is_interface(cls.bases[0]) else None
        found[full_name] = {"file": cls.path, "base": base, "properties": properties}
        wanted += [re.sub(r"[?\s]|<.*", "", p["type"]) for p in properties]
        wanted += [base] if base else []
    return found


def _public_properties(cls: _Class) -> list[dict[str, Any]]:
    """Public properties with a getter (read-only ones too: Newtonsoft writes them), except
    `[JsonIgnore]` ones."""
    body = _top_level(cls.body)
    pattern = re.compile(
        r"public\s+(?:virtual\s+|override\s+)*([\w<>?,.\[\]\s]+?)\s+(\w+)\s*(?:\{\s*get\b|=>)"
    )
    return [
        {"name": m.group(2), "type": " ".join(m.group(1).split())}
        for m in pattern.finditer(body)
        if not body[: m.start()].rstrip().endswith("[JsonIgnore]")
    ]


def _is_interface(name: str) -> bool:
    return len(name) > 1 and name[0] == "I" and name[1].isupper()


def _git_sources(git_dir: str, rev: str) -> tuple[str, list[SourceFile]]:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "--git-dir", git_dir, *args], check=True, capture_output=True, text=True
        ).stdout

    commit = git("rev-parse", rev).strip()
    paths = [
        p
        for p in git("ls-tree", "-r", "--name-only", commit, *SOURCE_DIRS).splitlines()
        if p.endswith(".cs")
    ]
    return commit, [SourceFile(p, git("show", f"{commit}:{p}")) for p in paths]


def _tree_sources(root: Path) -> list[SourceFile]:
    return [
        SourceFile(str(path.relative_to(root)), path.read_text(encoding="utf-8-sig"))
        for directory in SOURCE_DIRS
        for path in sorted((root / directory).rglob("*.cs"))
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--git-dir", help="a durabletask git directory (read with git show)")
    source.add_argument("--tree", type=Path, help="a durabletask checkout")
    parser.add_argument("--rev", default="HEAD", help="the revision to read (with --git-dir)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--json-class",
        action="append",
        default=None,
        help=f"a class stored as a JSON blob to list (default: {', '.join(JSON_BLOB_CLASSES)})",
    )
    args = parser.parse_args(argv)
    if args.git_dir:
        commit, sources = _git_sources(args.git_dir, args.rev)
    else:
        commit, sources = "", _tree_sources(args.tree)
    json_classes = tuple(args.json_class) if args.json_class else JSON_BLOB_CLASSES
    result = {
        "source": {"repository": "Azure/durabletask", "commit": commit},
        **extract(sources, json_classes),
    }
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(
        f"{args.out}: {len(result['data_contracts'])} data contracts, "
        f"{len(result['table_entities'])} table entities, "
        f"{len(result['table_writers'])} table writers",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

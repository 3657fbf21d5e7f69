"""The curl examples of a Markdown document, as a reader would copy them.

An example is a `curl` command in a ```sh block (continued over lines ending in `\\` and over
a quoted JSON body spanning lines), followed by its expected answer on a comment line:
`# → 201 …`. A comment may also say which value of the answer the reader exports for the
examples after it: `export RUN=<run.run_id of the answer>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

FENCE = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)
EXPECTED = re.compile(r"#\s*→\s*(\d{3})\b")
EXPORT = re.compile(r"export (\w+)=<([\w.\[\]0-9]+) of the answer>")


@dataclass
class Example:
    command: str
    line: int
    status: int | None = None
    exports: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"line {self.line}: {self.command.splitlines()[0]}"


def curl_examples(path: Path) -> list[Example]:
    text = path.read_text()
    examples: list[Example] = []
    for block in FENCE.finditer(text):
        first_line = text.count("\n", 0, block.start(1)) + 1
        lines = block.group(1).splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.lstrip().startswith("curl "):
                start = i
                command = [line]
                while _continues("\n".join(command)):
                    i += 1
                    command.append(lines[i])
                examples.append(Example("\n".join(command), first_line + start))
            elif line.lstrip().startswith("#") and examples and examples[-1].status is None:
                if match := EXPECTED.search(line):
                    examples[-1].status = int(match.group(1))
                examples[-1].exports.update(EXPORT.findall(line))
            elif line.lstrip().startswith("#") and examples:
                examples[-1].exports.update(EXPORT.findall(line))
            i += 1
    return examples


def _continues(command: str) -> bool:
    """The command goes on: a trailing backslash, or a single quote still open."""
    return command.rstrip().endswith("\\") or command.count("'") % 2 == 1


def answer_value(answer, path: str):
    """`run.run_id` or `approvals[0].approval_request_id` of a JSON answer."""
    value = answer
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        value = value[int(part[1:-1])] if part.startswith("[") else value[part]
    return value

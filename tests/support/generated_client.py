"""A Python client generated from the live `/api/schema/` by openapi-python-client, as an API
consumer would make one, imported for a test (tests/reliability/test_generated_client.py)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

PACKAGE = "flowgate_openapi_client"  # not `flowgate_client`: that is clients/python
CONFIG = (
    "project_name_override: flowgate-openapi-client\n"
    f"package_name_override: {PACKAGE}\n"
    "post_hooks: []\n"
)


@contextmanager
def generated_client(schema: bytes, into: Path):
    """Generate the client package from `schema` (the JSON of /api/schema/) into `into` and
    yield it imported; afterwards it is forgotten again (sys.path and sys.modules)."""
    schema_path = into / "schema.json"
    schema_path.write_bytes(schema)
    config_path = into / "config.yaml"
    config_path.write_text(CONFIG)
    generator = Path(sys.executable).parent / "openapi-python-client"
    result = subprocess.run(
        [
            str(generator),
            "generate",
            *("--path", str(schema_path)),
            *("--config", str(config_path)),
            *("--meta", "none"),
            *("--output-path", str(into / PACKAGE)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    # The generator reports schema problems as warnings and still exits 0: any is a defect.
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "Warning" not in output, output
    sys.path.insert(0, str(into))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(into))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def submodule(package: ModuleType, name: str) -> ModuleType:
    """`package.<name>` imported (`api.automations.automations_create`, `models`)."""
    return importlib.import_module(f"{package.__name__}.{name}")

"""Every curl example of docs/api.md runs as written against a live server seeded like
`./flowgate run`, and answers the status written next to it (`# → 201`).

The examples run in the document's order with real curl, as a reader pastes them: `$FG` is the
server, `$TOKEN` the demo owner's token (a workspace admin of `demo/main`) and
`$REVIEWER_TOKEN` the demo reviewer's; `$DEMO_RUN` is the demo run, waiting at its approval
gate as the worker of `./flowgate run` leaves it. Values an example says to export
(`export RUN=<run.run_id of the answer>`) are taken from its answer for the examples after it.
No worker runs here: a run stays where the API's own answers leave it (and a webhook delivery
stays `pending`). The server allowlists 127.0.0.1 for outbound HTTP, as the page tells the reader
to, so its webhook example may name a receiver on the reader's machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.demo import demo_run_at_gate, seed_demo
from tests.support.doc_examples import answer_value, curl_examples

pytestmark = pytest.mark.django_db(transaction=True)

API_MD = Path(__file__).resolve().parents[2] / "docs" / "api.md"


@pytest.fixture(autouse=True)
def session_queue(celery_test_queue):
    """Runs the examples start are published to this session's own queue; nobody consumes it."""


def test_every_example_has_an_expected_status():
    examples = curl_examples(API_MD)
    assert len(examples) > 30
    assert [str(e) for e in examples if e.status is None] == []


def test_the_examples_run_as_written_against_a_live_server(live_server, settings, tmp_path):
    assert shutil.which("curl"), "curl is needed to run the documented examples"
    # The webhook example's receiver is on the reader's machine, allowlisted as the page says.
    settings.FLOWGATE_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]
    tokens = seed_demo()
    demo_run = demo_run_at_gate()
    env = {
        "PATH": os.environ["PATH"],
        "FG": live_server.url,
        "TOKEN": tokens["owner"],
        "REVIEWER_TOKEN": tokens["reviewer"],
        "DEMO_RUN": demo_run.run_id,
    }
    body = tmp_path / "answer.json"
    failures = []
    for example in curl_examples(API_MD):
        # As pasted, plus where to put the answer and its status (curl's options may follow
        # its body).
        script = f"{example.command} -o {body} -w '%{{http_code}}'"
        done = subprocess.run(
            ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60
        )
        status = int(done.stdout[-3:]) if done.stdout[-3:].isdigit() else None
        answer = body.read_text() if body.exists() else ""
        if status != example.status:
            failures.append(f"{example}: {status} (expected {example.status}) {answer[:300]}")
            continue
        for name, path in example.exports.items():
            env[name] = str(answer_value(json.loads(answer), path))
        body.unlink(missing_ok=True)
    assert failures == []

"""The benchmark's 5-step echo flow on Prefect 3, run by `bench/engine.py` with the Python of
Prefect's own virtualenv (never the project's: Prefect is not a dependency of Flowgate).

Each step is a Prefect task that echoes its input with the previous step's output, as the
Flowgate flow's echo agents do; the task runs and their states are recorded by the Prefect
server the environment names (`PREFECT_API_URL`), whose database is the benchmark's
PostgreSQL. Prints one JSON line: the runs made and the seconds they took.

  python bench/prefect_echo.py RUNS
"""

import json
import sys
import time

from prefect import flow, task


@task
def echo(step: int, upstream: str) -> str:
    return f"step {step}: Do n{step} (upstream: {upstream[-40:]})"


@flow
def echo_flow() -> str:
    output = ""
    for step in range(5):
        output = echo(step, output)
    return output


if __name__ == "__main__":
    runs = int(sys.argv[1])
    echo_flow()  # warm-up: imports, the first API connection, the flow's registration
    began = time.perf_counter()
    for _ in range(runs):
        echo_flow()
    print(json.dumps({"runs": runs, "elapsed_s": time.perf_counter() - began}))

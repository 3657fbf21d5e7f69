"""Settings modules: `base` (from the environment), `local`, `production`, `test`."""

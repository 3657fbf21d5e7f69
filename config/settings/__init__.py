"""Settings modules: `base` (environment-driven), `local` (embedded default), `production`, `test`."""

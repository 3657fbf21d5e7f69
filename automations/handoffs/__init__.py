"""Handoff artifacts: JSON files a node leaves for another automation (reference §2.8).

- `writer`: writes a completed node's artifact into its automation's inbox (or approved) dir,
  after the result is committed;
- `listing`: reads an automation's handoff dirs for `GET /api/automations/v2/{id}/handoffs`.

Where the dirs may be is decided by `automations.workspace_files` (every workspace's files are
confined to its own directory); how a flow declares them is validated by
`automations.flow.handoffs`.
"""

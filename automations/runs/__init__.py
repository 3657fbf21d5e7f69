"""The run state machine: every change of a run's status and what goes with it.

- `transitions`: the one table of allowed status changes, by cause;
- `state`: the one primitive that applies a transition under locks the caller holds (status,
  the fields every transition implies, the run fields saved), node fencing and subtree resets,
  cancelling, superseding open gates through the gate-kind registry;
- `control`: operator actions (pause, resume, cancel, recover) through `run_transition`;
- `repair`: repair, task retry/requeue/continue and the reset preview;
- `sweeps`: the beat sweeps that reap stale runs and re-send lost work.

The engine (`automations.engine`), gate decisions and expiry (`approvals`), automation
pause/delete (`automations.automation_control`, `automations.services`) change run statuses
only through `state`.
"""

"""The approval pages: `/approvals/` (pending list) and `/approvals/<gate id>/` (one gate).

Server-rendered for the reviewer a chat card links to: login required, CSRF-protected forms,
no inline script or style (the content security policy forbids them). Decisions go through
`approvals.decisions.gate_decide` with surface `page`, like every other surface.
"""

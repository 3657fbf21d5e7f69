"""Inbound chat: the interaction endpoints of Slack, Discord and Telegram.

`deciding` is the platform-independent half (receipts, identity, the decision service),
`words` what the chat user is told, and one module per platform verifies, parses and answers.
"""

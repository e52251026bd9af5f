"""Alerts: Block Kit payloads (payload), the Slack adapter (slack) and outbox delivery (outbox).

Importing the package imports nothing else, so the store can use ``notify.alert`` without
pulling in slack-sdk.
"""

"""Merchant notifications: signed Standard Webhooks POSTs of payment transitions, from a
durable Postgres outbox, with retries, backoff and a dead-letter topic (docs/notifications.md)."""

#: the line the notifier writes once it consumes and dispatches; the launcher waits for it
READY_LINE = "notify ready"

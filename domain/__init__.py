"""The payment domain, pure: the records that cross topics, the providers' payment keys and
normalizers, deduplication and the payment state machine. Every process imports it; it
imports nothing of theirs."""

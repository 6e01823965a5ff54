"""Signed test traffic: realistic, correctly signed webhook requests of every provider
(``testing.webhooks``) and whole payments' worth of them (``testing.traffic``).

Used by the tests, the benchmarks and the demo of ``make run``; the services never import it.
Each provider's builder is one small module under ``testing/providers``.
"""

"""Helpers for castline's own tests, fault drills and benchmarks: a throwaway PostgreSQL
that a drill stops and starts, a TCP link that a drill cuts. Never used by the product."""

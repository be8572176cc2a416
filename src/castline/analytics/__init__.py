"""Process analytics: SPC and drift alarms, root cause, predictive quality, die and
machine maintenance, ISO 22400 KPIs, the benefit report, and the KAMP history import.

`castline.analytics.service` is what the web dashboard calls; `cli` is `castline report`.
"""

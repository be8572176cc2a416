"""castline: trace every shot, inspect every casting, prove the KPIs."""

__version__ = "0.1.0"

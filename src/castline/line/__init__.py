"""The runtime of a plant: ingest -> join -> inspect -> decide -> publish -> record."""

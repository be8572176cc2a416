"""The only code that speaks NATS, MQTT and OPC UA, and the v1 message contracts."""

"""Inputs: the MQTT link, GPIO buttons, topic routing."""

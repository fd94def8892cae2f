"""reorder-gateway: buttons and sensors in, exactly one reorder out."""

__version__ = "0.1.0"

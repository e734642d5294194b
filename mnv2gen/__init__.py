"""mnv2gen: compile MobileNetV2-family int8 models into bare-metal C for Cortex-M."""

__version__ = "0.1.0"

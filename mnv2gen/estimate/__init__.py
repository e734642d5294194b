"""`mnv2gen estimate`: arena, flash and instructions before buying hardware.

configs (what to estimate) -> standin (model-free graphs) -> memory (plans, constants)
-> features + calibration (instruction and code-size models) / codesize (measured code)
/ measure (QEMU) -> catalogue (which parts fit) -> run (the report) -> table, html
(charts, svg), png.
"""

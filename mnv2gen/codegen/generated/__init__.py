"""The `generated` kernel backend: per-layer specialised C kernels (see templates/runtime/
mnv2_gen_kernels.h), their offline weight layouts and the band steps that call them."""

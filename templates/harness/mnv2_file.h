/*
 * mnv2_file.h - read a whole file from the host: semihosting on Cortex-M (QEMU with
 * -semihosting-config enable=on,target=native), stdio on the host.
 */
#ifndef MNV2_FILE_H
#define MNV2_FILE_H

#include <stdint.h>

/* Read exactly `bytes` bytes of the file at `path` into `buffer`; return 0, or -1 on error. */
int32_t mnv2_read_file(const char *path, void *buffer, int32_t bytes);

#endif /* MNV2_FILE_H */

/*
 * mnv2_file.c - see mnv2_file.h. The Cortex-M path talks to the debugger/QEMU through the
 * Arm semihosting interface directly (SYS_OPEN, SYS_READ, SYS_CLOSE), so it needs no
 * heap and no FILE buffers: the harness must fit next to the model in small RAMs.
 */
#include "mnv2_file.h"

#if defined(__arm__)
#include <string.h>

#define SYS_OPEN 0x01
#define SYS_CLOSE 0x02
#define SYS_READ 0x06
#define MODE_READ_BINARY 1

static int32_t semihost(int32_t operation, void *argument)
{
    register int32_t r0 __asm__("r0") = operation;
    register void *r1 __asm__("r1") = argument;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

int32_t mnv2_read_file(const char *path, void *buffer, int32_t bytes)
{
    int32_t open_args[3] = {(int32_t)(uintptr_t)path, MODE_READ_BINARY, (int32_t)strlen(path)};
    const int32_t handle = semihost(SYS_OPEN, open_args);
    int32_t read_args[3];
    int32_t not_read;
    if (handle < 0)
    {
        return -1;
    }
    read_args[0] = handle;
    read_args[1] = (int32_t)(uintptr_t)buffer;
    read_args[2] = bytes;
    not_read = semihost(SYS_READ, read_args);
    semihost(SYS_CLOSE, &read_args[0]);
    return not_read == 0 ? 0 : -1;
}

#else
#include <stdio.h>

int32_t mnv2_read_file(const char *path, void *buffer, int32_t bytes)
{
    FILE *file = fopen(path, "rb");
    size_t got;
    if (file == NULL)
    {
        return -1;
    }
    got = fread(buffer, 1, (size_t)bytes, file);
    fclose(file);
    return got == (size_t)bytes ? 0 : -1;
}
#endif

/*
 * mnv2_host.c: the harness API for native host builds. There is no instruction counter
 * on the host (wall-clock time would not be comparable with QEMU's counts) and no stack
 * measurement: both return 0.
 */
#include <stdint.h>

#include "mnv2_harness.h"

void mnv2_counter_start(void)
{
}

uint64_t mnv2_counter_stop(void)
{
    return 0;
}

uint64_t mnv2_counter_read(void)
{
    return 0;
}

size_t mnv2_stack_peak_bytes(void)
{
    return 0;
}

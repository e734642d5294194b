/*
 * mnv2_harness.h: the run-time API of the mnv2gen test harness.
 *
 * Cortex-M targets (run under QEMU): the harness supplies the vector table, the reset
 * handler, semihosting I/O (printf goes to QEMU's stdout, the value returned by main()
 * becomes QEMU's exit status), a fault handler and the functions below. Host builds link
 * only the functions below (as stubs). printf is newlib-nano's: no %llu, no floating point.
 *
 * Faults: any fault or unexpected exception writes one line to the semihosting console
 * (QEMU's stderr),
 *   mnv2: HardFault IPSR=0x00000003 CFSR=0x... HFSR=0x... MMFAR=0x... BFAR=0x... PC=0x... LR=0x...
 * (PC/LR as stacked by the faulting code; meaningless after a stack overflow) and exits
 * with MNV2_FAULT_EXIT_CODE, a status no test program should return, even before
 * main(). A fault inside the handler itself makes QEMU abort ("Lockup").
 */
#ifndef MNV2_HARNESS_H
#define MNV2_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exit status of a run that ended in a fault (0x7F). */
#define MNV2_FAULT_EXIT_CODE 127

/*
 * Start counting. Restarts the count if it is already running.
 * Uses SysTick (24-bit, processor clock) and counts its wraps in the SysTick interrupt, so
 * interrupts must stay enabled between start and stop.
 */
void mnv2_counter_start(void);

/*
 * Stop counting and return the number of instructions executed since mnv2_counter_start().
 * Under QEMU with -icount shift=0 every instruction advances virtual time by 1 ns, so the
 * count is SysTick ticks x (1e9 / SysTick Hz): exact to one tick (40 instructions on the
 * MPS2 boards), identical run to run. These are instruction counts, not cycles.
 * Host builds have no such counter and return 0.
 */
uint64_t mnv2_counter_stop(void);

/*
 * Return the instructions executed since mnv2_counter_start() without stopping the count
 * (for per-step profiles). Host builds return 0.
 */
uint64_t mnv2_counter_read(void);

/*
 * Return the most stack (bytes) used since reset: the reset handler paints the stack with a
 * pattern and this finds the deepest byte changed. Host builds return 0.
 * Stack overflow: the Cortex-M55 (Armv8-M MSPLIM) faults with CFSR.STKOF; the Armv7-M
 * cores cannot detect it and corrupt the heap and .bss below the stack.
 */
size_t mnv2_stack_peak_bytes(void);

#ifdef __cplusplus
}
#endif

#endif /* MNV2_HARNESS_H */

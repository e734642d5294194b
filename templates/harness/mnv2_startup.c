/*
 * mnv2_startup.c: vector table, reset handler and heap for the mnv2gen QEMU harness.
 * Written for the Armv6-M / Armv7-M / Armv8-M exception model (on Armv6-M the
 * MemManage/BusFault/UsageFault/SecureFault/DebugMon slots are reserved and never taken);
 * needs the symbols defined by the harness linker script (link.ld.j2).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include "mnv2_harness.h"

extern uint32_t __data_load_start[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __stack_bottom[], __stack_top[];
extern char __heap_start[], __heap_end[];
extern void (*__preinit_array_start[])(void), (*__preinit_array_end[])(void);
extern void (*__init_array_start[])(void), (*__init_array_end[])(void);

extern int main(void);
extern void initialise_monitor_handles(void);

void mnv2_reset_handler(void);
/* Defined (as weak aliases of the fault reporter) in mnv2_fault.c. */
void NMI_Handler(void);
void HardFault_Handler(void);
void MemManage_Handler(void);
void BusFault_Handler(void);
void UsageFault_Handler(void);
void SecureFault_Handler(void);
void SVC_Handler(void);
void DebugMon_Handler(void);
void PendSV_Handler(void);
void SysTick_Handler(void);

typedef void (*mnv2_vector_t)(void);

/* The 16 system exceptions; the harness enables no external interrupt. */
__attribute__((section(".vectors"), used))
const mnv2_vector_t mnv2_vectors[16] = {
    (mnv2_vector_t)__stack_top,
    mnv2_reset_handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    SecureFault_Handler, /* reserved before Armv8-M */
    0, 0, 0,
    SVC_Handler,
    DebugMon_Handler,
    0,
    PendSV_Handler,
    SysTick_Handler,
};

#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

#define STACK_PAINT 0xA5u

/* Fill the unused stack with a pattern so mnv2_stack_peak_bytes() can find the deepest
 * point ever reached; stays 64 bytes clear of the live frame. */
static void mnv2_paint_stack(void)
{
    char *sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    if (sp - 64 > (char *)__stack_bottom) {
        memset(__stack_bottom, STACK_PAINT, (size_t)(sp - 64 - (char *)__stack_bottom));
    }
}

size_t mnv2_stack_peak_bytes(void)
{
    const unsigned char *p = (const unsigned char *)__stack_bottom;
    while (p < (const unsigned char *)__stack_top && *p == STACK_PAINT) {
        ++p;
    }
    return (size_t)((const unsigned char *)__stack_top - p);
}

__attribute__((noreturn)) void mnv2_reset_handler(void)
{
    /* The FPU and MVE share the CP10/CP11 enables; they must be on before any compiled
     * code (e.g. a vectorised copy loop) touches them. */
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    SCB_CPACR |= 0xFu << 20;
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
    /* Armv8-M checks the stack limit in hardware: an overflow faults (CFSR.STKOF) instead
     * of silently corrupting the heap and .bss below the stack. */
    __asm volatile("msr msplim, %0" : : "r"(__stack_bottom) : "memory");
#endif
#if !defined(__ARM_ARCH_6M__)
    /* On boards that boot from an alias (STM32 flash at 0x0) point VTOR at the real table.
     * The Cortex-M0 has no VTOR: its table must be (and on the nRF51 is) at address 0. */
    SCB_VTOR = (uint32_t)(uintptr_t)mnv2_vectors;
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif

    mnv2_paint_stack();
    memcpy(__data_start, __data_load_start, (size_t)((char *)__data_end - (char *)__data_start));
    memset(__bss_start, 0, (size_t)((char *)__bss_end - (char *)__bss_start));
    for (void (**f)(void) = __preinit_array_start; f < __preinit_array_end; ++f) {
        (*f)();
    }
    for (void (**f)(void) = __init_array_start; f < __init_array_end; ++f) {
        (*f)();
    }
    initialise_monitor_handles();
    exit(main());
}

/* newlib's stdio allocates its buffers with malloc: serve them from the fixed .heap
 * section, so every byte of RAM the harness uses is placed (and checked) by the linker. */
void *_sbrk(ptrdiff_t increment)
{
    static char *brk = __heap_start;
    if (increment > __heap_end - brk || increment < __heap_start - brk) {
        errno = ENOMEM;
        return (void *)-1;
    }
    char *previous = brk;
    brk += increment;
    return previous;
}

/*
 * startup.c - a firmware's own startup code, written as STM32CubeMX projects have it
 * (symbols _sidata/_sdata/_edata/_sbss/_ebss/_estack of a CubeMX linker script, a
 * g_pfnVectors table in .isr_vector, _sbrk from _end up to the reserved stack): the test
 * links the generated libraries into it instead of mnv2gen's harness. Semihosting
 * (newlib rdimon) prints and exits under QEMU.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[], _estack[];
extern char _end[], _Min_Stack_Size[];
extern int main(void);
extern void initialise_monitor_handles(void);
extern void _exit(int status);

void Reset_Handler(void);
void Fault_Handler(void);

__attribute__((section(".isr_vector"), used))
const uintptr_t g_pfnVectors[16] = {
    (uintptr_t)_estack, (uintptr_t)Reset_Handler, (uintptr_t)Fault_Handler,
    (uintptr_t)Fault_Handler, (uintptr_t)Fault_Handler, (uintptr_t)Fault_Handler,
    (uintptr_t)Fault_Handler, 0, 0, 0, 0, (uintptr_t)Fault_Handler, (uintptr_t)Fault_Handler,
    0, (uintptr_t)Fault_Handler, (uintptr_t)Fault_Handler,
};

void Fault_Handler(void)
{
    _exit(126);
}

void Reset_Handler(void)
{
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: enable the FPU */
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
    memcpy(_sdata, _sidata, (size_t)((char *)_edata - (char *)_sdata));
    memset(_sbss, 0, (size_t)((char *)_ebss - (char *)_sbss));
    initialise_monitor_handles();
    exit(main());
}

void *_sbrk(ptrdiff_t increment)
{
    static char *brk = _end;
    char *limit = (char *)_estack - (size_t)_Min_Stack_Size;
    char *previous = brk;
    if (increment > limit - brk)
    {
        errno = ENOMEM;
        return (void *)-1;
    }
    brk += increment;
    return previous;
}

/*
 * startup.c - the smallest startup an STM32F405 (Cortex-M4F) needs to run main():
 * a vector table, a reset handler that enables the FPU, copies .data, zeroes .bss and
 * calls main(), and a fault handler that reports and stops. No CMSIS, no vendor HAL.
 * printf and exit() go to the debugger/QEMU through semihosting (newlib's librdimon).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern uint32_t __stack_top[];
extern int main(void);
extern void initialise_monitor_handles(void);

void reset_handler(void);
void fault_handler(void);

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)

/* Initial stack pointer, reset, NMI, HardFault, MemManage, BusFault, UsageFault. */
__attribute__((section(".vectors"), used)) const uintptr_t vectors[7] = {
    (uintptr_t)__stack_top,   (uintptr_t)reset_handler,  (uintptr_t)fault_handler,
    (uintptr_t)fault_handler, (uintptr_t)fault_handler, (uintptr_t)fault_handler,
    (uintptr_t)fault_handler,
};

void reset_handler(void)
{
    SCB_CPACR |= 0xFu << 20; /* CP10/CP11 full access: the FPU, used by the hard-float ABI */
    __asm volatile("dsb\n\tisb" ::: "memory");
    SCB_VTOR = (uint32_t)(uintptr_t)vectors; /* the chip boots from the flash alias at 0 */
    memcpy(__data_start, __data_load, (size_t)((char *)__data_end - (char *)__data_start));
    memset(__bss_start, 0, (size_t)((char *)__bss_end - (char *)__bss_start));
    initialise_monitor_handles();
    exit(main());
}

void fault_handler(void)
{
    printf("fault: CFSR=0x%08lx\n", (unsigned long)*(volatile uint32_t *)0xE000ED28u);
    exit(126);
}

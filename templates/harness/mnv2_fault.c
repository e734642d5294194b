/*
 * mnv2_fault.c: report a fault through semihosting and exit with MNV2_FAULT_EXIT_CODE.
 * Prints with SYS_WRITE0 rather than stdio: the fault may have hit inside printf or
 * malloc, whose state is then not to be trusted.
 * Armv6-M (Cortex-M0/M0+) has only HardFault and no fault status registers (CFSR, HFSR,
 * MMFAR, BFAR do not exist there), so its report gives the exception, PC and LR only.
 */
#include <stdint.h>

#include "mnv2_harness.h"

#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t *)0xE000ED2Cu)
#define SCB_MMFAR (*(volatile uint32_t *)0xE000ED34u)
#define SCB_BFAR (*(volatile uint32_t *)0xE000ED38u)

enum { SYS_WRITE0 = 0x04, SYS_EXIT_EXTENDED = 0x20, ADP_STOPPED_APPLICATION_EXIT = 0x20026 };

static uint32_t semihost_call(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

/* SYS_EXIT_EXTENDED directly, not newlib's _exit(): before initialise_monitor_handles()
 * has probed the debugger's features, _exit() reports every status as 0. */
__attribute__((noreturn)) static void semihost_exit(uint32_t status)
{
    const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, status};
    for (;;) {
        semihost_call(SYS_EXIT_EXTENDED, block);
    }
}

static char *put_text(char *out, const char *text)
{
    while (*text) {
        *out++ = *text++;
    }
    return out;
}

static char *put_hex(char *out, const char *label, uint32_t value)
{
    out = put_text(out, label);
    out = put_text(out, "0x");
    for (int shift = 28; shift >= 0; shift -= 4) {
        *out++ = "0123456789ABCDEF"[(value >> shift) & 0xFu];
    }
    return out;
}

static const char *exception_name(uint32_t number)
{
    switch (number) {
    case 2: return "NMI";
    case 3: return "HardFault";
    case 4: return "MemManage";
    case 5: return "BusFault";
    case 6: return "UsageFault";
    case 7: return "SecureFault";
    default: return "unexpected exception";
    }
}

/* frame: the stacked r0-r3, r12, lr, pc, xpsr of the faulting code. */
__attribute__((noreturn, used)) void mnv2_fault_report(const uint32_t *frame, uint32_t ipsr)
{
    char line[192];
    char *out = put_text(line, "mnv2: ");
    uint32_t number = ipsr & 0x1FFu;
    out = put_text(out, exception_name(number));
    out = put_hex(out, " IPSR=", number);
#if defined(__ARM_ARCH_6M__)
    out = put_text(out, " (Armv6-M: no fault status registers)");
#else
    out = put_hex(out, " CFSR=", SCB_CFSR);
    out = put_hex(out, " HFSR=", SCB_HFSR);
    out = put_hex(out, " MMFAR=", SCB_MMFAR);
    out = put_hex(out, " BFAR=", SCB_BFAR);
#endif
    out = put_hex(out, " PC=", frame[6]);
    out = put_hex(out, " LR=", frame[5]);
    out = put_text(out, "\n");
    *out = '\0';
    semihost_call(SYS_WRITE0, line);
    semihost_exit(MNV2_FAULT_EXIT_CODE);
}

/* The report runs on its own small stack: a fault caused by a stack overflow leaves
 * none to spare. */
#define FAULT_STACK_BYTES 512
#define STRINGIFY(x) #x
#define STR(x) STRINGIFY(x)
uint64_t mnv2_fault_stack[FAULT_STACK_BYTES / 8];

/* EXC_RETURN bit 2 tells which stack the faulting code was using. */
#if defined(__ARM_ARCH_6M__)
/* Thumb-1 only: no IT blocks, no movw/movt, tst takes registers; the literal pool holds
 * the addresses (mnv2_fault_report may be out of a 16-bit branch's reach). */
__attribute__((naked)) void mnv2_fault_entry(void)
{
    __asm volatile(
        ".syntax unified\n\t"
        "movs r0, #4\n\t"
        "mov r1, lr\n\t"
        "tst r0, r1\n\t"
        "bne 1f\n\t"
        "mrs r0, msp\n\t"
        "b 2f\n"
        "1:\n\t"
        "mrs r0, psp\n"
        "2:\n\t"
        "mrs r1, ipsr\n\t"
        "ldr r2, =mnv2_fault_stack + " STR(FAULT_STACK_BYTES) "\n\t"
        "mov sp, r2\n\t"
        "ldr r2, =mnv2_fault_report\n\t"
        "bx r2\n\t"
        ".ltorg\n\t");
}
#else
__attribute__((naked)) void mnv2_fault_entry(void)
{
    __asm volatile(
        "tst lr, #4\n\t"
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "mrs r1, ipsr\n\t"
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
        "movs r2, #0\n\t"
        "msr msplim, r2\n\t"
#endif
        "movw r2, #:lower16:mnv2_fault_stack + " STR(FAULT_STACK_BYTES) "\n\t"
        "movt r2, #:upper16:mnv2_fault_stack + " STR(FAULT_STACK_BYTES) "\n\t"
        "mov sp, r2\n\t"
        "b mnv2_fault_report\n\t");
}
#endif

/* Every exception the harness does not expect ends the run with a report. */
void NMI_Handler(void) __attribute__((weak, alias("mnv2_fault_entry")));
void HardFault_Handler(void) __attribute__((weak, alias("mnv2_fault_entry")));
void MemManage_Handler(void) __attribute__((weak, alias("mnv2_fault_entry")));
void BusFault_Handler(void) __attribute__((weak, alias("mnv2_fault_entry")));
void UsageFault_Handler(void) __attribute__((weak, alias("mnv2_fault_entry")));
void SecureFault_Handler(void) __attribute__((weak, alias("mnv2_fault_entry")));
void SVC_Handler(void) __attribute__((weak, alias("mnv2_fault_entry")));
void DebugMon_Handler(void) __attribute__((weak, alias("mnv2_fault_entry")));
void PendSV_Handler(void) __attribute__((weak, alias("mnv2_fault_entry")));
void SysTick_Handler(void) __attribute__((weak, alias("mnv2_fault_entry")));

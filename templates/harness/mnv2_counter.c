/*
 * mnv2_counter.c: instruction counter from SysTick wraps (Cortex-M targets under QEMU).
 * MNV2_INSNS_PER_TICK_NUM / MNV2_INSNS_PER_TICK_DEN come from the target file: with
 * -icount shift=0 one instruction is 1 ns, so the ratio is 1e9 / SysTick Hz.
 */
#include <stdint.h>

#include "mnv2_harness.h"

#ifndef MNV2_INSNS_PER_TICK_NUM
#error "MNV2_INSNS_PER_TICK_NUM/DEN must be defined by the build (see the target file)"
#endif

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)

#define SYST_CSR_CPUCLK 0x4u
#define SYST_CSR_ENABLE_TICKINT_CPUCLK 0x7u
#define ICSR_PENDSTSET (1u << 26)
#define ICSR_PENDSTCLR (1u << 25)
#define RELOAD 0xFFFFFFu

static volatile uint32_t wraps;

void SysTick_Handler(void)
{
    wraps++;
}

void mnv2_counter_start(void)
{
    SYST_CSR = SYST_CSR_CPUCLK;
    SCB_ICSR = ICSR_PENDSTCLR;
    wraps = 0;
    SYST_RVR = RELOAD;
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_ENABLE_TICKINT_CPUCLK;
}

uint64_t mnv2_counter_stop(void)
{
    __asm volatile("cpsid i" ::: "memory");
    SYST_CSR = SYST_CSR_CPUCLK;
    uint32_t current = SYST_CVR;
    /* The counter is frozen: a wrap still pending is one not yet counted by the handler. */
    uint64_t count = wraps + ((SCB_ICSR & ICSR_PENDSTSET) ? 1u : 0u);
    SCB_ICSR = ICSR_PENDSTCLR;
    __asm volatile("cpsie i" ::: "memory");
    /* The write of 0 in start makes the first tick a reload to RELOAD, so after k ticks
     * the counter reads (2^24 - k) mod 2^24 and the handler has run floor(k / 2^24) times. */
    uint64_t ticks = count * (RELOAD + 1ull) + ((RELOAD + 1u - current) & RELOAD);
    return ticks * MNV2_INSNS_PER_TICK_NUM / MNV2_INSNS_PER_TICK_DEN;
}

uint64_t mnv2_counter_read(void)
{
    __asm volatile("cpsid i" ::: "memory");
    uint32_t first = SYST_CVR;
    uint32_t pending = (SCB_ICSR & ICSR_PENDSTSET) ? 1u : 0u;
    uint32_t second = SYST_CVR;
    /* SysTick counts down: a larger second reading means it wrapped between the reads. */
    uint32_t current = first;
    if (second > first)
    {
        pending = 1u;
        current = second;
    }
    uint64_t count = wraps + pending;
    __asm volatile("cpsie i" ::: "memory");
    uint64_t ticks = count * (RELOAD + 1ull) + ((RELOAD + 1u - current) & RELOAD);
    return ticks * MNV2_INSNS_PER_TICK_NUM / MNV2_INSNS_PER_TICK_DEN;
}

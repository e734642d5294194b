/*
 * observe.c - the observability contract of a generated library (prefix cat_): the
 * application overrides the weak yield hook and the profiling hook, runs one inference
 * with cat_run on the input file argv[1], and prints
 *     "status <s> <failed step>", "yields <calls> <in order>", "profile <calls> <in order>",
 *     "step <k> <name> <bands> <yields seen>" per step and "out <hex bytes>".
 * Built with -DFAIL_AT=n (and -Wl,--wrap=cat_fused_band) the n-th fused band (from 1)
 * fails as a kernel that refuses its arguments would.
 */
#include <stdio.h>
#include <string.h>

#include "cat_fused.h"
#include "cat_model.h"
#include "mnv2_file.h"

static int32_t yields, yield_order = 1, last_step = -1, last_band = -1;
static int32_t seen[CAT_STEP_COUNT];

void cat_yield(int32_t step, int32_t band)
{
    const int next_band = step == last_step && band == last_band + 1;
    const int next_step = step > last_step && band == 0;
    if (!(next_band || next_step) || step >= CAT_STEP_COUNT || band >= cat_step_bands[step])
    {
        yield_order = 0;
    }
    if (step >= 0 && step < CAT_STEP_COUNT)
    {
        ++seen[step];
    }
    last_step = step;
    last_band = band;
    ++yields;
}

#ifdef CAT_PROFILE
static int32_t profiled, profile_order = 1;

void cat_profile_point(int32_t step)
{
    profile_order &= step == profiled;
    ++profiled;
}
#endif

#ifdef FAIL_AT
int32_t __real_cat_fused_band(const cat_fused_unit *unit, const cat_band *band, int8_t *arena);
int32_t __wrap_cat_fused_band(const cat_fused_unit *unit, const cat_band *band, int8_t *arena);

static int32_t fused_calls;

int32_t __wrap_cat_fused_band(const cat_fused_unit *unit, const cat_band *band, int8_t *arena)
{
    return ++fused_calls == FAIL_AT ? -1 : __real_cat_fused_band(unit, band, arena);
}
#endif

static cat_input_t input[CAT_INPUT_BYTES];
static cat_output_t output[CAT_OUTPUT_BYTES];

int main(int argc, char **argv)
{
    if (argc != 2 || mnv2_read_file(argv[1], input, CAT_INPUT_BYTES) != 0)
    {
        printf("usage: observe input.bin\n");
        return 2;
    }
    const int status = cat_run(input, output);
    printf("status %d %d\n", status, CAT_STATUS_FAILED_STEP(status));
    printf("yields %ld %ld\n", (long)yields, (long)yield_order);
#ifdef CAT_PROFILE
    printf("profile %ld %ld\n", (long)profiled, (long)profile_order);
#endif
    for (int32_t k = 0; k < CAT_STEP_COUNT; ++k)
    {
        printf("step %ld %s %u %ld\n", (long)k, cat_step_names[k], (unsigned)cat_step_bands[k],
               (long)seen[k]);
    }
    printf("out ");
    for (int i = 0; i < CAT_OUTPUT_BYTES; ++i)
    {
        printf("%02x", (unsigned)(uint8_t)output[i]);
    }
    printf("\n");
    return 0;
}

/*
 * main.c - a tiny firmware around the library mnv2gen generates: fill the input in the
 * arena with a test pattern, run one inference, print the output and its best class.
 * On a real board, write a camera frame to mnv2_input() instead.
 */
#include <stdint.h>
#include <stdio.h>

#include "mnv2_model.h"

int main(void)
{
    mnv2_input_t *input = mnv2_input();
    for (int32_t i = 0; i < MNV2_INPUT_BYTES; ++i)
    {
        input[i] = (mnv2_input_t)((i * 7) % 251 - 125); /* the pattern test_examples checks */
    }
    const int status = mnv2_invoke();
    if (status != MNV2_STATUS_OK)
    {
        printf("mnv2_invoke failed with status %d\n", status);
        return 1;
    }
    const int8_t *output = mnv2_output();
    int32_t best = 0;
    printf("output:");
    for (int32_t i = 0; i < MNV2_OUTPUT_ELEMENTS; ++i)
    {
        printf(" %d", output[i]);
        if (output[i] > output[best])
        {
            best = i;
        }
    }
    printf("\nbest class: %ld (arena %d bytes)\n", (long)best, MNV2_ARENA_BYTES);
    return 0;
}

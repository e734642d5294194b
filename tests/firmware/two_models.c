/*
 * two_models.c - an application using two generated libraries, cat_ and dog_, in one
 * program: each model runs on two inputs (the first through cat_input()/cat_invoke(), the
 * second through cat_run()) and prints "<model> <input> <status> <hex bytes>". In the
 * runtime arena mode the cat_set_arena contract is checked first (too small, misaligned,
 * NULL), and the accepted buffer is filled with a pattern. Paths come from inputs.h,
 * written by the test. Exit status: the number of failed checks.
 */
#include <stdio.h>
#include <string.h>

#include "cat_model.h"
#include "dog_model.h"
#include "inputs.h"
#include "mnv2_file.h"

static int failures;

#define CHECK(condition)                                                  \
    do                                                                    \
    {                                                                     \
        if (!(condition))                                                 \
        {                                                                 \
            printf("CHECK FAILED line %d: %s\n", __LINE__, #condition); \
            ++failures;                                                   \
        }                                                                 \
    } while (0)

#if CAT_ARENA_MODE == CAT_ARENA_MODE_RUNTIME
/* One spare 16-byte slot in front, so the accepted arena is not the array's start. */
static int8_t cat_buffer[CAT_ARENA_BYTES + 16] __attribute__((aligned(16)));
#elif CAT_ARENA_MODE == CAT_ARENA_MODE_EXTERNAL
int8_t cat_arena[CAT_ARENA_BYTES] __attribute__((aligned(16)));
#endif
#if DOG_ARENA_MODE == DOG_ARENA_MODE_EXTERNAL
int8_t dog_arena[DOG_ARENA_BYTES] __attribute__((aligned(16)));
#endif

static cat_input_t cat_in[CAT_INPUT_BYTES];
static dog_input_t dog_in[DOG_INPUT_BYTES];
static int8_t cat_out[CAT_OUTPUT_BYTES];
static int8_t dog_out[DOG_OUTPUT_BYTES];

static void print_result(const char *model, int index, int status, const int8_t *bytes, int count)
{
    printf("%s %d %d ", model, index, status);
    for (int i = 0; i < count; ++i)
    {
        printf("%02x", (unsigned)(uint8_t)bytes[i]);
    }
    printf("\n");
}

static void check_runtime_arena(void)
{
#if CAT_ARENA_MODE == CAT_ARENA_MODE_RUNTIME
    CHECK(cat_input() == NULL && cat_output() == NULL);
    CHECK(cat_invoke() == CAT_STATUS_NO_ARENA);
    CHECK(cat_run(cat_in, cat_out) == CAT_STATUS_NO_ARENA);
    CHECK(cat_set_arena(cat_buffer + 16, CAT_ARENA_BYTES - 1) == CAT_STATUS_ARENA_TOO_SMALL);
    CHECK(cat_set_arena(cat_buffer + 8, CAT_ARENA_BYTES) == CAT_STATUS_ARENA_MISALIGNED);
    CHECK(cat_set_arena(cat_buffer + 1, CAT_ARENA_BYTES + 15) == CAT_STATUS_ARENA_MISALIGNED);
    CHECK(cat_invoke() == CAT_STATUS_NO_ARENA); /* refused buffers are not taken */
    CHECK(cat_set_arena(cat_buffer, CAT_ARENA_BYTES) == CAT_STATUS_OK);
    CHECK(cat_set_arena(NULL, 0) == CAT_STATUS_OK); /* taken back */
    CHECK(cat_invoke() == CAT_STATUS_NO_ARENA && cat_input() == NULL);
    memset(cat_buffer, 0xA5, sizeof cat_buffer);
    CHECK(cat_set_arena(cat_buffer + 16, CAT_ARENA_BYTES) == CAT_STATUS_OK);
    CHECK((const int8_t *)(void *)cat_input() >= cat_buffer + 16
          && (const int8_t *)(void *)cat_input() + CAT_INPUT_BYTES <= cat_buffer + 16 + CAT_ARENA_BYTES);
#endif
}

int main(void)
{
    check_runtime_arena();
    CHECK(mnv2_read_file(CAT_INPUT_0, cat_input(), CAT_INPUT_BYTES) == 0);
    CHECK(mnv2_read_file(DOG_INPUT_0, dog_input(), DOG_INPUT_BYTES) == 0);
    /* interleaved: neither model touches the other's arena */
    const int cat_status = cat_invoke();
    const int dog_status = dog_invoke();
    print_result("cat", 0, cat_status, cat_output(), CAT_OUTPUT_BYTES);
    print_result("dog", 0, dog_status, dog_output(), DOG_OUTPUT_BYTES);
    CHECK(mnv2_read_file(CAT_INPUT_1, cat_in, CAT_INPUT_BYTES) == 0);
    CHECK(mnv2_read_file(DOG_INPUT_1, dog_in, DOG_INPUT_BYTES) == 0);
    print_result("dog", 1, dog_run(dog_in, dog_out), dog_out, DOG_OUTPUT_BYTES);
    print_result("cat", 1, cat_run(cat_in, cat_out), cat_out, CAT_OUTPUT_BYTES);
    printf("checks failed: %d\n", failures);
    return failures;
}

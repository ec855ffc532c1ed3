/* test_base64.c - util/base64: RFC 4648 vectors, whitespace, padding rules, bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "util/base64.h"
#include "util/util.h"

static void rfc4648_vectors_round_trip(void **state)
{
	(void)state;
	static const char *pairs[][2] = { { "", "" },          { "f", "Zg==" },         { "fo", "Zm8=" },
					  { "foo", "Zm9v" },   { "foob", "Zm9vYg==" },  { "fooba", "Zm9vYmE=" },
					  { "foobar", "Zm9vYmFy" } };
	for (size_t i = 0; i < ARRAY_SIZE(pairs); i++) {
		char *enc = kf_base64_encode(pairs[i][0], strlen(pairs[i][0]));
		assert_string_equal(enc, pairs[i][1]);
		free(enc);
		size_t n;
		unsigned char *dec = kf_base64_decode(pairs[i][1], strlen(pairs[i][1]), &n, NULL);
		assert_non_null(dec);
		assert_int_equal(n, strlen(pairs[i][0]));
		assert_memory_equal(dec, pairs[i][0], n);
		assert_int_equal(dec[n], 0);
		free(dec);
	}
}

static void decode_skips_whitespace_and_allows_missing_padding(void **state)
{
	(void)state;
	size_t n;
	unsigned char *d = kf_base64_decode(" Zm9v\nYmFy\r\n", 12, &n, NULL);
	assert_non_null(d);
	assert_int_equal(n, 6);
	assert_memory_equal(d, "foobar", 6);
	free(d);
	d = kf_base64_decode("Zm9vYg", 6, &n, NULL);
	assert_non_null(d);
	assert_int_equal(n, 4);
	free(d);
	/* all 256 byte values */
	unsigned char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	char *e = kf_base64_encode(all, sizeof all);
	d = kf_base64_decode(e, strlen(e), &n, NULL);
	assert_int_equal(n, 256);
	assert_memory_equal(d, all, 256);
	free(d);
	free(e);
}

static void decode_rejects_bad_input_with_position(void **state)
{
	(void)state;
	size_t bad = 99;
	assert_null(kf_base64_decode("Zm9v!mFy", 8, NULL, &bad));
	assert_int_equal(bad, 4);
	assert_null(kf_base64_decode("Zm9vY", 5, NULL, &bad));     /* dangling sextet */
	assert_null(kf_base64_decode("Zg==Zg==", 8, NULL, &bad));  /* data after padding */
	assert_null(kf_base64_decode("Zg===", 5, NULL, &bad));     /* too much padding */
	assert_null(kf_base64_decode("Zm9v-_", 6, NULL, &bad));    /* URL alphabet is not standard */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rfc4648_vectors_round_trip),
		cmocka_unit_test(decode_skips_whitespace_and_allows_missing_padding),
		cmocka_unit_test(decode_rejects_bad_input_with_position),
	};
	return cmocka_run_group_tests_name("base64", tests, NULL, NULL);
}

/* test_slow.h - how many times slower than native code this test run is (KF_TEST_SLOWDOWN, default 1):
 * ctest sets 10 for cross-built tests run under qemu-user, hack/valgrind-unit.sh 30. CPU-bound time limits,
 * and the patience of test clients waiting on work a server does under the same slowdown, scale with it;
 * waits on timers do not. */
#ifndef TEST_SLOW_H
#define TEST_SLOW_H

#include <stdint.h>
#include <stdlib.h>

static inline int64_t test_slowdown(void)
{
	const char *s = getenv("KF_TEST_SLOWDOWN");
	long v = s ? strtol(s, NULL, 10) : 1;
	return v > 1 ? v : 1;
}

#endif

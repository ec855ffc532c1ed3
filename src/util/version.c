/* version.c - see version.h. KF_VERSION and KF_GIT_VERSION come from CMake. */
#include "version.h"

const char *kf_version(void) { return KF_VERSION; }
const char *kf_git_version(void) { return KF_GIT_VERSION; }
const char *kf_user_agent(void)
{
#if defined(__x86_64__)
#define KF_ARCH "amd64"
#elif defined(__aarch64__)
#define KF_ARCH "arm64"
#else
#define KF_ARCH "unknown"
#endif
	return "kubefledged/" KF_VERSION " (linux/" KF_ARCH ") " KF_GIT_VERSION;
}

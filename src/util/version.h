/* version.h - the build's version strings. */
#ifndef KF_VERSION_H
#define KF_VERSION_H
const char *kf_version(void);     /* e.g. "0.1.0" */
const char *kf_git_version(void); /* `git describe` at configure time */
const char *kf_user_agent(void);  /* "kubefledged/0.1.0 (linux/amd64) <git>", sent to the API server */
#endif

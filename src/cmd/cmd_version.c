/* cmd_version.c - `kubefledged version`. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>

#include "cmds.h"
#include "util/version.h"

int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
	printf("kubefledged %s (%s)\n", kf_version(), kf_git_version());
	printf("libcurl %s, %s, jansson %s\n", cv->version, cv->ssl_version ? cv->ssl_version : "no TLS",
	       JANSSON_VERSION);
	return 0;
}

/* The memory floor of any C client of the API server built on Debian's libcurl (OpenSSL): three HTTPS GETs
 * of /version with the kubeconfig's client certificate, then its own peak RSS (VmHWM) and anonymous RSS
 * (RssAnon) in kB on stdout.
 * bench/controller.sh compares the controller's peak RSS with it; most of either is the shared libraries'
 * pages (libcrypto alone ~4 MiB), which no code of ours can shrink.
 *
 *   rss_floor URL CA_FILE CERT_FILE KEY_FILE */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

static size_t discard(void *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: rss_floor URL CA_FILE CERT_FILE KEY_FILE\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURL *c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, argv[1]);
	curl_easy_setopt(c, CURLOPT_CAINFO, argv[2]);
	curl_easy_setopt(c, CURLOPT_SSLCERT, argv[3]);
	curl_easy_setopt(c, CURLOPT_SSLKEY, argv[4]);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	for (int i = 0; i < 3; i++) {
		CURLcode rc = curl_easy_perform(c);
		if (rc != CURLE_OK) {
			fprintf(stderr, "rss_floor: GET %s: %s\n", argv[1], curl_easy_strerror(rc));
			return 1;
		}
	}
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long hwm = -1, anon = -1;
	while (f && fgets(line, sizeof line, f)) {
		if (!strncmp(line, "VmHWM:", 6))
			sscanf(line + 6, "%ld", &hwm);
		if (!strncmp(line, "RssAnon:", 8))
			sscanf(line + 8, "%ld", &anon);
	}
	if (f)
		fclose(f);
	curl_easy_cleanup(c);
	curl_global_cleanup();
	printf("%ld %ld\n", hwm, anon);
	return hwm < 0 || anon < 0;
}

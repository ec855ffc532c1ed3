/* cmd_cri.c - `kubefledged cri`: image operations on a node's container runtime, crictl-like.
 *
 *   kubefledged cri [--runtime-endpoint=unix:///run/containerd/containerd.sock] [--runtime=cri|docker]
 *                   [--timeout=2m] <version | images [-q] [IMAGE] | inspect IMAGE | pull IMAGE [--creds u:p]
 *                   | rmi IMAGE... | imagefsinfo>
 *
 * It replaces upstream's kubefledged-cri-client image (bash + crictl + docker CLI) in delete Jobs. The
 * image string arrives as argv and is checked against the reference grammar, so there is no shell to
 * inject into. `rmi` removes exactly the reference asked for (cri_rmi, cri_docker_remove), never the
 * other tags of a shared image; image IDs ("sha256:...", 64 hex) are refused like any invalid reference
 * (exit 2), since removing by ID removes the image with every tag. `rmi` and `pull` write a one-line result to the termination log
 * (default /dev/termination-log, if it exists and is writable), which the controller reads back from
 * the pod's termination message.
 *
 * Exit codes: 0 success, 1 failure, 2 usage error (bad flag, unknown command, invalid reference). */
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmds.h"
#include "cri.h"
#include "cri_docker.h"
#include "util/flags.h"
#include "util/imageref.h"
#include "util/log.h"
#include "util/util.h"

static char *f_endpoint, *f_image_endpoint, *f_runtime, *f_api, *f_creds, *f_auth, *f_server, *f_termlog, *f_output;
static int64_t f_timeout;
static int f_quiet, f_help, f_h, f_keep_in_use;

static struct flag cri_flags[] = {
	{ "runtime-endpoint", FLAG_STRING, &f_endpoint, CRI_DEFAULT_ENDPOINT,
	  "container runtime socket, unix:///path or /path (docker: unix:///var/run/docker.sock)" },
	{ "image-endpoint", FLAG_STRING, &f_image_endpoint, "",
	  "image service socket, if not the runtime endpoint (crictl compatible)" },
	{ "runtime", FLAG_STRING, &f_runtime, "",
	  "cri or docker; empty: docker when the endpoint is a docker.sock, else cri" },
	{ "cri-api", FLAG_STRING, &f_api, "auto",
	  "CRI API version: auto (runtime.v1, then runtime.v1alpha2 if v1 is unimplemented), v1 or v1alpha2" },
	{ "timeout", FLAG_DURATION, &f_timeout, "2m", "timeout of each call to the runtime (pulls can be long)" },
	{ "creds", FLAG_STRING, &f_creds, "", "pull: registry credentials USER:PASSWORD" },
	{ "auth", FLAG_STRING, &f_auth, "", "pull: registry credentials as base64(USER:PASSWORD)" },
	{ "server-address", FLAG_STRING, &f_server, "", "pull: registry the credentials are for" },
	{ "q", FLAG_BOOL, &f_quiet, "false", "images: print image references only" },
	{ "output", FLAG_STRING, &f_output, "", "images: json for JSON output (inspect always prints JSON)" },
	{ "keep-in-use", FLAG_BOOL, &f_keep_in_use, "true",
	  "rmi: keep an image that a container on the node uses (running or exited) or that the runtime pins, "
	  "and say so (\"kept IMAGE: ...\", exit 0)" },
	{ "termination-log", FLAG_STRING, &f_termlog, "/dev/termination-log",
	  "rmi, pull: also write the one-line result here when the file exists and is writable" },
	{ "help", FLAG_BOOL, &f_help, "false", "show this help" },
	{ "h", FLAG_BOOL, &f_h, "false", "show this help" },
	{ NULL },
};

static const char summary[] =
	"Image operations on a node's container runtime (CRI over gRPC, or the Docker Engine API).\n\n"
	"Commands:\n"
	"  version              runtime name and versions\n"
	"  images [-q] [IMAGE]  list images (IMAGE TAG DIGEST IMAGE-ID SIZE); -q: references only\n"
	"  inspect IMAGE        status of one image, as JSON\n"
	"  pull IMAGE           pull an image (--creds USER:PASSWORD for a private registry)\n"
	"  rmi IMAGE...         remove exactly these references; other tags of the same image stay\n"
	"                       (a digest removes only that digest; image IDs are refused)\n"
	"  imagefsinfo          image filesystem usage (CRI only)\n\n"
	"Exit status: 0 success, 1 failure, 2 usage error.";

/* One of the two clients. */
struct rt {
	struct cri_client *cri;
	struct cri_docker *dk;
};

static void print_escaped_line(FILE *out, const char *s)
{
	for (; *s; s++)
		fputc(*s == '\n' || *s == '\r' ? ' ' : *s, out);
	fputc('\n', out);
}

/* The kubelet keeps at most 4096 bytes of a termination message; one line is what the controller reads. */
static void write_termination_log(const char *line)
{
	if (!f_termlog || !*f_termlog || access(f_termlog, W_OK) < 0)
		return;
	int fd = open(f_termlog, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return;
	struct strbuf sb = STRBUF_INIT;
	for (const char *p = line; *p && sb.len < 4000; p++)
		sb_addc(&sb, *p == '\n' || *p == '\r' ? ' ' : *p);
	sb_addc(&sb, '\n');
	if (write(fd, sb.buf, sb.len) < 0)
		LOG_WARN("cannot write %s", f_termlog);
	close(fd);
	sb_release(&sb);
}

/* crictl's sizes (go-units HumanSizeWithPrecision(size, 3)): decimal units. */
static void human_size(uint64_t n, char *buf, size_t len)
{
	static const char *u[] = { "B", "kB", "MB", "GB", "TB", "PB" };
	double v = (double)n;
	size_t i = 0;
	while (v >= 1000 && i + 1 < ARRAY_SIZE(u)) {
		v /= 1000;
		i++;
	}
	snprintf(buf, len, "%.3g%s", v, u[i]);
}

static const char *short_id(const char *id, char *buf, size_t len)
{
	const char *h = strchr(id, ':') ? strchr(id, ':') + 1 : id;
	snprintf(buf, len, "%.13s", h);
	return buf;
}

static json_t *image_json(const struct cri_image *img)
{
	json_t *tags = json_array(), *digests = json_array();
	for (size_t i = 0; i < img->n_repo_tags; i++)
		json_array_append_new(tags, json_string(img->repo_tags[i]));
	for (size_t i = 0; i < img->n_repo_digests; i++)
		json_array_append_new(digests, json_string(img->repo_digests[i]));
	char size[32];
	snprintf(size, sizeof size, "%llu", (unsigned long long)img->size);
	return json_pack("{s:s, s:o, s:o, s:s, s:b}", "id", img->id ? img->id : "", "repoTags", tags,
			 "repoDigests", digests, "size", size, "pinned", img->pinned);
}

static void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	puts(s);
	free(s);
	json_decref(j);
}

/* The repository part of "repo:tag" / "repo@digest" (a ':' after the last '/'). */
static void split_ref(const char *ref, struct strbuf *repo, struct strbuf *tag)
{
	const char *at = strchr(ref, '@');
	size_t n = at ? (size_t)(at - ref) : strlen(ref);
	const char *slash = NULL, *colon = NULL;
	for (const char *p = ref; p < ref + n; p++)
		if (*p == '/')
			slash = p;
	for (const char *p = slash ? slash : ref; p < ref + n; p++)
		if (*p == ':')
			colon = p;
	sb_add(repo, ref, colon ? (size_t)(colon - ref) : n);
	if (colon)
		sb_add(tag, colon + 1, n - (size_t)(colon + 1 - ref));
	else
		sb_adds(tag, "<none>");
}

static int do_images(struct rt *r, const char *filter, struct strbuf *err)
{
	struct cri_image_list l = { 0 };
	int rc = r->dk ? cri_docker_list_images(r->dk, &l, err) : cri_list_images(r->cri, filter, &l, err);
	if (rc)
		return rc;
	if (f_output && !strcmp(f_output, "json")) {
		json_t *arr = json_array();
		for (size_t i = 0; i < l.n; i++)
			json_array_append_new(arr, image_json(&l.items[i]));
		print_json(json_pack("{s:o}", "images", arr));
		goto out;
	}
	if (!f_quiet)
		printf("%-50s %-20s %-15s %-15s %s\n", "IMAGE", "TAG", "DIGEST", "IMAGE ID", "SIZE");
	for (size_t i = 0; i < l.n; i++) {
		const struct cri_image *img = &l.items[i];
		char id[16], dg[16] = "<none>", size[32];
		short_id(img->id, id, sizeof id);
		human_size(img->size, size, sizeof size);
		if (img->n_repo_digests && strchr(img->repo_digests[0], '@'))
			short_id(strchr(img->repo_digests[0], '@') + 1, dg, sizeof dg);
		size_t nrefs = img->n_repo_tags ? img->n_repo_tags : img->n_repo_digests;
		char **refs = img->n_repo_tags ? img->repo_tags : img->repo_digests;
		if (!nrefs) {
			if (!f_quiet)
				printf("%-50s %-20s %-15s %-15s %s\n", "<none>", "<none>", dg, id, size);
			continue;
		}
		for (size_t k = 0; k < nrefs; k++) {
			if (f_quiet) {
				puts(refs[k]);
				continue;
			}
			struct strbuf repo = STRBUF_INIT, tag = STRBUF_INIT;
			split_ref(refs[k], &repo, &tag);
			printf("%-50s %-20s %-15s %-15s %s\n", repo.buf, tag.buf, dg, id, size);
			sb_release(&repo);
			sb_release(&tag);
		}
	}
out:
	cri_image_list_free(&l);
	return 0;
}

static int do_inspect(struct rt *r, const char *ref, struct strbuf *err)
{
	struct cri_image img;
	int present = 0;
	int rc = r->dk ? cri_docker_inspect(r->dk, ref, &img, &present, err) :
			 cri_image_status(r->cri, ref, &img, &present, err);
	if (rc)
		return rc;
	if (!present) {
		sb_addf(err, "image %s not present", ref);
		return CRI_NOT_FOUND;
	}
	print_json(json_pack("{s:o}", "status", image_json(&img)));
	cri_image_clear(&img);
	return 0;
}

static int do_pull(struct rt *r, const char *ref, struct strbuf *err)
{
	struct cri_auth auth = { 0 };
	char *user = NULL, *id = NULL;
	if (f_creds && *f_creds) {
		const char *colon = strchr(f_creds, ':');
		if (!colon) {
			sb_adds(err, "invalid --creds: want USER:PASSWORD");
			return CRI_EINVAL;
		}
		user = xstrndup(f_creds, (size_t)(colon - f_creds));
		auth.username = user;
		auth.password = colon + 1;
	}
	if (f_auth && *f_auth)
		auth.auth = f_auth;
	if (f_server && *f_server)
		auth.server_address = f_server;
	int rc = r->dk ? cri_docker_pull(r->dk, ref, &auth, &id, err) : cri_pull_image(r->cri, ref, &auth, &id, err);
	if (!rc) {
		struct strbuf line = STRBUF_INIT;
		sb_addf(&line, "pulled %s (%s)", ref, id ? id : "");
		puts(line.buf);
		write_termination_log(line.buf);
		sb_release(&line);
	}
	free(user);
	free(id);
	return rc;
}

static int do_version(struct rt *r, struct strbuf *err)
{
	struct cri_version v;
	int rc = r->dk ? cri_docker_version(r->dk, &v, err) : cri_version(r->cri, &v, err);
	if (rc)
		return rc;
	printf("Version:  %s\nRuntimeName:  %s\nRuntimeVersion:  %s\nRuntimeApiVersion:  %s\n", v.version,
	       v.runtime_name, v.runtime_version, v.runtime_api_version);
	if (r->cri)
		printf("CRIService:  %s\n", cri_client_api(r->cri));
	cri_version_clear(&v);
	return 0;
}

static int do_fsinfo(struct rt *r, struct strbuf *err)
{
	if (r->dk) {
		sb_adds(err, "imagefsinfo needs a CRI runtime (--runtime=cri)");
		return CRI_EINVAL;
	}
	struct cri_fs_info fi;
	int rc = cri_image_fs_info(r->cri, &fi, err);
	if (rc)
		return rc;
	json_t *arr = json_array();
	for (size_t i = 0; i < fi.n_image_fs; i++)
		json_array_append_new(arr, json_pack("{s:s, s:I, s:I, s:I}", "mountpoint", fi.image_fs[i].mountpoint,
						     "timestamp", (json_int_t)fi.image_fs[i].timestamp_ns, "usedBytes",
						     (json_int_t)fi.image_fs[i].used_bytes, "inodesUsed",
						     (json_int_t)fi.image_fs[i].inodes_used));
	print_json(json_pack("{s:o}", "imageFilesystems", arr));
	cri_fs_info_clear(&fi);
	return 0;
}

/* The delete guard of rmi: 1 when ref must stay (msg says why: "kept REF: used by ..." or "... pins it"),
 * 0 when it may go, or -1 with err. */
static int keep_guard(struct rt *r, const char *ref, struct strbuf *msg, struct strbuf *err)
{
	struct cri_image img = { 0 };
	struct cri_container_list cl = { 0 };
	struct strbuf canon = STRBUF_INIT, who = STRBUF_INIT;
	int present = 0, rc = r->dk ? cri_docker_inspect(r->dk, ref, &img, &present, err)
				   : cri_image_status(r->cri, ref, &img, &present, err);
	if (rc) {
		rc = -1;
		goto out;
	}
	if (!present)
		goto out;
	if (img.pinned) {
		sb_addf(msg, "kept %s: the runtime pins it", ref);
		rc = 1;
		goto out;
	}
	if ((r->dk ? cri_docker_list_containers(r->dk, &cl, err) : cri_list_containers(r->cri, &cl, err))) {
		rc = -1;
		goto out;
	}
	struct imageref ir;
	struct strbuf e = STRBUF_INIT;
	if (imageref_parse(ref, &ir, &e) == 0)
		imageref_canonical(&ir, &canon);
	sb_release(&e);
	if (cri_image_users(&cl, &img, canon.buf, &who)) {
		sb_addf(msg, "kept %s: used by %s", ref, who.buf);
		rc = 1;
		goto out;
	}
	/* dockerd refuses to untag the last reference of an image a stopped container uses: those pull Job
	 * containers (never restarted; the kubelet collects them later) go first */
	if (r->dk)
		cri_docker_remove_spent_pullers(r->dk, &cl, &img, canon.buf);
out:
	cri_image_clear(&img);
	cri_container_list_free(&cl);
	sb_release(&canon);
	sb_release(&who);
	return rc;
}

static int exit_code(int rc)
{
	return rc == 0 ? 0 : rc == CRI_EINVAL ? 2 : 1;
}

int cmd_cri(int argc, char **argv)
{
	struct strbuf err = STRBUF_INIT, msg = STRBUF_INIT;
	struct rt r = { 0 };
	int ret = 2, rc = 0;
	int npos = flags_parse(cri_flags, argc, argv, &err);
	if (npos < 0) {
		fprintf(stderr, "kubefledged cri: %s\n", err.buf);
		goto out;
	}
	if (f_help || f_h || npos == 0 || !strcmp(argv[0], "help")) {
		int asked = f_help || f_h || npos;
		flags_usage(asked ? stdout : stderr, "cri", summary, cri_flags);
		ret = asked ? 0 : 2;
		goto out;
	}
	const char *cmd = argv[0];
	int want_args = !strcmp(cmd, "inspect") || !strcmp(cmd, "pull") ? 1 : !strcmp(cmd, "rmi") ? -1 : 0;
	int max_args = !strcmp(cmd, "images") ? 1 : want_args < 0 ? 1000 : want_args;
	if (strcmp(cmd, "version") && strcmp(cmd, "images") && strcmp(cmd, "inspect") && strcmp(cmd, "pull") &&
	    strcmp(cmd, "rmi") && strcmp(cmd, "imagefsinfo")) {
		fprintf(stderr, "kubefledged cri: unknown command \"%s\" (want version, images, inspect, pull, rmi "
				"or imagefsinfo)\n", cmd);
		goto out;
	}
	if ((want_args && npos < 2) || npos - 1 > max_args) {
		fprintf(stderr, "kubefledged cri %s: %s\n", cmd,
			npos < 2 ? "needs an image reference" : "too many arguments");
		goto out;
	}
	/* Check every reference before talking to anything: a bad one is a usage error. */
	for (int i = 1; i < npos; i++) {
		if (cri_check_ref(argv[i], &err)) {
			fprintf(stderr, "kubefledged cri %s: %s\n", cmd, err.buf);
			if (!strcmp(cmd, "rmi") || !strcmp(cmd, "pull"))
				write_termination_log(err.buf);
			goto out;
		}
	}

	const char *ep = f_image_endpoint && *f_image_endpoint ? f_image_endpoint : f_endpoint;
	const struct flag *epf = flags_find(cri_flags, "runtime-endpoint");
	int docker;
	if (f_runtime && *f_runtime) {
		if (strcmp(f_runtime, "cri") && strcmp(f_runtime, "docker")) {
			fprintf(stderr, "kubefledged cri: invalid value \"%s\" for flag --runtime: want cri or docker\n",
				f_runtime);
			goto out;
		}
		docker = !strcmp(f_runtime, "docker");
		if (docker && !epf->set && !(f_image_endpoint && *f_image_endpoint))
			ep = CRI_DOCKER_DEFAULT_ENDPOINT;
	} else {
		size_t n = strlen(ep);
		docker = n >= 11 && !strcmp(ep + n - 11, "docker.sock");
	}
	if (docker)
		r.dk = cri_docker_new(ep, &err);
	else
		r.cri = cri_client_new(ep, &err);
	if (!r.dk && !r.cri) {
		fprintf(stderr, "kubefledged cri: %s\n", err.buf);
		goto out;
	}
	if (r.dk)
		cri_docker_set_timeout(r.dk, f_timeout);
	else
		cri_client_set_timeout(r.cri, f_timeout);
	if (r.cri && cri_client_set_api(r.cri, f_api, &err)) {
		fprintf(stderr, "kubefledged cri: %s\n", err.buf);
		goto out;
	}

	const char *cur = npos > 1 ? argv[1] : "";
	if (!strcmp(cmd, "version"))
		rc = do_version(&r, &err);
	else if (!strcmp(cmd, "images"))
		rc = do_images(&r, npos > 1 ? argv[1] : NULL, &err);
	else if (!strcmp(cmd, "inspect"))
		rc = do_inspect(&r, argv[1], &err);
	else if (!strcmp(cmd, "pull"))
		rc = do_pull(&r, argv[1], &err);
	else if (!strcmp(cmd, "imagefsinfo"))
		rc = do_fsinfo(&r, &err);
	else {
		struct strbuf all = STRBUF_INIT;
		for (int i = 1; i < npos && !rc; i++) {
			cur = argv[i];
			sb_reset(&msg);
			int keep = f_keep_in_use ? keep_guard(&r, argv[i], &msg, &err) : 0;
			if (keep < 0)
				rc = CRI_UNKNOWN;
			else if (!keep)
				rc = r.dk ? cri_docker_remove(r.dk, argv[i], &msg, &err)
					  : cri_rmi(r.cri, argv[i], &msg, &err);
			if (!rc) {
				print_escaped_line(stdout, msg.buf);
				sb_addf(&all, "%s%s", all.len ? "; " : "", msg.buf);
			}
		}
		if (!rc)
			write_termination_log(all.buf);
		sb_release(&all);
	}
	if (rc) {
		struct strbuf line = STRBUF_INIT;
		if (!strcmp(cmd, "version") || !strcmp(cmd, "images") || !strcmp(cmd, "imagefsinfo"))
			sb_addf(&line, "%s: %s", cmd, err.buf);
		else
			sb_addf(&line, "%s %s: %s", cmd, cur, err.buf);
		fprintf(stderr, "kubefledged cri ");
		print_escaped_line(stderr, line.buf);
		if (!strcmp(cmd, "rmi") || !strcmp(cmd, "pull"))
			write_termination_log(line.buf);
		sb_release(&line);
	}
	ret = exit_code(rc);
out:
	cri_client_free(r.cri);
	cri_docker_free(r.dk);
	flags_free(cri_flags);
	sb_release(&err);
	sb_release(&msg);
	return ret;
}
